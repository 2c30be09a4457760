"""The sweeper: finds deadline and escalation rows that are due, acts on each once, and sends.

The store is the source of truth. Due rows are decided in chunks, one transaction each, which claims a
unique sent-notification key per reminder or page (so no decision is taken twice), moves each row's
`next_action_at` on, and writes every message it decided to the outbox. The messages go out after the
commit, in parallel across people and channels and in order within each. A sender that dies leaves its
messages leased; once the lease runs out the next sweep sends them, first looking in Slack for the
message's key in case it had arrived. A message Slack refuses is tried again a bounded number of times;
a page that finally cannot be delivered is told in the channel and the next level is paged at once.

APScheduler is only the timer: one job that wakes the sweep at the earliest `next_action_at` (and at a
fixed interval as a safety net). With PostgreSQL, only the process holding an advisory lock sweeps.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.core.clock import Clock, utc
from bot.core.config import Playbook
from bot.core.i18n import _, in_recipients_language, ngettext, use_locale
from bot.core.render import Renderer, user_mention
from bot.deadlines.escalation import Escalations, level_name
from bot.deadlines.service import humanize, is_action_item, next_action, owner_for, reminder_times
from bot.slack.blocks import drill_labelled, page_blocks, reminder_blocks, text_blocks
from bot.slack.gateway import SlackCallError, SlackGateway
from store import queries
from store.db import ping, try_advisory_lock
from store.drills import get_drill
from store.models import Deadline, Escalation, Incident
from store.states import DeadlineState, EscalationState, IncidentStatus, OutboxState

log = logging.getLogger(__name__)
ADVISORY_LOCK_ID = 0x1DE5C  # "incident-desk scheduler"
# A message being sent is leased for this long; a sender that died leaves it to the next sweep after.
LEASE = timedelta(minutes=2)
# How often a message Slack refuses is tried (gateway retries included in each), and how long between.
PAGE_ATTEMPTS = 4
SEND_ATTEMPTS = 3
RETRY_BACKOFF = timedelta(seconds=30)


class EffectWriter(Protocol):
    """Writes a side effect to an incident's outbox lane in the caller's transaction (Outbox.add)."""

    def __call__(self, s: Session, incident_id: int, key: str, effect: str, **payload: Any) -> None: ...


class ClaimTakenError(Exception):
    """Some notification of a chunk was claimed already (another process, or a replayed row)."""


@dataclass
class Send:
    """One message decided in a transaction and sent after it committed."""

    key: str
    incident_id: int
    channel: str | None = None  # a channel ID, or None for a DM to `user`
    user: str | None = None
    text: str = ""
    blocks: list[dict[str, Any]] | None = None
    digestible: bool = False  # a reminder DM that may be merged with the same person's others
    also: list[str] = field(default_factory=list)  # further notification keys a digest delivers
    escalation_id: int | None = None  # a page DM: if it cannot be delivered, the chain moves on at once
    box: list[str] = field(default_factory=list)  # the outbox rows this message delivers
    resumed: bool = False  # taken from the outbox again (after a crash or a failure): check Slack first


@dataclass
class SweepResult:
    sent: int = 0
    failed: int = 0
    sends: list[Send] = field(default_factory=list)


class Sweeper:
    """Acts on due rows. `sweep()` is what the timer calls; tests call it after moving the clock."""

    def __init__(
        self,
        *,
        playbook: Playbook,
        db: sessionmaker[Session],
        slack: SlackGateway,
        clock: Clock,
        renderer: Renderer,
        escalations: Escalations,
        jobs: Sequence[Callable[[datetime], object]] = (),
        leaders: Callable[[], list[str]] = list,
        write_effect: EffectWriter | None = None,
        send_workers: int = 8,
        batch: int = 1000,
        chunk: int = 50,
    ) -> None:
        self.playbook = playbook
        self.db = db
        self.slack = slack
        self.clock = clock
        self.renderer = renderer
        self.escalations = escalations
        # who a `leadership: true` level pages: the surge plan's leadership group (the composition root wires it)
        self.leaders = leaders
        # work due at a moment that is not a deadline or a page (unfinished side effects, review drafts,
        # scheduled reports): the composition root lists it
        self.jobs = list(jobs)
        # the incidents' side-effect lanes: a channel note decided before the channel exists waits there
        self.write_effect = write_effect
        self.batch = batch
        self.chunk = chunk
        self.pool = ThreadPoolExecutor(max_workers=send_workers, thread_name_prefix="send")
        self._pending_claims: list[tuple[str, int, list[str]]] | None = None
        self._drills: dict[int, tuple[datetime, float]] = {}  # the chunk's drills: start and speed (plan time)
        self._sweep_lock = threading.Lock()

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    def wait_idle(self) -> None:
        """Return once no sweep is running (a sweep in progress finishes first)."""
        with self._sweep_lock:
            pass

    def sweep(self) -> SweepResult:
        """Handle everything due now; repeat while handling made more work due (a chain's first page).
        Rows are decided in chunks (one transaction each, a savepoint per row) and each chunk's messages
        start going out as soon as it commits. In the playbook's language (bot.core.i18n)."""
        with self._sweep_lock, use_locale(self.playbook.locale):
            result = SweepResult()
            now = self.clock.now()
            for _pass in range(100):  # bounded: each pass moves every handled row past `now`
                with self.db() as s:
                    due: list[tuple[type[Deadline] | type[Escalation], int]]
                    due = [(Deadline, i) for i in queries.due_deadline_ids(s, now, self.batch)]
                    due += [(Escalation, i) for i in queries.due_escalation_ids(s, now, self.batch)]
                resumed = self._take_outbox(now)
                if not due and not resumed:
                    break
                sends: list[Send] = []
                for start in range(0, len(due), self.chunk):
                    sends += self._decide_chunk(due[start : start + self.chunk], now)
                self._record(self._send_all(digest(resumed + sends)), result)  # older messages first
            self._run_jobs(now)
            return result

    def _run_jobs(self, now: datetime) -> None:
        """Work that is due at a moment but is not a deadline or a page: review drafts, scheduled reports."""
        for job in self.jobs:
            try:
                job(now)
            except Exception:  # one failing job must not stop the clock
                log.exception("scheduler: job %s failed; it runs again at the next sweep", job)

    def _decide_chunk(self, rows: list[tuple[type[Deadline] | type[Escalation], int]], now: datetime) -> list[Send]:
        """Decide a chunk in one transaction, claiming its notifications in one statement. If anything in
        it fails, or a claim was taken already, redo it row by row (claims then made one at a time) so one
        broken row cannot hold back every other reminder."""
        try:
            with self.db.begin() as s:
                self._pending_claims = [] if len(rows) > 1 else None
                sends = self._decide(s, rows, now)
                if self._pending_claims:
                    won = queries.claim_notifications(s, self._pending_claims, at=now)
                    if len(won) != len(self._pending_claims):
                        raise ClaimTakenError(len(self._pending_claims) - len(won))
                self._write_outbox(s, sends, now)
                return sends
        except ClaimTakenError:
            log.info("scheduler: a notification of this chunk was already claimed; deciding row by row")
        except Exception:
            if len(rows) == 1:
                log.exception("scheduler: could not handle %s %s; it will be retried", rows[0][0].__name__, rows[0][1])
                return []
        finally:
            self._pending_claims = None
        sends = []
        for row in rows:
            sends += self._decide_chunk([row], now)
        return sends

    @staticmethod
    def _write_outbox(s: Session, sends: list[Send], now: datetime) -> None:
        """Every decided message is written with its decision, leased to this sweep while it sends."""
        rows = []
        for send in sends:
            key = f"{send.key}>{send.user or send.channel}"
            send.box = [key]
            rows.append(
                {
                    "key": key,
                    "notification_key": send.key,
                    "incident_id": send.incident_id,
                    "channel_id": send.channel,
                    "user_id": send.user,
                    "text": send.text,
                    "blocks": send.blocks,
                    "digestible": send.digestible,
                    "escalation_id": send.escalation_id,
                    "state": OutboxState.PENDING,
                    "attempts": 0,
                    "due_at": now,
                    "lease_until": now + LEASE,
                    "error": None,
                    "ts": None,
                }
            )
        queries.add_outbox(s, rows)

    def _take_outbox(self, now: datetime) -> list[Send]:
        """Messages to send again: a retry that is due, or one whose sender died (its lease ran out)."""
        with self.db.begin() as s:
            rows = queries.take_due_outbox(s, now, lease_until=now + LEASE, limit=self.batch)
            return [
                Send(
                    row.notification_key,
                    row.incident_id,
                    channel=row.channel_id,
                    user=row.user_id,
                    text=row.text,
                    blocks=row.blocks,
                    digestible=row.digestible,
                    escalation_id=row.escalation_id,
                    box=[row.key],
                    resumed=True,
                )
                for row in rows
            ]

    def _claim(self, s: Session, key: str, *, incident_id: int, recipients: list[str], at: datetime) -> bool:
        """Claim a notification key: at once for a single row, or at the end of the chunk in one statement."""
        if self._pending_claims is None:
            return queries.claim_notification(s, key, incident_id=incident_id, recipients=recipients, at=at)
        self._pending_claims.append((key, incident_id, recipients))
        return True

    # ---- deciding: rows locked per chunk, so a second process skips them --------------------------------

    def _decide(
        self, s: Session, rows: list[tuple[type[Deadline] | type[Escalation], int]], now: datetime
    ) -> list[Send]:
        locked: list[Deadline | Escalation] = []
        # locked for this transaction; another process has skipped them (and this one skips what it holds)
        if ids := [row_id for m, row_id in rows if m is Deadline]:
            locked += queries.lock_due_deadlines(s, ids, now)
        if ids := [row_id for m, row_id in rows if m is Escalation]:
            locked += queries.lock_due_escalations(s, ids, now)
        # every incident of the chunk in one query, before anything changes (no autoflush per row)
        incidents = queries.get_incidents(s, {row.incident_id for row in locked})
        self._drills = {  # a drill's start and speed: its reminders and pages show plan time
            drill.incident_id: (utc(drill.started_at), drill.speed)
            for incident in incidents.values()
            if incident.is_drill and (drill := get_drill(s, incident.id)) is not None
        }
        sends: list[Send] = []
        for row in locked:
            incident = incidents.get(row.incident_id)
            if isinstance(row, Deadline):
                decided = self._deadline(s, incident, row, now)
            else:
                decided = self._escalation(s, incident, row, now)
            if incident is not None and incident.is_drill:  # a drill's reminders and pages say so
                for send in decided:
                    send.text, send.blocks = drill_labelled(send.text, send.blocks)
            sends += decided
        return sends

    @staticmethod
    def _open_channel(incident: Incident) -> str | None:
        """The incident channel while it is open; a closed (archived) incident's follow-ups go by DM only."""
        return incident.channel_id if incident.status != IncidentStatus.CLOSED else None

    def _channel_note(self, s: Session, incident: Incident, key: str, text: str) -> list[Send]:
        """A note for the incident channel, decided under the claimed `key`. With no channel yet (still set up in
        the background, or queued behind Slack's creation budget) it is written to the incident's outbox lane
        in this transaction, behind the set-up, so it is posted once the channel exists: once, as every effect."""
        if incident.status == IncidentStatus.CLOSED:
            return []  # archived: follow-ups go by DM only
        if incident.channel_id:
            return [Send(key, incident.id, channel=incident.channel_id, text=text)]
        if self.write_effect is not None:
            # the lane's post handler labels a drill's messages itself
            self.write_effect(s, incident.id, f"{key}>channel", "post", text=text)
        return []

    def _deadline(self, s: Session, incident: Incident | None, deadline: Deadline, now: datetime) -> list[Send]:
        closed = incident is not None and incident.status == IncidentStatus.CLOSED and not is_action_item(deadline)
        if incident is None or closed or deadline.state != DeadlineState.PENDING or incident.paused_at:
            deadline.next_action_at = None  # a paused incident's clocks restart (and re-plan) on resume
            return []
        owner = owner_for(incident, deadline.owner_role, self.playbook.lead_role, deadline.owner_user)
        if now >= utc(deadline.due_at):
            return self._missed(s, incident, deadline, owner, now)
        return self._remind(s, incident, deadline, owner, now)

    def _context(self, incident: Incident, deadline: Deadline, owner: str | None, now: datetime) -> dict[str, Any]:
        due_at, left = deadline.due_at, utc(deadline.due_at) - now
        if (drill := self._drills.get(incident.id)) is not None:  # a drill's times read on the drill's own clock
            start, speed = drill
            due_at, left = start + (utc(deadline.due_at) - start) * speed, left * speed
        return {
            "number": incident.id,
            "title": incident.title,
            "deadline_name": self.playbook.deadline_name(incident.kind, deadline.key, deadline.name),
            "due_at": due_at,
            "owner": owner,
            "left": humanize(left),
        }

    def _remind(
        self, s: Session, incident: Incident, deadline: Deadline, owner: str | None, now: datetime
    ) -> list[Send]:
        offsets = self.playbook.reminders.offsets
        times = reminder_times(deadline.start_at, deadline.due_at, offsets)
        fired: list[int] = []
        while deadline.reminders_done < len(times) and times[deadline.reminders_done] <= now:
            fired.append(deadline.reminders_done)
            deadline.reminders_done += 1
        key = None
        if deadline.snoozed_until is not None and utc(deadline.snoozed_until) <= now:
            key, deadline.snoozed_until = f"reminder:{deadline.id}:snooze{deadline.snoozes}", None
        elif fired:
            key = f"reminder:{deadline.id}:{fired[-1]}"  # only the latest: earlier ones fell due while we were down
        deadline.next_action_at = next_action(deadline, offsets)
        if key is None:
            return []
        recipients = [owner] if owner else []
        if not self._claim(s, key, incident_id=incident.id, recipients=recipients, at=now):
            return []
        context = self._context(incident, deadline, owner, now)
        render = self.renderer.render
        queries.add_timeline_event(
            s,
            incident.id,
            at=now,
            event="reminder_sent",
            actor_id=None,
            text=deadline.name,
            data={"deadline_id": deadline.id, "to": owner, "key": key},
        )
        sends = []
        if owner:
            with self._to(owner):
                mine = self._context(incident, deadline, owner, now)
                text = render("slack/clock.j2", event="reminder_dm", skipped=max(0, len(fired) - 1), **mine)
                snooze = _("Snooze {time}", time=humanize(self.playbook.reminders.snooze))
                blocks = reminder_blocks(text, deadline.id, snooze)
            sends.append(
                Send(
                    key,
                    incident.id,
                    user=owner,
                    text=text,
                    blocks=blocks,
                    digestible=True,
                )
            )
        if self._open_channel(incident):
            sends.append(
                Send(
                    key,
                    incident.id,
                    channel=incident.channel_id,
                    text=render("slack/clock.j2", event="reminder_channel", **context),
                )
            )
        return sends

    def _missed(
        self, s: Session, incident: Incident, deadline: Deadline, owner: str | None, now: datetime
    ) -> list[Send]:
        if not queries.transition_deadline(
            s, deadline.id, expected=[DeadlineState.PENDING], state=DeadlineState.MISSED
        ):
            return []  # marked done (or cancelled) by someone a moment ago: nothing was missed
        deadline.state, deadline.closed_at, deadline.next_action_at = DeadlineState.MISSED, utc(deadline.due_at), None
        late = now - utc(deadline.due_at)
        queries.add_timeline_event(
            s,
            incident.id,
            at=now,
            event="deadline_missed",
            actor_id=None,
            text=deadline.name,
            data={
                "deadline_id": deadline.id,
                "key": deadline.key,
                "owner": owner,
                "noticed_late_seconds": int(late.total_seconds()),
            },
        )
        escalate = deadline.escalate
        if escalate:
            self.escalations.start(
                s,
                incident,
                reason=_(
                    "{deadline} missed",
                    deadline=self.playbook.deadline_name(incident.kind, deadline.key, deadline.name),
                ),
                owner=owner,
                now=now,
                deadline_id=deadline.id,
            )
        key = f"missed:{deadline.id}"
        if not self._claim(s, key, incident_id=incident.id, recipients=[owner] if owner else [], at=now):
            return []
        context = self._context(incident, deadline, owner, now)
        render = self.renderer.render
        sends = []
        if self._open_channel(incident):
            sends.append(
                Send(
                    key,
                    incident.id,
                    channel=incident.channel_id,
                    text=render("slack/clock.j2", event="missed_channel", escalate=escalate, **context),
                )
            )
        if owner and not escalate:  # when escalating, the owner's page is the DM
            with self._to(owner):
                text = render("slack/clock.j2", event="missed_dm", **self._context(incident, deadline, owner, now))
            sends.append(Send(key, incident.id, user=owner, text=text))
        return sends

    def _escalation(self, s: Session, incident: Incident | None, chain: Escalation, now: datetime) -> list[Send]:
        deadline = queries.get_deadline(s, chain.deadline_id) if chain.deadline_id else None
        closed = (
            incident is not None
            and incident.status == IncidentStatus.CLOSED
            and not (deadline and is_action_item(deadline))
        )
        if incident is None or closed or chain.state != EscalationState.ACTIVE:
            chain.next_action_at = None
            return []
        if not queries.hold_active_escalation(s, chain.id):
            return []  # acknowledged a moment ago: nobody more is paged
        return self._page_next(s, incident, chain, now)

    def _recipients(self, level: dict[str, Any], incident: Incident) -> list[str]:
        users: list[str] = []
        if level.get("owner"):
            users.append(level["owner"])
        elif level.get("owner_level"):
            users += [a.user_id for a in incident.roles if a.role == self.playbook.lead_role and a.user_id]
        if level.get("role"):
            users += [a.user_id for a in incident.roles if a.role == level["role"] and a.user_id]
        users += list(level.get("users") or [])
        if level.get("leadership"):
            users += self.leaders()
        if level.get("usergroup"):
            try:
                users += self.slack.usergroup_members(level["usergroup"])
            except SlackCallError as exc:
                log.warning("escalation: user group %s unreadable: %s", level["usergroup"], exc.error)
        return list(dict.fromkeys(users))

    def _page_next(self, s: Session, incident: Incident, chain: Escalation, now: datetime) -> list[Send]:
        render = self.renderer.render
        sends: list[Send] = []
        levels = chain.levels
        already = self.escalations.paged_users(s, chain)
        while chain.level < len(levels):
            index, level = chain.level, levels[chain.level]
            chain.level += 1
            configured = self._recipients(level, incident)
            # never page someone for their own action (the lead raising to SEV1): the next level is paged
            recipients = [u for u in configured if u not in already and u != chain.caused_by]
            if configured and not recipients:  # e.g. the owner is also the team lead: do not page twice
                why = "already paged" if any(u in already for u in configured) else "caused it"
                queries.add_timeline_event(
                    s,
                    incident.id,
                    at=now,
                    event="page_skipped",
                    actor_id=None,
                    text=level["name"],
                    data={"escalation_id": chain.id, "level": index, "why": why, "users": configured},
                )
                continue
            if not recipients:
                queries.add_timeline_event(
                    s,
                    incident.id,
                    at=now,
                    event="page_skipped",
                    actor_id=None,
                    text=level["name"],
                    data={"escalation_id": chain.id, "level": index},
                )
                nobody = f"page:{chain.id}:{index}:nobody"
                if incident.status != IncidentStatus.CLOSED and self._claim(
                    s, nobody, incident_id=incident.id, recipients=[], at=now
                ):
                    note = render("slack/clock.j2", event="page_nobody", level_name=level_name(level))
                    sends += self._channel_note(s, incident, nobody, note)
                continue
            timeout = timedelta(seconds=level["ack_timeout"])
            chain.next_action_at = now + timeout
            key = f"page:{chain.id}:{index}"
            if not self._claim(s, key, incident_id=incident.id, recipients=recipients, at=now):
                return sends
            queries.add_timeline_event(
                s,
                incident.id,
                at=now,
                event="paged",
                actor_id=None,
                text=level["name"],
                data={"escalation_id": chain.id, "level": index, "users": recipients},
            )
            following = levels[chain.level] if chain.level < len(levels) else None
            for u in recipients:
                with self._to(u):  # each recipient reads the page in their own language, level names included
                    text = render(
                        "slack/clock.j2",
                        event="page_dm",
                        number=incident.id,
                        title=incident.title,
                        reason=chain.reason,
                        level_name=level_name(level),
                        next_level=level_name(following) if following is not None else None,
                        timeout=humanize(timeout * self._drills.get(incident.id, (now, 1.0))[1]),
                    )
                    blocks = page_blocks(text, chain.id)
                sends.append(Send(key, incident.id, user=u, text=text, blocks=blocks, escalation_id=chain.id))
            mentions = ", ".join(user_mention(u) for u in recipients)
            note = render(
                "slack/clock.j2",
                event="page_channel",
                recipients=mentions,
                level_name=level_name(level),
                reason=chain.reason,
            )
            return sends + self._channel_note(s, incident, key, note)
        chain.state, chain.next_action_at = EscalationState.EXHAUSTED, None
        queries.add_timeline_event(
            s,
            incident.id,
            at=now,
            event="escalation_exhausted",
            actor_id=None,
            text=chain.reason,
            data={"escalation_id": chain.id},
        )
        key = f"exhausted:{chain.id}"
        if incident.status != IncidentStatus.CLOSED and self._claim(
            s, key, incident_id=incident.id, recipients=[], at=now
        ):
            note = render("slack/clock.j2", event="exhausted" if already else "nobody_paged", reason=chain.reason)
            sends += self._channel_note(s, incident, key, note)
        return sends

    def _to(self, user: str) -> AbstractContextManager[str]:
        """A DM speaks its recipient's language, not the playbook's the sweep runs in: their Slack locale, looked
        up once and remembered by the gateway (the sweep is off any request's path, so the wait is no ack's)."""
        return in_recipients_language(self.slack.user_locale(user), self.playbook)

    # ---- sending, after the commit ----------------------------------------------------------------------

    def _send_one(self, send: Send) -> str | None:
        try:
            key = send.box[0] if send.box else ""
            if send.channel:
                self.slack.post(send.channel, send.text, send.blocks, key=key, check_first=send.resumed)
            elif send.user:
                self.slack.dm(send.user, send.text, send.blocks, key=key, check_first=send.resumed)
        except SlackCallError as exc:
            log.warning("could not send %s: %s", send.key, exc.error)
            return exc.error
        return None

    def _send_all(self, sends: list[Send]) -> list[tuple[Send, str | None]]:
        """Send in parallel across destinations, in order within one (a channel reads "level 1 skipped"
        before "nobody could be paged")."""
        lanes: dict[str, list[Send]] = {}
        for send in sends:
            lanes.setdefault(send.channel or f"dm:{send.user}", []).append(send)
        futures = [self.pool.submit(self._send_lane, lane) for lane in lanes.values()]
        return [outcome for future in futures for outcome in future.result()]

    def _send_lane(self, lane: list[Send]) -> list[tuple[Send, str | None]]:
        return [(send, self._send_one(send)) for send in lane]

    def _record(self, pending: list[tuple[Send, str | None]], result: SweepResult) -> None:
        """Wait for the sends and store each notification's outcome."""
        outcomes: dict[str, str] = {}
        delivered: list[str] = []
        refused: list[tuple[str, str]] = []
        for send, error in pending:
            for key in (send.key, *send.also):
                outcomes[key] = f"failed: {error}" if error else outcomes.get(key, "sent")
            if error is None:
                delivered += send.box
            else:
                refused += [(key, error) for key in send.box]
            result.sends.append(send)
            result.sent += error is None
            result.failed += error is not None
        if outcomes or delivered or refused:
            now = self.clock.now()
            with self.db.begin() as s:
                queries.set_notification_outcomes(s, outcomes)
                queries.mark_outbox_sent(s, delivered)
                for key, error in refused:
                    self._refused(s, key, error, now)

    def _refused(self, s: Session, key: str, error: str, now: datetime) -> None:
        """Slack refused a message even after the gateway's retries: try it again later, a bounded number of
        times; a page that finally cannot be delivered is told in the channel and the next level is paged."""
        row = queries.finish_outbox(s, key, error=error[:80], lease_until=None)
        if row is None:
            return
        row.attempts += 1
        bound = PAGE_ATTEMPTS if row.escalation_id else SEND_ATTEMPTS
        if row.attempts < bound:
            row.due_at = now + RETRY_BACKOFF * 2 ** (row.attempts - 1)
            log.warning("could not send %s (%s); trying again at %s", key, error, row.due_at)
            return
        row.state = OutboxState.FAILED
        log.error("gave up sending %s after %d attempts: %s", key, row.attempts, error)
        if row.escalation_id is None or row.user_id is None:
            return
        chain = queries.get_escalation(s, row.escalation_id)
        incident = queries.get_incident(s, row.incident_id)
        if chain is None or incident is None:
            return
        moving_on = chain.state == EscalationState.ACTIVE
        if moving_on:
            chain.next_action_at = now  # the next level is paged at once, not after this level's timeout
        queries.add_timeline_event(
            s,
            incident.id,
            at=now,
            event="page_failed",
            actor_id=None,
            text=error,
            data={"escalation_id": chain.id, "user": row.user_id, "attempts": row.attempts},
        )
        if self._open_channel(incident):
            note = self.renderer.render(
                "slack/clock.j2", event="page_failed", user=row.user_id, error=error, moving_on=moving_on
            )
            queries.add_outbox(
                s,
                [
                    {
                        "key": f"{row.key}>failed",
                        "notification_key": row.notification_key,
                        "incident_id": incident.id,
                        "channel_id": incident.channel_id,
                        "user_id": None,
                        "text": note,
                        "blocks": None,
                        "digestible": False,
                        "escalation_id": None,
                        "state": OutboxState.PENDING,
                        "attempts": 0,
                        "due_at": now,
                        "lease_until": None,
                        "error": None,
                        "ts": None,
                    }
                ],
            )


DIGEST_MAX = 24  # two blocks a reminder and a header: within Slack's 50 blocks a message


def digest(sends: list[Send]) -> list[Send]:
    """Merge a person's reminder DMs that fall due together into one message (each keeps its buttons):
    one ping instead of a burst, and far fewer calls against Slack's per-channel rate limit."""
    out: list[Send] = []
    by_user: dict[str, list[Send]] = {}
    for send in sends:
        if send.digestible and send.user:
            by_user.setdefault(send.user, []).append(send)
        else:
            out.append(send)
    for user, group in by_user.items():
        if len(group) == 1:
            out += group
            continue
        for start in range(0, len(group), DIGEST_MAX):
            part = group[start : start + DIGEST_MAX]
            header = ngettext(
                ":alarm_clock: {n} of your deadlines needs attention:",
                ":alarm_clock: {n} of your deadlines need attention:",
                len(part),
            )
            blocks = text_blocks(header)
            for send in part:
                blocks += send.blocks or []
            text = header + "\n" + "\n".join(send.text for send in part)
            out.append(
                Send(
                    part[0].key,
                    part[0].incident_id,
                    user=user,
                    text=text[:3900],
                    blocks=blocks,
                    also=[send.key for send in part[1:]],
                    box=[key for send in part for key in send.box],
                    resumed=any(send.resumed for send in part),
                )
            )
    return out


class LeaderLock:
    """Exactly one active scheduler per PostgreSQL database: a session-level advisory lock on a dedicated
    connection. SQLite runs one process, so there it is always held."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None

    @property
    def postgres(self) -> bool:
        return bool(self.engine.dialect.name == "postgresql")

    def acquire(self) -> bool:
        if not self.postgres:
            return True
        if self._conn is not None:
            try:
                ping(self._conn)
                return True
            except Exception:  # the connection died: the lock died with it
                self._conn = None
        conn = self.engine.connect()
        got = try_advisory_lock(conn, ADVISORY_LOCK_ID)
        conn.commit()
        if got:
            self._conn = conn
        else:
            conn.close()
        return got

    def release(self) -> None:
        if self._conn is not None:
            self._conn.close()  # closing the session releases the advisory lock
            self._conn = None


class Scheduler:
    """The timer around Sweeper: APScheduler wakes the sweep at the next due moment, or every `interval`.

    Wake-ups coalesce, never drop: a tick that finds a sweep running returns at once (the running one looks
    again when it ends), and a sweep that ends with work already due sweeps again in the same tick instead of
    planning a wake-up for "now" while it is itself still running (APScheduler would skip that run as a
    second instance and delete the date job). The next wake-up is read and planned under one lock, so a poke
    from a request and the end of a sweep cannot overwrite each other with a stale moment."""

    PASSES = 5  # sweeps in a row while work stays due; then a short pause (a row that keeps failing)
    RETRY = timedelta(seconds=1)
    INSTANCES = 10  # APScheduler skips a run beyond this many live instances; ours return at once

    def __init__(
        self,
        sweeper: Sweeper,
        *,
        db: sessionmaker[Session],
        clock: Clock,
        interval: timedelta = timedelta(seconds=15),
    ) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        self.db = db
        self.clock = clock
        self.sweeper = sweeper
        self.leader = LeaderLock(db.kw["bind"])
        self.interval = interval
        self.aps = BackgroundScheduler(timezone=UTC)
        self._stopping = False
        self._state = threading.Lock()  # guards _sweeping and the planning of the next wake-up
        self._sweeping = False

    def start(self) -> None:
        self.aps.start()
        self.aps.add_job(
            self.tick,
            "interval",
            seconds=self.interval.total_seconds(),
            id="sweep-interval",
            replace_existing=True,
            misfire_grace_time=None,
            coalesce=True,
            max_instances=self.INSTANCES,  # a second instance returns at once (see tick): never "skipped"
            next_run_time=datetime.now(UTC),
        )

    def stop(self) -> None:
        """Stop the timer, let a sweep in progress finish, then release the leadership.

        APScheduler 3 holds its job-store lock while it waits for running jobs, and a running tick plans
        its next wake-up with add_job (which needs that lock): shutdown(wait=True) would deadlock. So the
        timer is stopped without waiting, and the sweep is waited for here."""
        self._stopping = True
        self.aps.shutdown(wait=False)
        self.sweeper.wait_idle()
        self.sweeper.close()
        self.leader.release()

    def tick(self) -> None:
        """One wake-up: sweep until nothing is due, then plan the next one."""
        with self._state:
            if self._sweeping:
                return  # coalesced: the running sweep reads the rows again when it ends
            self._sweeping = True
        try:
            if not self.leader.acquire():
                with self._state:
                    self._sweeping = False
                return  # standing by: another process is the active scheduler
            passes = 0
            while True:
                self.sweeper.sweep()
                passes += 1
                with self._state:
                    wake = self._next_wakeup()
                    due = wake is not None and wake <= self.clock.now()
                    if due and passes < self.PASSES and not self._stopping:
                        continue  # what fell due while sweeping goes now, in this run
                    self._sweeping = False
                    self._plan(wake, at_least=self.RETRY if due else timedelta(0))
                    return
        except BaseException:
            with self._state:
                self._sweeping = False
            raise

    def poke(self) -> None:
        """Plan the next wake-up at the earliest due moment (called when rows change). While a sweep runs
        nothing is planned: it reads the rows again when it ends."""
        with self._state:
            if self._sweeping or not self.aps.running:
                return  # not started (tests, the CLI's one-off commands): nothing to plan
            self._plan(self._next_wakeup())

    def _next_wakeup(self) -> datetime | None:
        with self.db() as s:
            wake = queries.next_wakeup(s)
        return utc(wake) if wake is not None else None

    def _plan(self, wake: datetime | None, *, at_least: timedelta = timedelta(0)) -> None:
        if wake is None or self._stopping or not self.aps.running:
            return
        delay = max(at_least, wake - self.clock.now())
        self.aps.add_job(
            self.tick,
            "date",
            run_date=datetime.now(UTC) + delay,
            id="sweep-next",
            replace_existing=True,
            misfire_grace_time=None,
            coalesce=True,
            max_instances=self.INSTANCES,  # may fire while the tick that planned it is returning: tick coalesces
        )
