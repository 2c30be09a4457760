"""The outbox worker: runs each incident's side effects in order, once, across crashes and Slack faults.

A service that commits a change writes what must follow it (create the channel, post the card, announce,
archive…) as outbox rows in the same transaction (`add`). Right after the commit the request's own thread
runs that incident's lane (`run`), so nobody waits longer than before. A row is leased with one conditional
UPDATE before it runs, so two workers never run it together; a worker that dies leaves the lease to run
out, and then the scheduler's sweep or the next start-up (`resume`) takes the row again. Effects are
idempotent: posts carry the row's key in their metadata and, when taken again, look for it in the channel
before posting (SlackGateway.post check_first); topic, invite, card update and archive simply run again.
A refused effect is retried with backoff a bounded number of times, then recorded as failed; the lane
stops at a row that is waiting for its retry, so a channel never reads its messages out of order.
`/incident repair` makes every unfinished or failed row of the incident due again and runs the lane.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot.core.clock import Clock
from bot.core.i18n import use_locale
from bot.slack.gateway import SlackCallError
from store import queries
from store.states import OutboxState

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=30)  # a step runs for seconds; a worker that held one this long has died
ATTEMPTS = 5
BACKOFF = timedelta(seconds=15)
# Answers no retry can change: recorded as failed at once (repair can still run it again), and the lane goes on.
PERMANENT = frozenset({"is_archived", "channel_not_found", "user_not_found", "user_disabled", "account_inactive"})
MAX_STEPS = 200  # one run of a lane is bounded; what is left runs at the next sweep


@dataclass(frozen=True)
class Step:
    """One leased side effect, as its handler sees it."""

    key: str
    incident_id: int
    effect: str
    payload: dict[str, Any]
    retried: bool  # taken before (crashed or refused): a post looks for its key in the channel first
    resumed: bool  # run by the sweep or at start-up, not by the request that caused it


# A handler does the Slack part outside any transaction and may return what to record with its outcome.
Recorder = Callable[[Session], object]
Handler = Callable[[Step], Recorder | None]


@dataclass(frozen=True)
class LaneResult:
    ran: int = 0
    failed_effect: str | None = None
    error: str | None = None
    waiting: int = 0  # rows left: held by another worker, or waiting for their retry


class Outbox:
    def __init__(self, db: sessionmaker[Session], clock: Clock, locale: str | None = None) -> None:
        self.db = db
        self.clock = clock
        self.locale = locale  # the playbook's: what an effect renders goes to a channel (bot.core.i18n)
        self.handlers: dict[str, Handler] = {}

    def register(self, effect: str, handler: Handler) -> None:
        self.handlers[effect] = handler

    def add(self, s: Session, incident_id: int, key: str, effect: str, **payload: Any) -> None:
        """Write a side effect in the caller's transaction (the one that commits the change)."""
        queries.add_effect(s, key=key, incident_id=incident_id, effect=effect, payload=payload, at=self.clock.now())

    def run(self, incident_id: int, *, resumed: bool = False) -> LaneResult:
        """Run the incident's pending side effects in order until one must wait (retry, or another worker)."""
        with use_locale(self.locale):
            return self._run(incident_id, resumed=resumed)

    def _run(self, incident_id: int, *, resumed: bool) -> LaneResult:
        ran = 0
        gave_up: tuple[str, str] | None = None  # (effect, error) of a step that failed for good in this run
        for _ in range(MAX_STEPS):
            now = self.clock.now()
            with self.db.begin() as s:
                head = queries.lane_head(s, incident_id)
                if head is None:
                    return LaneResult(ran, *(gave_up or (None, None)))
                if not queries.lease_effect(s, head.id, now=now, lease_until=now + LEASE):
                    # held by another worker, or waiting for its retry after a refusal (which is reported)
                    refused = head.error if head.lease_until is None and head.due_at > now else None
                    return LaneResult(ran, failed_effect=head.effect if refused else None, error=refused, waiting=1)
                s.refresh(head)
                row_id, attempts = head.id, head.attempts
                step = Step(
                    head.key,
                    incident_id,
                    head.effect,
                    dict(head.payload or {}),
                    retried=attempts > 1 or head.error is not None,
                    resumed=resumed,
                )
            handler = self.handlers.get(step.effect)
            try:
                if handler is None:
                    raise SlackCallError(step.effect, "unknown_effect")
                recorder = handler(step)
            except Exception as exc:  # a Slack refusal, or a bug: either way bounded, recorded, never lost
                error = exc.error if isinstance(exc, SlackCallError) else f"internal error ({type(exc).__name__})"
                if not isinstance(exc, SlackCallError):
                    log.exception("outbox: %s failed", step.key)
                if self._refused(row_id, step, attempts, error):
                    gave_up = (step.effect, error)
                    continue
                return LaneResult(ran, failed_effect=step.effect, error=error, waiting=1)
            with self.db.begin() as s:
                if recorder is not None:
                    recorder(s)
                row = queries.get_outbox_message(s, row_id)
                if row is not None:
                    row.state, row.lease_until = OutboxState.SENT, None
            ran += 1
        return LaneResult(ran, waiting=1)

    def _refused(self, row_id: int, step: Step, attempts: int, error: str) -> bool:
        """Record a refusal: retry later with backoff, or give up (True) after the bound or on a final answer."""
        now = self.clock.now()
        with self.db.begin() as s:
            row = queries.get_outbox_message(s, row_id)
            if row is None:
                return True
            row.lease_until, row.error = None, error[:80]
            if attempts < ATTEMPTS and error not in PERMANENT:
                row.due_at = now + BACKOFF * 2 ** (attempts - 1)
                log.warning("outbox: %s refused (%s); trying again at %s", step.key, error, row.due_at)
                return False
            row.state = OutboxState.FAILED
            log.error("outbox: gave up %s after %d attempts: %s", step.key, attempts, error)
            return True

    def reopen(self, incident_id: int) -> int:
        """Make the incident's unfinished and given-up side effects due now (what `repair` does first)."""
        with self.db.begin() as s:
            return queries.reopen_effects(s, incident_id, self.clock.now())

    def pending(self, incident_id: int) -> list[str]:
        with self.db() as s:
            return [r.effect for r in queries.list_effects(s, incident_id) if r.state == OutboxState.PENDING]

    def resume(self, now: datetime | None = None) -> int:
        """Run every lane with work due and nobody alive on it: at start-up and from every sweep."""
        with self.db() as s:
            lanes = queries.lanes_due(s, now or self.clock.now())
        ran = 0
        for incident_id in lanes:
            try:
                ran += self.run(incident_id, resumed=True).ran
            except Exception:  # one broken lane must not hold back the others
                log.exception(
                    "outbox: incident %s's side effects failed; they run again at the next sweep", incident_id
                )
        return ran
