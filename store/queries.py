"""Queries and writes. Functions here never commit: the caller's unit of work does."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, delete, false, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, selectinload

from store.drills import next_drill_cue_at
from store.models import (
    Complaint,
    Deadline,
    Escalation,
    Incident,
    Notice,
    NoticeDelivery,
    OutboxMessage,
    ReportRun,
    RoleAssignment,
    RoleRotation,
    SatisfactionRating,
    SeenRequest,
    SentNotification,
    SurgeProposal,
    TimelineEvent,
)
from store.states import (
    DEADLINE_MOVES,
    ESCALATION_MOVES,
    INCIDENT_MOVES,
    NOT_CLOSED,
    NOTICE_MOVES,
    PROPOSAL_MOVES,
    DeadlineState,
    EscalationState,
    NoticeState,
    OutboxState,
    ProposalState,
    require_moves,
)


def get_incident(session: Session, incident_id: int) -> Incident | None:
    stmt = select(Incident).where(Incident.id == incident_id).options(selectinload(Incident.roles))
    return session.scalars(stmt).first()


def get_incidents(session: Session, ids: set[int]) -> dict[int, Incident]:
    """Several incidents with their roles, in one round trip."""
    if not ids:
        return {}
    stmt = select(Incident).where(Incident.id.in_(ids)).options(selectinload(Incident.roles))
    return {incident.id: incident for incident in session.scalars(stmt)}


def get_incident_by_channel(session: Session, channel_id: str) -> Incident | None:
    stmt = select(Incident).where(Incident.channel_id == channel_id).options(selectinload(Incident.roles))
    return session.scalars(stmt).first()


def list_open_incidents(session: Session, limit: int = 50) -> Sequence[Incident]:
    """Incidents not closed yet (a resolved one still awaits its review and close), newest first."""
    stmt = (
        select(Incident)
        .where(Incident.status.in_(NOT_CLOSED))
        .order_by(Incident.created_at.desc())
        .limit(limit)
        .options(selectinload(Incident.roles))
    )
    return session.scalars(stmt).all()


def add_incident(session: Session, incident: Incident) -> Incident:
    session.add(incident)
    session.flush()
    return incident


def add_timeline_event(
    session: Session,
    incident_id: int,
    *,
    at: datetime,
    event: str,
    actor_id: str | None,
    text: str = "",
    data: dict[str, Any] | None = None,
) -> TimelineEvent:
    row = TimelineEvent(incident_id=incident_id, at=at, event=event, actor_id=actor_id, text=text, data=data or {})
    session.add(row)
    return row


def list_deadlines(session: Session, incident_id: int) -> Sequence[Deadline]:
    return session.scalars(select(Deadline).where(Deadline.incident_id == incident_id).order_by(Deadline.id)).all()


def list_ratings(session: Session, incident_id: int) -> Sequence[SatisfactionRating]:
    return session.scalars(
        select(SatisfactionRating).where(SatisfactionRating.incident_id == incident_id).order_by(SatisfactionRating.id)
    ).all()


def list_timeline(session: Session, incident_id: int) -> Sequence[TimelineEvent]:
    stmt = (
        select(TimelineEvent)
        .where(TimelineEvent.incident_id == incident_id)
        .order_by(TimelineEvent.at, TimelineEvent.id)
    )
    return session.scalars(stmt).all()


def get_role_assignment(session: Session, incident_id: int, role: str) -> RoleAssignment | None:
    stmt = select(RoleAssignment).where(RoleAssignment.incident_id == incident_id, RoleAssignment.role == role)
    return session.scalars(stmt).first()


def next_rotation_position(session: Session, role: str, pool_size: int) -> int:
    """Take the next round-robin slot for a role, atomically, so concurrent opens never share a turn."""
    session.execute(
        _insert_for(session)(RoleRotation).values(role=role, position=0).on_conflict_do_nothing(index_elements=["role"])
    )
    taken = session.execute(
        update(RoleRotation)
        .where(RoleRotation.role == role)
        .values(position=RoleRotation.position + 1)
        .returning(RoleRotation.position)
    ).scalar_one()
    return (taken - 1) % max(pool_size, 1)


# ---- state transitions -------------------------------------------------------------------------------------
# Each is one conditional statement: it changes the row only if it is still in the state the caller read, and
# says whether it did. Of N concurrent requests exactly one wins; on PostgreSQL the others wait for the winner's
# row lock and then find the row changed, on SQLite the write lock serialises them the same way. The caller
# refuses the losers in words, after re-reading the row (`session.refresh`) to say who won.


def _changed(session: Session, stmt: Any) -> bool:
    """Run a conditional UPDATE … RETURNING on the transaction's connection; True if it matched a row."""
    return session.connection().execute(stmt).first() is not None


