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
Rows written `together` (e.g. an incident's topic, invites and card, which do not depend on each other) are
leased in one transaction, run concurrently, and recorded in one transaction: a lane pays one Slack round
trip for them, not one each, and they still count as one step of the order.
`/incident repair` makes every unfinished or failed row of the incident due again and runs the lane.
A handler that may not act yet (a channel creation beyond Slack's budget, bot/incidents/budget.py) raises
`Deferred`: the row waits in the store until its moment, in its place in the lane, and is not counted as a
refusal; a 429 that got through anyway is retried without counting either. Nothing is dropped for volume.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot.core.clock import Clock
from bot.core.i18n import use_locale
from bot.slack.gateway import SlackCallError
from store import queries
from store.models import OutboxMessage
from store.states import OutboxState

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=30)  # a step runs for seconds; a worker that held one this long has died
ATTEMPTS = 5
BACKOFF = timedelta(seconds=15)
# Answers no retry can change: recorded as failed at once (repair can still run it again), and the lane goes on.
PERMANENT = frozenset({"is_archived", "channel_not_found", "user_not_found", "user_disabled", "account_inactive"})
MAX_STEPS = 200  # one run of a lane is bounded; what is left runs at the next sweep
TOGETHER = "together"  # the payload key naming the batch a row runs concurrently with


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


class Deferred(Exception):  # noqa: N818 -- not an error: the step waits for its moment
    """Raised by a handler whose step must wait until `until` (queued behind a budget); `ahead` is how many
    wait before it, `payload` is merged into the row's, `record` runs in the transaction that queues it."""

    def __init__(
        self, until: datetime, *, ahead: int = 0, payload: dict[str, Any] | None = None, record: Recorder | None = None
    ) -> None:
        super().__init__(f"queued until {until.isoformat()}")
        self.until = until
        self.ahead = ahead
        self.payload = payload or {}
        self.record = record


Outcome = Recorder | str | Deferred | None  # what a handler gave back, the error it was refused with, or a wait


@dataclass(frozen=True)
class LaneResult:
    ran: int = 0
    failed_effect: str | None = None
    error: str | None = None
    waiting: int = 0  # rows left: held by another worker, or waiting for their retry
    queued_until: datetime | None = None  # the lane waits in a queue (Deferred) until then
    ahead: int = 0  # what waits in that queue before it


@dataclass
class _Lane:
    """What one run of a lane did so far."""

    ran: int = 0
    gave_up: tuple[str, str] | None = None  # (effect, error) of a step that failed for good in this run

    def result(self) -> LaneResult:
        return LaneResult(self.ran, *(self.gave_up or (None, None)))


class Outbox:
    def __init__(self, db: sessionmaker[Session], clock: Clock, locale: str | None = None) -> None:
        self.db = db
        self.clock = clock
        self.locale = locale  # the playbook's: what an effect renders goes to a channel (bot.core.i18n)
        self.handlers: dict[str, Handler] = {}

    def register(self, effect: str, handler: Handler) -> None:
        self.handlers[effect] = handler

    def add(
        self, s: Session, incident_id: int, key: str, effect: str, *, together: str | None = None, **payload: Any
    ) -> None:
        """Write a side effect in the caller's transaction (the one that commits the change). Rows with the same
        `together` written one after the other run concurrently, as one step of the lane."""
        if together is not None:
            payload[TOGETHER] = together
        queries.add_effect(s, key=key, incident_id=incident_id, effect=effect, payload=payload, at=self.clock.now())

    def run(self, incident_id: int, *, resumed: bool = False, until: str | None = None) -> LaneResult:
        """Run the incident's pending side effects (see `_run`) in the playbook's language."""
        with use_locale(self.locale):
            return self._run(incident_id, resumed=resumed, until=until)

    def _run(self, incident_id: int, *, resumed: bool, until: str | None) -> LaneResult:
        """Run the incident's pending side effects in order until one must wait (retry, or another worker), or
        until the batch named `until` is done (the caller has something to do then; the rest stays pending).
        Recording one batch's outcome and leasing the next share a transaction."""
        lane = _Lane()
        done: list[tuple[int, int, Step, Outcome]] = []  # the batch just run, recorded in the next transaction
        for _ in range(MAX_STEPS):
            now = self.clock.now()
            with self.db.begin() as s:
                if done:
                    stop = self._record(s, lane, done, until)
                    if stop is not None:
                        return stop
                head = queries.lane_head(s, incident_id)
                if head is None:
                    return lane.result()
                if not queries.lease_effect(s, head.id, now=now, lease_until=now + LEASE):
                    # held by another worker, or waiting for its retry after a refusal (which is reported)
                    waits = head.error if head.lease_until is None and head.due_at > now else None
                    if waits is None and head.lease_until is None and head.due_at > now:  # queued for its moment
                        ahead = int((head.payload or {}).get("ahead", 0))
                        return LaneResult(lane.ran, waiting=1, queued_until=head.due_at, ahead=ahead)
                    return LaneResult(lane.ran, failed_effect=head.effect if waits else None, error=waits, waiting=1)
                batch = [head] + [
                    row
                    for row in self._together_with(s, head)
                    if queries.lease_effect(s, row.id, now=now, lease_until=now + LEASE)
                ]
                leased: list[tuple[int, int, Step]] = []
                for row in batch:
                    s.refresh(row)
                    step = Step(
                        row.key,
                        incident_id,
                        row.effect,
                        dict(row.payload or {}),
                        retried=row.attempts > 1 or row.error is not None,
                        resumed=resumed,
                    )
                    leased.append((row.id, row.attempts, step))
            outcomes = self._perform([step for _, _, step in leased])
            done = [
                (row_id, attempts, step, out) for (row_id, attempts, step), out in zip(leased, outcomes, strict=True)
            ]
        with self.db.begin() as s:
            stop = self._record(s, lane, done, until) if done else None
        return stop or LaneResult(lane.ran, waiting=1)

    def _record(
        self, s: Session, lane: _Lane, done: list[tuple[int, int, Step, Outcome]], until: str | None
    ) -> LaneResult | None:
        """Record a batch's outcomes in `s`; the lane's result if it stops here (a refusal to retry, `until`)."""
        refused: tuple[str, str] | None = None  # the first refusal of the batch that waits for its retry
        queued: Deferred | None = None
        for row_id, attempts, step, outcome in done:
            if isinstance(outcome, Deferred):
                self._defer(s, row_id, outcome)
                queued = queued or outcome
                continue
            if isinstance(outcome, str):
                if self._refused(s, row_id, step, attempts, outcome):
                    lane.gave_up = (step.effect, outcome)
                elif refused is None:
                    refused = (step.effect, outcome)
                continue
            if outcome is not None:
                outcome(s)
            sent = queries.get_outbox_message(s, row_id)
            if sent is not None:
                sent.state, sent.lease_until = OutboxState.SENT, None
            lane.ran += 1
        if refused is not None:
            return LaneResult(lane.ran, failed_effect=refused[0], error=refused[1], waiting=1)
        if queued is not None:
            return LaneResult(lane.ran, waiting=1, queued_until=queued.until, ahead=queued.ahead)
        if until is not None and any(step.payload.get(TOGETHER) == until for _, _, step, _ in done):
            return lane.result()
        return None

    @staticmethod
    def _together_with(s: Session, head: OutboxMessage) -> list[OutboxMessage]:
        """The pending rows right after `head` written to run with it (none unless `head` names a batch)."""
        batch = (head.payload or {}).get(TOGETHER)
        if batch is None:
            return []
        rows: list[OutboxMessage] = []
        for row in queries.list_effects(s, head.incident_id):
            if row.id <= head.id or row.state != OutboxState.PENDING:
                continue
            if (row.payload or {}).get(TOGETHER) != batch:
                break  # the batch is the run of rows written together; what follows waits for all of it
            rows.append(row)
        return rows

    def _perform(self, steps: list[Step]) -> list[Outcome]:
        """Run the handlers, concurrently when there are several; each gives its recorder or its error."""
        if len(steps) == 1:
            return [self._handle(steps[0])]
        contexts = [contextvars.copy_context() for _ in steps]  # each thread speaks this run's language
        with ThreadPoolExecutor(max_workers=len(steps), thread_name_prefix="outbox") as pool:
            return list(pool.map(lambda context, step: context.run(self._handle, step), contexts, steps))

    def _handle(self, step: Step) -> Outcome:
        handler = self.handlers.get(step.effect)
        try:
            if handler is None:
                raise SlackCallError(step.effect, "unknown_effect")
            return handler(step)
        except Deferred as wait:
            return wait
        except Exception as exc:  # a Slack refusal, or a bug: either way bounded, recorded, never lost
            if not isinstance(exc, SlackCallError):
                log.exception("outbox: %s failed", step.key)
                return f"internal error ({type(exc).__name__})"
            return exc.error

    @staticmethod
    def _defer(s: Session, row_id: int, wait: Deferred) -> None:
        """The step waits in the store until its moment; taken once (so a sweep runs it then), not refused."""
        row = queries.get_outbox_message(s, row_id)
        if row is None:
            return
        row.due_at, row.lease_until, row.error, row.attempts = wait.until, None, None, 1
        if wait.payload:
            row.payload = {**(row.payload or {}), **wait.payload}
        if wait.record is not None:
            wait.record(s)

    def _refused(self, s: Session, row_id: int, step: Step, attempts: int, error: str) -> bool:
        """Record a refusal: retry later with backoff, or give up (True) after the bound or on a final answer.
        Slack's rate limit is not a refusal of the step: it is tried again, never given up for it."""
        now = self.clock.now()
        row = queries.get_outbox_message(s, row_id)
        if row is None:
            return True
        row.lease_until, row.error = None, error[:80]
        if error == "ratelimited":
            row.attempts = max(1, attempts - 1)
            row.due_at = now + BACKOFF
            log.warning("outbox: %s rate-limited by Slack; trying again at %s", step.key, row.due_at)
            return False
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

    def resume(self, now: datetime | None = None, *, grace: timedelta | None = None) -> int:
        """Run every lane with work due and nobody alive on it: at start-up and from every sweep. A sweep gives
        the request that wrote an effect `grace` to run it itself (so the reporter hears from their own request,
        not from a sweep that raced it); at start-up nobody else is left to run anything."""
        now = now or self.clock.now()
        with self.db() as s:
            lanes = queries.lanes_due(s, now, fresh_after=now - grace if grace is not None else None)
        ran = 0
        for incident_id in lanes:
            try:
                ran += self.run(incident_id, resumed=True).ran
            except Exception:  # one broken lane must not hold back the others
                log.exception(
                    "outbox: incident %s's side effects failed; they run again at the next sweep", incident_id
                )
        return ran
