"""The warning line (seed 004 预警阶段): after each recorded complaint, is the volume at a line?

A line counts complaints by the time they were received (`received_at`, the customer's moment, as the
complaint system reports it) within (now − window, now]: overall, or for the line's category or contact
channel. A complaint reported late (received long ago) counts for the minutes it was received in, so a
backlog replayed from the complaint system does not look like a surge; one dated in the future does not count
until its time comes. "At the line" is `count >= line` (the seed's 达到预警线).

Cheap enough for every complaint (the intake's 200 a second): below the line, one index range count per line
that stops at the line's count; at or over it, that and one read of the line's live proposal (a small table);
and while a line has its proposal, nothing for a second at a time (a new complaint only raises the count, and
a fall is time's doing: the scheduler's sweep checks every line thoroughly each time it runs). No Slack call
here: a new proposal is announced with `SurgeProposed` and posted by a background worker
(bot/surge/proposals.py).

Exactly one proposal per crossing: the insert is guarded by a unique partial index (one proposal per line
whose fall is not yet recorded), so concurrent intakes that all see the crossing make one row. Hysteresis:
once the volume is below the line again, and the proposal is no longer waiting for a decision (or its surge
incident is no longer being worked), the fall is recorded; only then may the line propose again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from bot.core.clock import Clock
from bot.core.config import Playbook, WarningLineSpec
from bot.core.events import SurgeProposed
from store import queries
from store.models import SurgeProposal
from store.states import ACTIVE, ProposalState

log = logging.getLogger(__name__)

# How long a process trusts that a line has its proposal (and skips the check after each complaint); the
# guarded insert keeps a stale belief harmless, and the sweep looks at every line each time.
QUIET = timedelta(seconds=1)
# How long a count below a line is trusted, raised by one for each complaint this process records meanwhile
# (so this process's own complaints never hide a crossing); complaints of other replicas, or received in the
# future, are seen within BELOW_FOR: far inside the 5 s in which a crossing must be proposed.
BELOW_FOR = timedelta(seconds=1)


@dataclass(frozen=True)
class Line:
    """One of the playbook's warning lines, with the key its proposals are stored under."""

    spec: WarningLineSpec
    key: str
    window: timedelta
    count: int


def line_of(spec: WarningLineSpec) -> Line:
    """The line, keyed by its count, window and filter (a changed line is a new line)."""
    key = f"{spec.count}/{int(spec.window.total_seconds())}s"
    if spec.category is not None:
        key += f" category={spec.category}"
    if spec.contact_channel is not None:
        key += f" contact_channel={spec.contact_channel}"
    return Line(spec=spec, key=key, window=spec.window, count=spec.count)


@dataclass(frozen=True)
class Volume:
    """A line and the complaints in its window now."""

    line: Line
    count: int

    @property
    def over(self) -> bool:
        return self.count >= self.line.count