def transition_incident(session: Session, incident_id: int, *, expected: Iterable[str], status: str) -> bool:
    """Move an incident from one of the `expected` statuses to `status` (resolve, close, start investigating)."""
    expected = tuple(expected)
    require_moves(INCIDENT_MOVES, expected, status)
    return _changed(
        session,
        update(Incident)
        .where(Incident.id == incident_id, Incident.status.in_(expected))
        .values(status=status)
        .returning(Incident.id),
    )


def change_severity(session: Session, incident_id: int, *, expected: str, severity: str) -> bool:
    """Change an incident's severity from the one the caller read (so a raise pages once, not per click)."""
    return _changed(
        session,
        update(Incident)
        .where(Incident.id == incident_id, Incident.severity == expected)
        .values(severity=severity)
        .returning(Incident.id),
    )


def set_paused(session: Session, incident_id: int, *, paused_at: datetime | None) -> bool:
    """Pause a running incident (`paused_at` a time) or resume a paused one (None); False if it already was."""
    already = Incident.paused_at.is_(None) if paused_at is not None else Incident.paused_at.is_not(None)
    return _changed(
        session,
        update(Incident).where(Incident.id == incident_id, already).values(paused_at=paused_at).returning(Incident.id),
    )


def transition_notice(
    session: Session,
    notice_id: int,
    *,
    expected: str,
    state: str,
    approved_digest: str | None,
    values: dict[str, Any],
) -> bool:
    """Edit, approve or start publishing a notice (moving it to `state`), if it is still in the `expected` state
    with the approval the caller checked (an edit or another approval in between changes one of them, so this one
    then loses)."""
    require_moves(NOTICE_MOVES, (expected,), state)
    return _changed(
        session,
        update(Notice)
        .where(
            Notice.id == notice_id,
            Notice.state == expected,
            Notice.approved_digest.is_not_distinct_from(approved_digest),
        )
        .values({**values, "state": state})
        .returning(Notice.id),
    )


def acknowledge_escalation(session: Session, escalation_id: int, *, actor: str, at: datetime) -> bool:
    """Stop a paging chain that is still active; False if someone (or something) stopped it first."""
    return _changed(
        session,
        update(Escalation)
        .where(Escalation.id == escalation_id, Escalation.state == EscalationState.ACTIVE)
        .values(state=EscalationState.ACKNOWLEDGED, acked_at=at, acked_by=actor, next_action_at=None)
        .returning(Escalation.id),
    )


def hold_active_escalation(session: Session, escalation_id: int) -> bool:
    """Take the write lock on a chain that is still active before paging its next level (a no-op update): an
    acknowledgement committed a moment ago makes this False, and none can commit until the paging is decided."""
    return _changed(
        session,
        update(Escalation)
        .where(Escalation.id == escalation_id, Escalation.state == EscalationState.ACTIVE)
        .values(level=Escalation.level)
        .returning(Escalation.id),
    )


def claim_role(
    session: Session, incident_id: int, role: str, *, holder: str | None, user: str, at: datetime, by: str
) -> bool:
    """Give `role` to `user` if `holder` (None: nobody) still holds it; a role the incident never had a row for
    is inserted, once (the unique constraint decides between concurrent inserts)."""
    if _changed(
        session,
        update(RoleAssignment)
        .where(
            RoleAssignment.incident_id == incident_id,
            RoleAssignment.role == role,
            RoleAssignment.user_id.is_not_distinct_from(holder),
        )
        .values(user_id=user, assigned_at=at, assigned_by=by)
        .returning(RoleAssignment.id),
    ):
        return True
    if holder is not None:
        return False
    return _changed(
        session,
        _insert_for(session)(RoleAssignment)
        .values(incident_id=incident_id, role=role, user_id=user, assigned_at=at, assigned_by=by)
        .on_conflict_do_nothing(index_elements=["incident_id", "role"])
        .returning(RoleAssignment.id),
    )


def transition_deadline(session: Session, deadline_id: int, *, expected: Iterable[str], state: str) -> bool:
    """Move a deadline from one of the `expected` states to `state` (marked done: met, or met late from missed;
    found overdue by the clockwork: missed)."""
    expected = tuple(expected)
    require_moves(DEADLINE_MOVES, expected, state)
    return _changed(
        session,
        update(Deadline)
        .where(Deadline.id == deadline_id, Deadline.state.in_(expected))
        .values(state=state)
        .returning(Deadline.id),
    )


