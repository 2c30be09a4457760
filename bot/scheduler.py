"""The clockwork: finds deadline and escalation rows that are due, acts on each once, and sends.

The store is the source of truth. Each due row is handled in its own transaction that decides what to
send, claims a unique sent-notification key for it, and moves the row's `next_action_at` on; the sends
happen after the commit, in parallel. A claimed key is never sent again, so a crash or a second process
cannot double-page anyone (at worst a send that crashed mid-way is lost, never repeated).

APScheduler is only the timer: one job that wakes the sweep at the earliest `next_action_at` (and at a
fixed interval as a safety net). With PostgreSQL, only the process holding an advisory lock sweeps.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, text
from sqlalchemy.orm import Session

from bot.blocks import page_blocks, reminder_blocks
from bot.clock import utc
from bot.deadlines import humanize, is_action_item, next_action, owner_for, reminder_times
from bot.render import user_mention
from bot.services import Services
from bot.slack import SlackCallError
from store import queries
from store.models import Deadline, Escalation, Incident

log = logging.getLogger(__name__)
ADVISORY_LOCK_ID = 0x1DE5C  # "incident-desk scheduler"


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


@dataclass
class SweepResult:
    handled: int = 0
    sent: int = 0
    failed: int = 0
    sends: list[Send] = field(default_factory=list)


class Clockwork:
    """Acts on due rows. `sweep()` is what the timer calls; tests call it after moving the clock."""

    def __init__(self, services: Services, *, send_workers: int = 8, batch: int = 1000, chunk: int = 50) -> None:
        self.services = services
        self.playbook = services.playbook
        self.batch = batch
        self.chunk = chunk
        self.pool = ThreadPoolExecutor(max_workers=send_workers, thread_name_prefix="send")
        self._pending_claims: list[tuple[str, int, list[str]]] | None = None
        self._sweep_lock = threading.Lock()
        self.jobs: list[Callable[[datetime], object]] = [
            services.aftercare.post_due_reviews,
            services.reports.run_weekly,
        ]

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    def wait_idle(self) -> None:
        """Return once no sweep is running (a sweep in progress finishes first)."""
        with self._sweep_lock:
            pass

    def sweep(self) -> SweepResult:
        """Handle everything due now; repeat while handling made more work due (a chain's first page).
        Rows are decided in chunks (one transaction each, a savepoint per row) and each chunk's messages
        start going out as soon as it commits."""
        with self._sweep_lock:
            result = SweepResult()
            now = self.services.clock.now()
            for _ in range(100):  # bounded: each pass moves every handled row past `now`
                with self.services.db() as s:
                    due: list[tuple[type[Deadline] | type[Escalation], int]]
                    due = [(Deadline, i) for i in queries.due_deadline_ids(s, now, self.batch)]
                    due += [(Escalation, i) for i in queries.due_escalation_ids(s, now, self.batch)]
                if not due:
                    break
                sends: list[Send] = []
                for start in range(0, len(due), self.chunk):
                    sends += self._decide_chunk(due[start : start + self.chunk], now)
                pending = [(send, self.pool.submit(self._send_one, send)) for send in digest(sends)]
                result.handled += len(due)
                self._record(pending, result)
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
            with self.services.db.begin() as s:
                self._pending_claims = [] if len(rows) > 1 else None
                sends = self._decide(s, rows, now)
                if self._pending_claims:
                    won = queries.claim_notifications(s, self._pending_claims, at=now)
                    if len(won) != len(self._pending_claims):
                        raise ClaimTakenError(len(self._pending_claims) - len(won))
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
        locked: list[Any] = []
        for model in (Deadline, Escalation):
            ids = [row_id for m, row_id in rows if m is model]
            if ids:
                stmt = (
                    select(model)
                    .where(model.id.in_(ids), model.next_action_at <= now)
                    .order_by(model.next_action_at)
                    .with_for_update(skip_locked=True)  # another process has the rest
                )
                locked += list(s.scalars(stmt))
        # every incident of the chunk in one query, before anything changes (no autoflush per row)
        incidents = queries.get_incidents(s, {row.incident_id for row in locked})
        sends: list[Send] = []
        for row in locked:
            incident = incidents.get(row.incident_id)
            if isinstance(row, Deadline):
                sends += self._deadline(s, incident, row, now)
            else:
                sends += self._escalation(s, incident, row, now)
        return sends

    @staticmethod
    def _open_channel(incident: Incident) -> str | None:
        """The incident channel while it is open; a closed (archived) incident's follow-ups go by DM only."""
        return incident.channel_id if incident.status != "closed" else None

    def _deadline(self, s: Session, incident: Incident | None, deadline: Deadline, now: datetime) -> list[Send]:
        closed = incident is not None and incident.status == "closed" and not is_action_item(deadline)
        if incident is None or closed or deadline.state != "pending" or incident.paused_at:
            deadline.next_action_at = None  # a paused incident's clocks restart (and re-plan) on resume
            return []
        owner = owner_for(incident, deadline.owner_role, self.playbook.lead_role, deadline.owner_user)
        if now >= utc(deadline.due_at):
            return self._missed(s, incident, deadline, owner, now)
        return self._remind(s, incident, deadline, owner, now)

    def _context(self, incident: Incident, deadline: Deadline, owner: str | None, now: datetime) -> dict[str, Any]:
        return {
            "number": incident.id,
            "title": incident.title,
            "deadline_name": deadline.name,
            "due_at": deadline.due_at,
            "owner": owner,
            "left": humanize(utc(deadline.due_at) - now),
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
        render = self.services.renderer.render
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
            text = render("slack/clock.j2", event="reminder_dm", skipped=max(0, len(fired) - 1), **context)
            snooze = f"Snooze {humanize(self.playbook.reminders.snooze)}"
            sends.append(
                Send(
                    key,
                    incident.id,
                    user=owner,
                    text=text,
                    blocks=reminder_blocks(text, deadline.id, snooze),
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
        deadline.state, deadline.closed_at, deadline.next_action_at = "missed", utc(deadline.due_at), None
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
            self.services.escalations.start(
                s, incident, reason=f"{deadline.name} missed", owner=owner, now=now, deadline_id=deadline.id
            )
        key = f"missed:{deadline.id}"
        if not self._claim(s, key, incident_id=incident.id, recipients=[owner] if owner else [], at=now):
            return []
        context = self._context(incident, deadline, owner, now)
        render = self.services.renderer.render
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
            sends.append(
                Send(key, incident.id, user=owner, text=render("slack/clock.j2", event="missed_dm", **context))
            )
        return sends

    def _escalation(self, s: Session, incident: Incident | None, chain: Escalation, now: datetime) -> list[Send]:
        deadline = s.get(Deadline, chain.deadline_id) if chain.deadline_id else None
        closed = incident is not None and incident.status == "closed" and not (deadline and is_action_item(deadline))
        if incident is None or closed or chain.state != "active":
            chain.next_action_at = None
            return []
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
        if level.get("usergroup"):
            try:
                users += self.services.slack.usergroup_members(level["usergroup"])
            except SlackCallError as exc:
                log.warning("escalation: user group %s unreadable: %s", level["usergroup"], exc.error)
        return list(dict.fromkeys(users))

    def _page_next(self, s: Session, incident: Incident, chain: Escalation, now: datetime) -> list[Send]:
        render = self.services.renderer.render
        sends: list[Send] = []
        levels = chain.levels
        already = self.services.escalations.paged_users(s, chain)
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
                if self._open_channel(incident) and self._claim(
                    s, f"page:{chain.id}:{index}:nobody", incident_id=incident.id, recipients=[], at=now
                ):
                    sends.append(
                        Send(
                            f"page:{chain.id}:{index}:nobody",
                            incident.id,
                            channel=incident.channel_id,
                            text=render("slack/clock.j2", event="page_nobody", level_name=level["name"]),
                        )
                    )
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
            next_level = levels[chain.level]["name"] if chain.level < len(levels) else None
            text = render(
                "slack/clock.j2",
                event="page_dm",
                number=incident.id,
                title=incident.title,
                reason=chain.reason,
                level_name=level["name"],
                next_level=next_level,
                timeout=humanize(timeout),
            )
            sends += [Send(key, incident.id, user=u, text=text, blocks=page_blocks(text, chain.id)) for u in recipients]
            if self._open_channel(incident):
                mentions = ", ".join(user_mention(u) for u in recipients)
                sends.append(
                    Send(
                        key,
                        incident.id,
                        channel=incident.channel_id,
                        text=render(
                            "slack/clock.j2",
                            event="page_channel",
                            recipients=mentions,
                            level_name=level["name"],
                            reason=chain.reason,
                        ),
                    )
                )
            return sends
        chain.state, chain.next_action_at = "exhausted", None
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
        if self._open_channel(incident) and self._claim(s, key, incident_id=incident.id, recipients=[], at=now):
            sends.append(
                Send(
                    key,
                    incident.id,
                    channel=incident.channel_id,
                    text=render(
                        "slack/clock.j2", event="exhausted" if already else "nobody_paged", reason=chain.reason
                    ),
                )
            )
        return sends

    # ---- sending, after the commit ----------------------------------------------------------------------

    def _send_one(self, send: Send) -> str | None:
        try:
            if send.channel:
                self.services.slack.post(send.channel, send.text, send.blocks)
            elif send.user:
                self.services.slack.dm(send.user, send.text, send.blocks)
        except SlackCallError as exc:
            log.warning("could not send %s: %s", send.key, exc.error)
            return exc.error
        return None

    def _record(self, pending: list[tuple[Send, Future[str | None]]], result: SweepResult) -> None:
        """Wait for the sends and store each notification's outcome."""
        outcomes: dict[str, str] = {}
        for send, future in pending:
            error = future.result()
            for key in (send.key, *send.also):
                outcomes[key] = f"failed: {error}" if error else outcomes.get(key, "sent")
            result.sends.append(send)
            result.sent += error is None
            result.failed += error is not None
        if outcomes:
            with self.services.db.begin() as s:
                for key, outcome in outcomes.items():
                    queries.set_notification_outcome(s, key, outcome)


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
            header = f":alarm_clock: {len(part)} of your deadlines need attention:"
            blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": header}}]
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
                )
            )
    return out


class LeaderLock:
    """Exactly one active scheduler per PostgreSQL database: a session-level advisory lock on a dedicated
    connection. SQLite runs one process, so there it is always held."""

    def __init__(self, services: Services) -> None:
        self.engine = services.db.kw["bind"]
        self._conn: Connection | None = None

    @property
    def postgres(self) -> bool:
        return bool(self.engine.dialect.name == "postgresql")

    def acquire(self) -> bool:
        if not self.postgres:
            return True
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT 1"))
                return True
            except Exception:  # the connection died: the lock died with it
                self._conn = None
        conn = self.engine.connect()
        got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:id)"), {"id": ADVISORY_LOCK_ID}).scalar())
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
    """The timer around Clockwork: APScheduler wakes the sweep at the next due moment, or every `interval`."""

    def __init__(self, clockwork: Clockwork, *, interval: timedelta = timedelta(seconds=15)) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        services = clockwork.services
        self.services = services
        self.clockwork = clockwork
        self.leader = LeaderLock(services)
        self.interval = interval
        self.aps = BackgroundScheduler(timezone=UTC)
        self._stopping = False
        services.schedule_changed.append(self.poke)

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
            max_instances=1,
            next_run_time=datetime.now(UTC),
        )

    def stop(self) -> None:
        """Stop the timer, let a sweep in progress finish, then release the leadership.

        APScheduler 3 holds its job-store lock while it waits for running jobs, and a running tick plans
        its next wake-up with add_job (which needs that lock): shutdown(wait=True) would deadlock. So the
        timer is stopped without waiting, and the sweep is waited for here."""
        self._stopping = True
        self.aps.shutdown(wait=False)
        self.clockwork.wait_idle()
        self.clockwork.close()
        self.leader.release()

    def tick(self) -> None:
        if not self.leader.acquire():
            return  # standing by: another process is the active scheduler
        self.clockwork.sweep()
        self.poke()

    def poke(self) -> None:
        """Plan the next wake-up at the earliest due moment (called when rows change)."""
        if self._stopping or not self.aps.running:
            return
        with self.services.db() as s:
            wake = queries.next_wakeup(s)
        if wake is None:
            return
        delay = max(timedelta(0), utc(wake) - self.services.clock.now())
        run_at = datetime.now(UTC) + delay
        self.aps.add_job(
            self.tick,
            "date",
            run_date=run_at,
            id="sweep-next",
            replace_existing=True,
            misfire_grace_time=None,
            coalesce=True,
        )