class SurgeWatch:
    def __init__(
        self, playbook: Playbook, db: sessionmaker[Session], clock: Clock, publish: Callable[[object], None]
    ) -> None:
        self.playbook = playbook
        self.db = db
        self.clock = clock
        self.publish = publish  # the event dispatcher's: a new proposal is announced after its commit
        # line key → when this process last saw the line's live proposal (a proposal whose fall is not recorded)
        self._live_seen: dict[str, datetime] = {}
        # line key → (when it was counted below its line, that count + the complaints observed since)
        self._below: dict[str, tuple[datetime, int]] = {}
        self._below_lock = threading.Lock()

    @property
    def warning_lines(self) -> list[Line]:
        return [line_of(spec) for spec in self.playbook.surge.warning_lines]

    def observe(self, now: datetime | None = None, *, thorough: bool = False) -> list[int]:
        """Check the warning lines (after a complaint is recorded; `thorough` at each sweep); the proposals it
        made. Never raises: the complaint is recorded already, and the next complaint or sweep looks again."""
        if not self.playbook.surge.enabled:
            return []
        now = now or self.clock.now()
        lines = [line for line in self.warning_lines if thorough or not self._quiet(line, now)]
        if not lines:
            return []  # every line has its proposal already: a new complaint changes nothing (the usual surge)
        if not thorough:
            lines = [line for line in lines if not self._still_below(line, now)]
            if not lines:
                return []  # every line was counted well below it a moment ago: no query
        try:
            if not thorough:
                lines = self._worth_a_look(lines, now)
                if not lines:
                    return []
            with self.db.begin() as s:
                made = [p for line in lines if (p := self._observe_line(s, line, now, thorough)) is not None]
        except Exception:
            log.exception("surge: could not check the warning lines; the next complaint or sweep looks again")
            return []
        for proposal_id in made:
            log.info("surge: warning line crossed, proposal %d", proposal_id)
            self.publish(SurgeProposed(proposal_id))
        return made

    def _quiet(self, line: Line, now: datetime) -> bool:
        """Whether this process saw the line's live proposal less than QUIET ago (another complaint cannot
        change what is decided: the count only goes up, and the fall is time's doing, seen by the sweep)."""
        seen = self._live_seen.get(line.key)
        return seen is not None and seen <= now < seen + QUIET

    def _still_below(self, line: Line, now: datetime) -> bool:
        """Whether the line's last count, plus one for each complaint observed since (this one included), is
        still below it and less than BELOW_FOR old: then nothing can have reached it but another replica's
        complaints, which the next count (at most BELOW_FOR later) sees."""
        with self._below_lock:
            counted = self._below.get(line.key)
            if counted is None or line.key in self._live_seen:
                return False
            at, count = counted
            if not at <= now < at + BELOW_FOR or count + 1 >= line.count:
                return False
            self._below[line.key] = (at, count + 1)
            return True

    def _worth_a_look(self, lines: list[Line], now: datetime) -> list[Line]:
        """The lines at or over their count, or with a proposal waiting for the fall: one autocommitted read
        (no transaction round trips), the usual answer being none."""
        worth = []
        with self.db() as s:
            s.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            for line in lines:
                if line.key in self._live_seen:
                    worth.append(line)
                    continue
                count = self.line_volume(s, line, now, at_most=line.count)
                with self._below_lock:
                    if count < line.count:
                        self._below[line.key] = (now, count)
                    else:
                        self._below.pop(line.key, None)
                if count >= line.count:
                    worth.append(line)
        return worth

    def _observe_line(self, s: Session, line: Line, now: datetime, thorough: bool) -> int | None:
        count = self.line_volume(s, line, now, at_most=line.count)
        live = queries.get_live_proposal(s, line.key)
        if count >= line.count:
            self._live_seen[line.key] = now
            if live is not None:
                return None  # proposed already for this crossing (or dismissed, activated: not again yet)
            return queries.claim_proposal(
                s,
                {
                    "line": line.key,
                    "line_count": line.count,
                    "line_window_seconds": int(line.window.total_seconds()),
                    "category": line.spec.category,
                    "contact_channel": line.spec.contact_channel,
                    "crossed_at": now,
                    "count": self.line_volume(s, line, now),
                    "state": ProposalState.PROPOSED,
                },
            )
        if live is not None and self._still_open(s, live):
            self._live_seen[line.key] = now
            return None
        if live is not None:
            queries.record_proposal_fall(s, live.id, at=now)
        self._live_seen.pop(line.key, None)
        return None

    @staticmethod
    def _still_open(s: Session, proposal: SurgeProposal) -> bool:
        """A proposal waiting for its decision, or whose surge is still being worked: the line stays quiet."""
        if proposal.state == ProposalState.PROPOSED:
            return True
        if proposal.state == ProposalState.ACTIVATED:
            if proposal.incident_id is None:
                return True  # being activated right now
            incident = queries.get_incident(s, proposal.incident_id)
            return incident is not None and incident.status in ACTIVE
        return False

    @staticmethod
    def line_volume(s: Session, line: Line, now: datetime, *, at_most: int | None = None) -> int:
        """Complaints received in the line's window ending `now` (of its category or contact channel)."""
        spec = line.spec
        return count_received(s, spec.window, now, spec.category, spec.contact_channel, at_most=at_most)

    def volumes(self, now: datetime | None = None) -> list[Volume]:
        """Every line with the complaints in its window now (what `/incident surge` shows)."""
        now = now or self.clock.now()
        with self.db() as s:
            return [Volume(line, self.line_volume(s, line, now)) for line in self.warning_lines]

    def breakdown(self, s: Session, proposal: SurgeProposal) -> dict[str, dict[str, int]]:
        """The complaints of the crossing's window by category and by contact channel."""
        start = proposal.crossed_at - timedelta(seconds=proposal.line_window_seconds)
        return {
            column: queries.complaints_received_by(
                s,
                column,
                start,
                proposal.crossed_at,
                category=proposal.category,
                contact_channel=proposal.contact_channel,
            )
            for column in ("category", "contact_channel")
        }


def count_received(
    s: Session,
    window: timedelta,
    now: datetime,
    category: str | None,
    contact_channel: str | None,
    *,
    at_most: int | None = None,
) -> int:
    """Complaints received within (now − window, now] (of one category or contact channel)."""
    return queries.count_complaints_received(
        s, now - window, now, category=category, contact_channel=contact_channel, at_most=at_most
    )