def snooze_deadline(session: Session, deadline_id: int, *, snoozes: int, until: datetime, now: datetime) -> bool:
    """Snooze a pending deadline that is not snoozed now and has been snoozed `snoozes` times, as the caller read."""
    return _changed(
        session,
        update(Deadline)
        .where(
            Deadline.id == deadline_id,
            Deadline.state == DeadlineState.PENDING,
            Deadline.snoozes == snoozes,
            or_(Deadline.snoozed_until.is_(None), Deadline.snoozed_until <= now),
        )
        .values(snoozes=snoozes + 1, snoozed_until=until)
        .returning(Deadline.id),
    )


def record_rating(
    session: Session, incident_id: int, *, source: str, rater: str, score: int, comment: str, at: datetime
) -> bool:
    """Insert or replace one rater's rating in one statement; False if the very same rating was already there
    (a repeated click), so it is recorded and announced once."""
    stmt = _insert_for(session)(SatisfactionRating).values(
        incident_id=incident_id, source=source, rater_id=rater, score=score, comment=comment, at=at
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["incident_id", "source", "rater_id"],
        set_={"score": stmt.excluded.score, "comment": stmt.excluded.comment, "at": stmt.excluded.at},
        where=or_(SatisfactionRating.score != stmt.excluded.score, SatisfactionRating.comment != stmt.excluded.comment),
    ).returning(SatisfactionRating.id)
    return _changed(session, stmt)


def latest_event(session: Session, incident_id: int, event: str, **data: Any) -> TimelineEvent | None:
    """The incident's most recent `event` whose data holds `data` (who snoozed, who recorded a rating)."""
    for row in reversed(list_timeline(session, incident_id)):
        if row.event == event and all((row.data or {}).get(k) == v for k, v in data.items()):
            return row
    return None


def _insert_for(session: Session) -> Any:
    return postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def claim_notification(session: Session, key: str, *, incident_id: int, recipients: list[str], at: datetime) -> bool:
    """Record a notification before it is sent; False if it was claimed already (so never send twice)."""
    stmt = (
        _insert_for(session)(SentNotification)
        .values(key=key, incident_id=incident_id, recipients=recipients, sent_at=at, outcome="claimed")
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(SentNotification.id)
    )
    # on the transaction's connection: a plain insert that needs no ORM autoflush of pending rows
    return session.connection().execute(stmt).scalar_one_or_none() is not None


def claim_notifications(session: Session, claims: list[tuple[str, int, list[str]]], *, at: datetime) -> set[str]:
    """Claim many notification keys in one statement; returns the keys won (the others were taken)."""
    stmt = (
        _insert_for(session)(SentNotification)
        .values(
            [
                {"key": key, "incident_id": incident_id, "recipients": recipients, "sent_at": at, "outcome": "claimed"}
                for key, incident_id, recipients in claims
            ]
        )
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(SentNotification.key)
    )
    return set(session.connection().execute(stmt).scalars())


def add_outbox(session: Session, rows: list[dict[str, Any]]) -> None:
    """Write messages to send, in the deciding transaction (one statement for a chunk)."""
    if rows:
        session.connection().execute(insert(OutboxMessage), rows)


