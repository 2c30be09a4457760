"""Every complaint is a record with the seed's deadlines (seed 000: first response 24 h, investigation 48 h,
solution 48 h, satisfaction follow-up 72 h after completion), fed by the complaint system's events
(POST /api/v1/complaints/<external id>/events) and counted in the KPIs.

The deadlines come from the playbook's `kinds.complaint.deadlines` and are written in the intake's own
transaction (one bulk insert), so a recorded complaint always has them. A deadline with `start: resolved`
(the satisfaction follow-up) is written with no due time; the `closed` event starts its clock. The sweeper
marks overdue ones missed in one statement per sweep; nobody is paged per complaint (at a surge's volume
that would be a storm of messages), the complaint system follows its own cases up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot.core.clock import Clock, utc
from bot.core.config import DeadlineSpec, Playbook
from bot.core.inputs import day_in_range
from bot.core.text import mask_identifiers
from bot.deadlines.service import Deadlines
from bot.intake.service import ComplaintInput, IntakeError, IntakeNotFoundError, IntakeOrderError
from store.complaint_records import (
    add_complaint_deadlines,
    claim_complaint_event,
    list_complaint_deadlines,
    list_complaint_events,
    lock_complaint_by_external_id,
    mark_overdue_complaint_deadlines,
    meet_complaint_deadline,
    start_complaint_deadline,
)
from store.models import Complaint, ComplaintDeadline, ComplaintEvent
from store.states import DeadlineState

log = logging.getLogger(__name__)

COMPLAINT_KIND = "complaint"
CLOSED = "closed"
SATISFACTION = "satisfaction"
# each event of the complaint system and the deadline it meets (`closed` meets none: it starts the
# deadlines that run from the complaint's completion, `start: resolved` in the playbook)
MEETS = {
    "first_response": "first_response",
    "investigation_done": "investigation",
    "solution_given": "solution",
    CLOSED: None,
    SATISFACTION: "satisfaction",
}
EVENT_TYPES = tuple(MEETS)
LONGEST_NOTE = 4000
SCORES = range(1, 6)


@dataclass(frozen=True)
class EventInput:
    type: str
    at: datetime
    score: int | None
    note: str | None


def parse_moment(body: dict[str, Any], field: str) -> datetime:
    """An ISO 8601 moment with its UTC offset, or IntakeError naming the field."""
    raw = body.get(field)
    if raw is None:
        raise IntakeError(field, "missing")
    try:
        if not isinstance(raw, str):
            raise ValueError
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise IntakeError(field, "must be an ISO 8601 date and time") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise IntakeError(field, "needs a UTC offset, e.g. 2026-11-28T09:30:00+08:00")
    if not day_in_range(moment.date()):  # year 1 at +14:00 has no UTC time: it was a 500
        raise IntakeError(field, "must lie between 2000-01-01 and 2099-12-31")
    return utc(moment)


def parse_event(body: Any) -> EventInput:
    """The request body as an event, or IntakeError naming the first field that is wrong."""
    if not isinstance(body, dict):
        raise IntakeError("body", "must be a JSON object")
    kind = body.get("type")
    if kind is None:
        raise IntakeError("type", "missing")
    if kind not in EVENT_TYPES:
        raise IntakeError("type", "must be one of " + ", ".join(EVENT_TYPES))
    at = parse_moment(body, "at")
    score = body.get("score")
    if kind == SATISFACTION:
        if score is None:
            raise IntakeError("score", "missing: a satisfaction event carries the customer's score, 1 to 5")
        if isinstance(score, bool) or not isinstance(score, int) or score not in SCORES:
            raise IntakeError("score", "must be a whole number from 1 to 5")
    elif score is not None:
        raise IntakeError("score", "only a satisfaction event carries a score")
    note = body.get("note")
    if note is not None:
        if not isinstance(note, str):
            raise IntakeError("note", "must be a string")
        note = note.strip() or None
        if note is not None and len(note) > LONGEST_NOTE:
            raise IntakeError("note", f"longer than {LONGEST_NOTE} characters")
    return EventInput(type=kind, at=at, score=score, note=note)


@dataclass(frozen=True)
class EventAnswer:
    """The complaint after the event, masked, and whether the event was new (False: a repeat)."""

    created: bool
    complaint: dict[str, Any]


class ComplaintRecords:
    """A complaint's deadlines and the events that meet them; the sweep job that marks overdue ones missed."""

    def __init__(self, db: sessionmaker[Session], clock: Clock, playbook: Playbook, deadlines: Deadlines) -> None:
        self.db = db
        self.clock = clock
        self.playbook = playbook
        self.deadlines = deadlines
        kind = playbook.kinds.get(COMPLAINT_KIND)
        self.specs: dict[str, DeadlineSpec] = {d.key: d for d in kind.deadlines} if kind else {}
        self.default_severity = kind.default_severity if kind else "sev3"

    # ---- on intake ------------------------------------------------------------------------------------------

    def add_deadlines(self, s: Session, complaint_id: int, complaint: ComplaintInput) -> None:
        """The playbook's deadlines for a complaint just recorded, in the intake's transaction (one insert)."""
        severity = complaint.severity or self.default_severity
        received = utc(complaint.received_at)
        rows = []
        for spec in self.specs.values():
            if not spec.applies_to(severity):
                continue
            starts_now = spec.start == "opened"
            due = self.deadlines.due(spec.clock, received, spec.duration_for(severity)) if starts_now else None
            rows.append(
                {
                    "complaint_id": complaint_id,
                    "key": spec.key,
                    "received_at": received,
                    "clock": spec.clock,
                    "start_at": received if starts_now else None,
                    "due_at": due,
                    "state": DeadlineState.PENDING,
                    "met_at": None,
                }
            )
        add_complaint_deadlines(s, rows)

    # ---- the complaint system's events ----------------------------------------------------------------------

    def record_event(self, external_id: str, body: Any) -> EventAnswer:
        """Apply one event; a repeat of a recorded one changes nothing. IntakeNotFoundError (404) for an unknown
        complaint, IntakeError (422) for a bad body, IntakeOrderError (409) for an event out of order or
        contradicting one already recorded."""
        event = parse_event(body)
        with self.db.begin() as s:
            complaint = lock_complaint_by_external_id(s, external_id)
            if complaint is None:
                raise IntakeNotFoundError(
                    "external_id",
                    f"no complaint with external_id {mask_identifiers(external_id)}; record it first with "
                    "POST /api/v1/complaints",
                )
            events = {e.type: e for e in list_complaint_events(s, complaint.id)}
            if event.type in events:
                return self._repeat(s, complaint, events[event.type], event)
            self._check_order(complaint, events, event)
            claimed = claim_complaint_event(
                s,
                {
                    "complaint_id": complaint.id,
                    "type": event.type,
                    "received_at": complaint.received_at,
                    "at": event.at,
                    "score": event.score,
                    "note": event.note,
                    "recorded_at": self.clock.now(),
                },
            )
            if claimed is None:  # a concurrent request recorded one first (SQLite, which locks no row)
                again = {e.type: e for e in list_complaint_events(s, complaint.id)}
                return self._repeat(s, complaint, again[event.type], event)
            self._apply(s, complaint, event)
            return EventAnswer(True, self._view(complaint, s))

    def _repeat(self, s: Session, complaint: Complaint, same: ComplaintEvent, event: EventInput) -> EventAnswer:
        """The same event again changes nothing; the same type with other details is a conflict."""
        if (utc(same.at), same.score, same.note) != (event.at, event.score, event.note):
            raise IntakeOrderError(
                "type",
                f"a {event.type} event is recorded already for this complaint (at {self._shown(same.at)}) with "
                "other details; each type of event is recorded once",
            )
        return EventAnswer(False, self._view(complaint, s))

    def _check_order(self, complaint: Complaint, events: dict[str, ComplaintEvent], event: EventInput) -> None:
        if event.at < utc(complaint.received_at):
            raise IntakeError("at", f"is before the complaint was received ({self._shown(complaint.received_at)})")
        if event.type == SATISFACTION:
            closed = events.get(CLOSED)
            if closed is None:
                raise IntakeOrderError(
                    "type", "satisfaction comes after the complaint is closed: send the closed event first"
                )
            if event.at < utc(closed.at):
                raise IntakeOrderError(
                    "at",
                    f"satisfaction at {self._shown(event.at)} is before the complaint was closed "
                    f"({self._shown(closed.at)})",
                )

    def _apply(self, s: Session, complaint: Complaint, event: EventInput) -> None:
        key = MEETS[event.type]
        severity = complaint.severity or self.default_severity
        for deadline in list_complaint_deadlines(s, complaint.id):
            spec = self.specs.get(deadline.key)
            if event.type == CLOSED and deadline.due_at is None and spec is not None and spec.start == "resolved":
                due = self.deadlines.due(deadline.clock, event.at, spec.duration_for(severity))
                start_complaint_deadline(deadline, event.at, due)
            elif deadline.key == key and deadline.state in (DeadlineState.PENDING, DeadlineState.MISSED):
                meet_complaint_deadline(deadline, event.at)

    # ---- what is shown --------------------------------------------------------------------------------------

    def _shown(self, moment: datetime | None) -> str | None:
        """A moment in the playbook's timezone, with its offset (+08:00 for Asia/Shanghai)."""
        return None if moment is None else utc(moment).astimezone(self.playbook.tz).isoformat()

    def _view(self, complaint: Complaint, s: Session) -> dict[str, Any]:
        """The complaint's deadlines and events, masked (the note is raw only in the store)."""
        s.flush()
        locale = self.playbook.locale
        deadlines = []
        for row in list_complaint_deadlines(s, complaint.id):
            spec = self.specs.get(row.key)
            deadlines.append(self._deadline_view(row, spec.name_in(locale) if spec else row.key))
        events = [
            {
                "type": e.type,
                "at": self._shown(e.at),
                **({"score": e.score} if e.score is not None else {}),
                **({"note": mask_identifiers(e.note)} if e.note else {}),
            }
            for e in list_complaint_events(s, complaint.id)
        ]
        return {
            "number": complaint.id,
            "external_id": mask_identifiers(complaint.external_id),
            "received_at": self._shown(complaint.received_at),
            "closed": any(e["type"] == CLOSED for e in events),
            "deadlines": deadlines,
            "events": events,
        }

    def _deadline_view(self, row: ComplaintDeadline, name: str) -> dict[str, Any]:
        return {
            "key": row.key,
            "name": name,
            "clock": row.clock,
            "start_at": self._shown(row.start_at),
            "due_at": self._shown(row.due_at),
            "state": row.state,
            "met_at": self._shown(row.met_at),
        }

    # ---- the sweeper's job ----------------------------------------------------------------------------------

    def mark_missed(self, now: datetime) -> int:
        """Every pending complaint deadline due by `now` is missed (one statement; run by every sweep)."""
        with self.db.begin() as s:
            missed = mark_overdue_complaint_deadlines(s, now)
        if missed:
            log.info("complaint deadlines missed: %d", missed)
        return missed
