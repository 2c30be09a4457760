"""The drills' named queries: a drill's row, its cues due on the sweeper's clock, the quarterly reminders."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from store.models import Drill, DrillCue, DrillReminder, Incident


def add_drill(session: Session, drill: Drill, cues: Sequence[DrillCue]) -> None:
    """A drill's row and its cues, in the transaction that opens its incident."""
    session.add(drill)
    session.add_all(cues)
    session.flush()


def get_drill(session: Session, incident_id: int) -> Drill | None:
    return session.get(Drill, incident_id)


def get_drill_cue(session: Session, cue_id: int) -> DrillCue | None:
    return session.get(DrillCue, cue_id)


def due_drill_cues(session: Session, now: datetime, limit: int = 100) -> list[DrillCue]:
    """Cues whose moment has come and that were not injected yet, oldest first."""
    stmt = (
        select(DrillCue)
        .where(DrillCue.sent_at.is_(None), DrillCue.due_at <= now)
        .order_by(DrillCue.due_at, DrillCue.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def claim_drill_cue(session: Session, cue_id: int, *, at: datetime) -> bool:
    """Mark a cue injected; False if another sweep took it first (so it is never posted twice)."""
    stmt = update(DrillCue).where(DrillCue.id == cue_id, DrillCue.sent_at.is_(None)).values(sent_at=at)
    return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def drop_drill_cues(session: Session, incident_id: int, *, at: datetime) -> int:
    """A stopped drill injects nothing more: its remaining cues are marked done."""
    stmt = update(DrillCue).where(DrillCue.incident_id == incident_id, DrillCue.sent_at.is_(None)).values(sent_at=at)
    return int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def claim_drill_score(session: Session, incident_id: int, *, at: datetime) -> bool:
    """The scorecard is posted once, whichever comes first: `drill stop` or its last expectation's moment."""
    stmt = update(Drill).where(Drill.incident_id == incident_id, Drill.scored_at.is_(None)).values(scored_at=at)
    return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def next_drill_cue_at(session: Session) -> datetime | None:
    """The earliest cue still to inject (the timer wakes the sweep then)."""
    return session.scalar(select(func.min(DrillCue.due_at)).where(DrillCue.sent_at.is_(None)))


def list_drills(session: Session, start: datetime, end: datetime) -> list[tuple[Incident, Drill]]:
    """The drills started in [start, end), oldest first (the weekly report's list)."""
    stmt = (
        select(Incident, Drill)
        .join(Drill, Drill.incident_id == Incident.id)
        .where(Incident.is_drill.is_(True), Incident.created_at >= start, Incident.created_at < end)
        .order_by(Incident.created_at, Incident.id)
    )
    return [(incident, drill) for incident, drill in session.execute(stmt)]


def drilled_kinds(session: Session, start: datetime, end: datetime) -> set[str]:
    """The incident kinds rehearsed by a drill opened in [start, end)."""
    stmt = select(Incident.kind).where(
        Incident.is_drill.is_(True), Incident.created_at >= start, Incident.created_at < end
    )
    return set(session.scalars(stmt.distinct()))


def list_drill_reminders(session: Session) -> list[DrillReminder]:
    return list(session.scalars(select(DrillReminder)))


def claim_drill_reminder(session: Session, *, kind: str, quarter: str, at: datetime, recipients: list[str]) -> bool:
    """Record one quarter judged for one kind; False if it was already (so a reminder is sent once)."""
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(DrillReminder)
        .values(kind=kind, quarter=quarter, at=at, recipients=recipients)
        .on_conflict_do_nothing(index_elements=["kind", "quarter"])
        .returning(DrillReminder.id)
    )
    return session.connection().execute(stmt).scalar_one_or_none() is not None