def take_due_outbox(session: Session, now: datetime, *, lease_until: datetime, limit: int) -> list[OutboxMessage]:
    """Lease the pending messages whose time has come and whose earlier lease (a crashed sender's) ran out."""
    leased = or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until <= now)
    stmt = (
        select(OutboxMessage)
        .where(
            OutboxMessage.effect == "message",
            OutboxMessage.state == OutboxState.PENDING,
            OutboxMessage.due_at <= now,
            leased,
        )
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    rows = list(session.scalars(stmt))
    for row in rows:
        row.lease_until = lease_until
    return rows


def finish_outbox(session: Session, key: str, **values: Any) -> OutboxMessage | None:
    """Record what became of one outbox message (sent, retry later, failed)."""
    row = session.scalar(select(OutboxMessage).where(OutboxMessage.key == key))
    if row is not None:
        for name, value in values.items():
            setattr(row, name, value)
    return row


def add_effect(
    session: Session, *, key: str, incident_id: int, effect: str, payload: dict[str, Any], at: datetime
) -> bool:
    """Write one side effect of the change being committed; a key already written is not written again."""
    if session.scalar(select(OutboxMessage.id).where(OutboxMessage.key == key)) is not None:
        return False
    session.add(
        OutboxMessage(
            key=key,
            notification_key=key[:120],
            incident_id=incident_id,
            text="",
            effect=effect,
            payload=payload,
            state=OutboxState.PENDING,
            attempts=0,
            due_at=at,
        )
    )
    session.flush()
    return True


def lane_head(session: Session, incident_id: int) -> OutboxMessage | None:
    """The incident's oldest unfinished side effect: its steps run in the order they were written."""
    stmt = (
        select(OutboxMessage)
        .where(
            OutboxMessage.incident_id == incident_id,
            OutboxMessage.effect != "message",
            OutboxMessage.state == OutboxState.PENDING,
        )
        .order_by(OutboxMessage.id)
        .limit(1)
    )
    return session.scalar(stmt)


def lease_effect(session: Session, row_id: int, *, now: datetime, lease_until: datetime) -> bool:
    """Take one side effect if nobody holds it (a dead worker's lease has run out): one conditional UPDATE,
    so two workers can never both take it."""
    free = or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until <= now)
    result = session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id == row_id, OutboxMessage.state == OutboxState.PENDING, OutboxMessage.due_at <= now, free
        )
        .values(lease_until=lease_until, attempts=OutboxMessage.attempts + 1)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def lanes_due(session: Session, now: datetime, limit: int = 500, *, fresh_after: datetime | None = None) -> list[int]:
    """Incidents with a side effect waiting whose time has come and that nobody (alive) is working on. With
    `fresh_after`, an effect never tried and written after it is left to the request that wrote it."""
    free = or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until <= now)
    untouched = and_(OutboxMessage.attempts == 0, OutboxMessage.lease_until.is_(None))
    fresh = and_(untouched, OutboxMessage.due_at > fresh_after) if fresh_after is not None else false()
    stmt = (
        select(OutboxMessage.incident_id)
        .where(
            OutboxMessage.effect != "message",
            OutboxMessage.state == OutboxState.PENDING,
            OutboxMessage.due_at <= now,
            free,
            ~fresh,
        )
        .group_by(OutboxMessage.incident_id)
        .order_by(func.min(OutboxMessage.id))
        .limit(limit)
    )
    return list(session.scalars(stmt))


def reopen_effects(session: Session, incident_id: int, now: datetime) -> int:
    """Repair: every unfinished or given-up side effect of the incident is due again now, with a fresh count.
    One that was tried before keeps an error, so it still looks for its post in Slack before posting."""
    mine = (OutboxMessage.incident_id == incident_id, OutboxMessage.effect != "message")
    session.execute(
        update(OutboxMessage)
        .where(
            *mine, OutboxMessage.state == OutboxState.PENDING, OutboxMessage.attempts > 0, OutboxMessage.error.is_(None)
        )
        .values(error="interrupted")
    )
    result = session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.incident_id == incident_id,
            OutboxMessage.effect != "message",
            OutboxMessage.state.in_((OutboxState.PENDING, OutboxState.FAILED)),
            or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until <= now),
        )
        .values(state=OutboxState.PENDING, due_at=now, attempts=0, lease_until=None)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def list_effects(session: Session, incident_id: int) -> Sequence[OutboxMessage]:
    stmt = select(OutboxMessage).where(OutboxMessage.incident_id == incident_id, OutboxMessage.effect != "message")
    return session.scalars(stmt.order_by(OutboxMessage.id)).all()


def mark_outbox_sent(session: Session, keys: list[str]) -> None:
    """Mark delivered messages in bulk (the hot path when a thousand reminders go out at once)."""
    for start in range(0, len(keys), 500):
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.key.in_(keys[start : start + 500]))
            .values(state=OutboxState.SENT, lease_until=None, attempts=OutboxMessage.attempts + 1)
        )


def set_notification_outcomes(session: Session, outcomes: dict[str, str]) -> None:
    """Record many notifications' outcomes, one statement per outcome and 500 keys (a thousand reminders)."""
    by_outcome: dict[str, list[str]] = {}
    for key, outcome in outcomes.items():
        by_outcome.setdefault(outcome[:40], []).append(key)
    for outcome, keys in by_outcome.items():
        for start in range(0, len(keys), 500):
            part = keys[start : start + 500]
            session.execute(update(SentNotification).where(SentNotification.key.in_(part)).values(outcome=outcome))


def list_notifications(
    session: Session, *, prefix: str = "", incident_id: int | None = None
) -> Sequence[SentNotification]:
    stmt = select(SentNotification).where(SentNotification.key.startswith(prefix))
    if incident_id is not None:
        stmt = stmt.where(SentNotification.incident_id == incident_id)
    return session.scalars(stmt.order_by(SentNotification.id)).all()


def due_deadline_ids(session: Session, now: datetime, limit: int) -> list[int]:
    stmt = select(Deadline.id).where(Deadline.next_action_at <= now).order_by(Deadline.next_action_at).limit(limit)
    return list(session.scalars(stmt))


def due_escalation_ids(session: Session, now: datetime, limit: int) -> list[int]:
    stmt = (
        select(Escalation.id).where(Escalation.next_action_at <= now).order_by(Escalation.next_action_at).limit(limit)
    )
    return list(session.scalars(stmt))


def next_wakeup(session: Session) -> datetime | None:
    """The earliest moment any deadline, chain, review draft, scheduled report or surge proposal's second page
    needs the scheduler."""
    times = [
        session.scalar(select(func.min(Deadline.next_action_at))),
        session.scalar(select(func.min(Escalation.next_action_at))),
        session.scalar(select(func.min(Incident.review_at)).where(Incident.review_posted_at.is_(None))),
        session.scalar(select(func.min(ReportRun.due_at)).where(ReportRun.posted_at.is_(None))),
        # a surge proposal nobody decided is paged once more at repage_at (bot/surge/proposals.py)
        session.scalar(
            select(func.min(SurgeProposal.repage_at)).where(
                SurgeProposal.state == ProposalState.PROPOSED, SurgeProposal.repaged_at.is_(None)
            )
        ),
        session.scalar(
            select(
                func.min(
                    case(
                        (OutboxMessage.lease_until > OutboxMessage.due_at, OutboxMessage.lease_until),
                        else_=OutboxMessage.due_at,
                    )
                )
            ).where(
                OutboxMessage.state == OutboxState.PENDING,
                or_(  # an incident's side effects run in order: only the first waiting one of each counts
                    OutboxMessage.effect == "message",
                    OutboxMessage.id.in_(
                        select(func.min(OutboxMessage.id))
                        .where(OutboxMessage.state == OutboxState.PENDING, OutboxMessage.effect != "message")
                        .group_by(OutboxMessage.incident_id)
                    ),
                ),
            )
        ),
    ]
    times.append(next_drill_cue_at(session))  # a drill's next cue (store/drills.py)
    present = [t for t in times if t is not None]
    return min(present) if present else None


def claim_request_signature(session: Session, signature: str, timestamp: int) -> bool:
    """Record a verified request's signature; False if it was seen before (a replay)."""
    stmt = (
        _insert_for(session)(SeenRequest)
        .values(signature=signature, timestamp=timestamp)
        .on_conflict_do_nothing(index_elements=["signature"])
        .returning(SeenRequest.signature)
    )
    return session.connection().execute(stmt).scalar_one_or_none() is not None


def count_request_signatures(session: Session) -> int:
    """How many signatures the replay guard holds."""
    return int(session.scalar(select(func.count()).select_from(SeenRequest)) or 0)


def delete_request_signatures_before(session: Session, timestamp: int) -> int:
    """Forget signatures whose timestamp is older than `timestamp` (a replay of them is stale anyway)."""
    result: Any = session.execute(delete(SeenRequest).where(SeenRequest.timestamp < timestamp))
    return int(result.rowcount or 0)


# ---- deadlines and escalations -----------------------------------------------------------------------------


def get_deadline(session: Session, deadline_id: int) -> Deadline | None:
    return session.get(Deadline, deadline_id)


def add_deadline(session: Session, deadline: Deadline) -> Deadline:
    """Write a new deadline and give it its id (the timeline event that follows names it)."""
    session.add(deadline)
    session.flush()
    return deadline


def list_deadlines_by_due(
    session: Session, incident_id: int, *, state: DeadlineState | None = None, cadence: bool | None = None
) -> list[Deadline]:
    """An incident's deadlines, soonest due first; only those in `state`, or only (non-)cadences, when given."""
    stmt = select(Deadline).where(Deadline.incident_id == incident_id)
    if state is not None:
        stmt = stmt.where(Deadline.state == state)
    if cadence is not None:
        stmt = stmt.where(Deadline.cadence.is_(cadence))
    return list(session.scalars(stmt.order_by(Deadline.due_at, Deadline.id)))


def count_deadlines(session: Session, incident_id: int, *, key_prefix: str) -> int:
    """How many of the incident's deadlines have a key starting with `key_prefix` (its action items)."""
    stmt = (
        select(func.count())
        .select_from(Deadline)
        .where(Deadline.incident_id == incident_id, Deadline.key.startswith(key_prefix, autoescape=True))
    )
    return int(session.scalar(stmt) or 0)


def lock_due_deadlines(session: Session, ids: Sequence[int], now: datetime) -> list[Deadline]:
    """Of these deadlines, the ones still due, locked for this transaction; rows another process holds are
    skipped (it is deciding them)."""
    stmt = (
        select(Deadline)
        .where(Deadline.id.in_(ids), Deadline.next_action_at <= now)
        .order_by(Deadline.next_action_at)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(stmt))


def get_escalation(session: Session, escalation_id: int) -> Escalation | None:
    return session.get(Escalation, escalation_id)


def add_escalation(session: Session, chain: Escalation) -> Escalation:
    """Write a new paging chain and give it its id."""
    session.add(chain)
    session.flush()
    return chain


def list_escalations(session: Session, incident_id: int, *, state: EscalationState | None = None) -> list[Escalation]:
    """An incident's paging chains in the order they started; only those in `state`, when given."""
    stmt = select(Escalation).where(Escalation.incident_id == incident_id)
    if state is not None:
        stmt = stmt.where(Escalation.state == state)
    return list(session.scalars(stmt.order_by(Escalation.id)))


def lock_due_escalations(session: Session, ids: Sequence[int], now: datetime) -> list[Escalation]:
    """Of these chains, the ones still due, locked for this transaction (as `lock_due_deadlines`)."""
    stmt = (
        select(Escalation)
        .where(Escalation.id.in_(ids), Escalation.next_action_at <= now)
        .order_by(Escalation.next_action_at)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(stmt))


def cancel_escalations(
    session: Session, incident_id: int, *, deadline_id: int | None = None, unbound_only: bool = False
) -> int:
    """Stop the incident's active paging chains: those for one deadline (`deadline_id`), those started for no
    deadline (`unbound_only`: a raised severity), or all of them. Nothing more is paged for a stopped chain."""
    require_moves(ESCALATION_MOVES, (EscalationState.ACTIVE,), EscalationState.CANCELLED)
    stmt = update(Escalation).where(Escalation.incident_id == incident_id, Escalation.state == EscalationState.ACTIVE)
    if deadline_id is not None:
        stmt = stmt.where(Escalation.deadline_id == deadline_id)
    elif unbound_only:
        stmt = stmt.where(Escalation.deadline_id.is_(None))
    # the ORM brings chains already loaded in this session up to date too
    result: Any = session.execute(stmt.values(state=EscalationState.CANCELLED, next_action_at=None))
    return int(result.rowcount or 0)


# ---- the review ----------------------------------------------------------------------------------------------


def list_due_review_ids(session: Session, now: datetime, limit: int = 100) -> list[int]:
    """Incidents whose review draft is due and not posted yet, the longest waiting first."""
    stmt = (
        select(Incident.id)
        .where(Incident.review_at <= now, Incident.review_posted_at.is_(None))
        .order_by(Incident.review_at)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def claim_review_post(session: Session, incident_id: int, *, at: datetime) -> bool:
    """Mark a review draft posted unless it already was: of two sweeps, one posts it."""
    result: Any = session.execute(
        update(Incident)
        .where(Incident.id == incident_id, Incident.review_posted_at.is_(None))
        .values(review_posted_at=at)
    )
    return bool(result.rowcount)


def set_review_posted(session: Session, incident_id: int, *, at: datetime) -> None:
    """Mark a review draft posted now (posted on request, again if it was before)."""
    session.execute(update(Incident).where(Incident.id == incident_id).values(review_posted_at=at))


def add_report_run(session: Session, *, kind: str, due_at: datetime) -> None:
    """Plan a scheduled report's run; a second plan for the same (kind, due_at) fails on commit."""
    session.add(ReportRun(kind=kind, due_at=due_at, outcome=""))


def get_report_run(session: Session, run_id: int) -> ReportRun | None:
    return session.get(ReportRun, run_id)


def get_pending_report_run(session: Session, kind: str) -> ReportRun | None:
    """The earliest planned run of a report that has not been posted."""
    stmt = select(ReportRun).where(ReportRun.kind == kind, ReportRun.posted_at.is_(None)).order_by(ReportRun.due_at)
    return session.scalars(stmt).first()


def claim_report_run(session: Session, run_id: int, *, at: datetime) -> bool:
    """Mark a run posted unless another process did a moment ago; True if this one takes it."""
    result: Any = session.execute(
        update(ReportRun).where(ReportRun.id == run_id, ReportRun.posted_at.is_(None)).values(posted_at=at)
    )
    return bool(result.rowcount)


def list_opened(session: Session, start: datetime, end: datetime) -> list[tuple[datetime, str]]:
    """When each real incident (no drill) of [start, end) was opened, and its severity (the weekly chart)."""
    stmt = select(Incident.created_at, Incident.severity).where(
        Incident.is_drill.is_(False), Incident.created_at >= start, Incident.created_at < end
    )
    return [(created, severity) for created, severity in session.execute(stmt)]


# ---- notices -------------------------------------------------------------------------------------------------


def get_notice(session: Session, notice_id: int) -> Notice | None:
    return session.get(Notice, notice_id)


def add_notice(session: Session, notice: Notice) -> Notice:
    """Write a new notice draft and give it its id."""
    session.add(notice)
    session.flush()
    return notice


def add_notice_delivery(session: Session, delivery: NoticeDelivery) -> None:
    """Record what happened when a notice went to one target."""
    session.add(delivery)


def list_notice_deliveries(session: Session, notice_id: int) -> list[NoticeDelivery]:
    return list(session.scalars(select(NoticeDelivery).where(NoticeDelivery.notice_id == notice_id)))


def list_published_notices(session: Session, incident_id: int) -> list[Notice]:
    """An incident's published notices in the order they went out."""
    stmt = (
        select(Notice)
        .where(Notice.incident_id == incident_id, Notice.state == NoticeState.PUBLISHED)
        .order_by(Notice.published_at)
    )
    return list(session.scalars(stmt))


def list_public_notices(session: Session, kinds: Sequence[str], limit: int = 200) -> list[tuple[Notice, Incident]]:
    """Published notices of real incidents of these kinds, newest first, each with its incident."""
    stmt = (
        select(Notice, Incident)
        .join(Incident, Incident.id == Notice.incident_id)
        .where(Notice.state == NoticeState.PUBLISHED, Incident.is_drill.is_(False), Incident.kind.in_(kinds))
        .order_by(Notice.published_at.desc())
        .limit(limit)
    )
    return [(notice, incident) for notice, incident in session.execute(stmt)]


def get_outbox_message(session: Session, row_id: int) -> OutboxMessage | None:
    return session.get(OutboxMessage, row_id)


# ---- complaints (the intake API) ---------------------------------------------------------------------------


_CLAIM_COMPLAINT: dict[str, Any] = {}


def _claim_complaint_statement(session: Session) -> Any:
    """The complaint's insert, built once per dialect (the intake's hot path): a Core insert of the table, its
    values passed at execution, so neither the statement's construction nor the ORM's bulk path runs per
    complaint."""
    dialect = session.get_bind().dialect.name
    stmt = _CLAIM_COMPLAINT.get(dialect)
    if stmt is None:
        table = Complaint.__table__
        stmt = _insert_for(session)(table).on_conflict_do_nothing(index_elements=["external_id"])
        stmt = _CLAIM_COMPLAINT[dialect] = stmt.returning(table.c.id)
    return stmt


def claim_complaint(session: Session, values: dict[str, Any]) -> int | None:
    """Insert a complaint unless its external id is already recorded; its id, or None if the id was taken
    (by an earlier request or a concurrent one: the unique index decides, on every replica)."""
    found = session.connection().execute(_claim_complaint_statement(session), values).scalar_one_or_none()
    return int(found) if found is not None else None


def get_complaint(session: Session, complaint_id: int) -> Complaint | None:
    return session.get(Complaint, complaint_id)


def get_complaint_by_external_id(session: Session, external_id: str) -> Complaint | None:
    return session.scalars(select(Complaint).where(Complaint.external_id == external_id)).one_or_none()


# ---- the surge plan's warning lines and proposals (bot/surge) ------------------------------------------------


def _complaints_in(start: datetime, end: datetime, category: str | None, contact_channel: str | None) -> list[Any]:
    """Received within (start, end]: a window ending at `end`, as bot/surge/volume.py counts it (the summary,
    the chart and the End suggestion), so the watch never proposes at a count the summary does not show."""
    where = [Complaint.received_at > start, Complaint.received_at <= end]
    if category is not None:
        where.append(Complaint.category == category)
    if contact_channel is not None:
        where.append(Complaint.contact_channel == contact_channel)
    return where


def count_complaints_received(
    session: Session,
    start: datetime,
    end: datetime,
    *,
    category: str | None = None,
    contact_channel: str | None = None,
    at_most: int | None = None,
) -> int:
    """Complaints received within (start, end] (of one category or contact channel). `at_most` bounds the
    work: the answer stops at it (enough to tell whether a warning line is reached, at any volume)."""
    inner = select(Complaint.id).where(*_complaints_in(start, end, category, contact_channel))
    if at_most is not None:
        inner = inner.limit(at_most)
    return int(session.scalar(select(func.count()).select_from(inner.subquery())) or 0)


def complaints_received_by(
    session: Session, column: str, start: datetime, end: datetime, *, category: str | None, contact_channel: str | None
) -> dict[str, int]:
    """Complaints received within (start, end] counted by `category` or `contact_channel`, largest first."""
    key = Complaint.category if column == "category" else Complaint.contact_channel
    rows = session.execute(
        select(key, func.count())
        .where(*_complaints_in(start, end, category, contact_channel))
        .group_by(key)
        .order_by(func.count().desc(), key)
    ).all()
    return {str(name): int(n) for name, n in rows}


def get_live_proposal(session: Session, line: str) -> SurgeProposal | None:
    """The line's proposal the volume has not fallen back below since (at most one: a unique partial index)."""
    return session.scalars(
        select(SurgeProposal).where(SurgeProposal.line == line, SurgeProposal.fell_at.is_(None))
    ).one_or_none()


def claim_proposal(session: Session, values: dict[str, Any]) -> int | None:
    """Insert a proposal unless the line has a live one already (a concurrent intake proposed it first); its
    id, or None."""
    stmt = (
        _insert_for(session)(SurgeProposal)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["line"], index_where=SurgeProposal.fell_at.is_(None))
        .returning(SurgeProposal.id)
    )
    return session.connection().execute(stmt).scalar_one_or_none()


def record_proposal_fall(session: Session, proposal_id: int, *, at: datetime) -> bool:
    """Record that the volume fell below the proposal's line (once): the line may propose again."""
    return _changed(
        session,
        update(SurgeProposal)
        .where(SurgeProposal.id == proposal_id, SurgeProposal.fell_at.is_(None))
        .values(fell_at=at)
        .returning(SurgeProposal.id),
    )


def get_proposal(session: Session, proposal_id: int) -> SurgeProposal | None:
    return session.get(SurgeProposal, proposal_id)


def list_proposals(session: Session, *, state: str | None = None, limit: int = 100) -> list[SurgeProposal]:
    """Proposals, newest first (of one state)."""
    stmt = select(SurgeProposal).order_by(SurgeProposal.id.desc()).limit(limit)
    if state is not None:
        stmt = stmt.where(SurgeProposal.state == state)
    return list(session.scalars(stmt))


def list_unposted_proposals(session: Session, *, created_before: datetime) -> list[SurgeProposal]:
    """Open proposals not yet posted to the leadership group, crossed before `created_before`."""
    return list(
        session.scalars(
            select(SurgeProposal)
            .where(
                SurgeProposal.state == ProposalState.PROPOSED,
                SurgeProposal.message_ts.is_(None),
                SurgeProposal.crossed_at <= created_before,
            )
            .order_by(SurgeProposal.id)
        )
    )


def set_proposal_posted(session: Session, proposal_id: int, **values: Any) -> bool:
    """Record where the proposal was posted (once: a second poster finds it done)."""
    return _changed(
        session,
        update(SurgeProposal)
        .where(SurgeProposal.id == proposal_id, SurgeProposal.message_ts.is_(None))
        .values(**values)
        .returning(SurgeProposal.id),
    )


def claim_proposal_repage(session: Session, proposal_id: int, *, now: datetime) -> bool:
    """Take the one second page of an open proposal that fell due; False if taken or decided meanwhile."""
    return _changed(
        session,
        update(SurgeProposal)
        .where(
            SurgeProposal.id == proposal_id,
            SurgeProposal.state == ProposalState.PROPOSED,
            SurgeProposal.repaged_at.is_(None),
            SurgeProposal.repage_at <= now,
        )
        .values(repaged_at=now)
        .returning(SurgeProposal.id),
    )


def due_proposal_repages(session: Session, now: datetime) -> list[int]:
    return list(
        session.scalars(
            select(SurgeProposal.id).where(
                SurgeProposal.state == ProposalState.PROPOSED,
                SurgeProposal.repaged_at.is_(None),
                SurgeProposal.repage_at <= now,
            )
        )
    )


def decide_proposal(session: Session, proposal_id: int, *, state: str, **values: Any) -> bool:
    """Move an open proposal to its decision (once: twenty clicks make one decision)."""
    require_moves(PROPOSAL_MOVES, [ProposalState.PROPOSED], state)
    return _changed(
        session,
        update(SurgeProposal)
        .where(SurgeProposal.id == proposal_id, SurgeProposal.state == ProposalState.PROPOSED)
        .values(state=state, **values)
        .returning(SurgeProposal.id),
    )


def undo_activation(session: Session, proposal_id: int, *, actor: str) -> bool:
    """Give back an activation whose incident was never opened (its opening failed): waiting again."""
    require_moves(PROPOSAL_MOVES, [ProposalState.ACTIVATED], ProposalState.PROPOSED)
    return _changed(
        session,
        update(SurgeProposal)
        .where(
            SurgeProposal.id == proposal_id,
            SurgeProposal.state == ProposalState.ACTIVATED,
            SurgeProposal.decided_by == actor,
            SurgeProposal.incident_id.is_(None),
        )
        .values(state=ProposalState.PROPOSED, decided_by=None, decided_at=None)
        .returning(SurgeProposal.id),
    )
