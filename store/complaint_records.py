"""Queries and writes for complaint records: each complaint's deadlines, the complaint system's events, the
sweep that marks overdue deadlines missed, and the complaint figures of the KPI report. Functions here never
commit: the caller's unit of work does."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Integer, cast, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from store.models import Complaint, ComplaintDeadline, ComplaintEvent
from store.states import COMPLAINT_DEADLINE_MOVES, DeadlineState, require_moves

_DEADLINES_INSERT = insert(ComplaintDeadline.metadata.tables["complaint_deadlines"])  # built once: the hot path


def add_complaint_deadlines(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert a complaint's deadlines in one statement (the intake's hot path: one round trip, not four; a Core
    insert of the table, which skips the ORM's bulk machinery: a third of the intake's time)."""
    if rows:
        session.connection().execute(_DEADLINES_INSERT, list(rows))


def lock_complaint_by_external_id(session: Session, external_id: str) -> Complaint | None:
    """The complaint, locked until the transaction ends on PostgreSQL, so two events for it apply one after
    the other (SQLite has one writer at a time anyway)."""
    stmt = select(Complaint).where(Complaint.external_id == external_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return session.scalars(stmt).one_or_none()


def list_complaint_deadlines(session: Session, complaint_id: int) -> list[ComplaintDeadline]:
    stmt = (
        select(ComplaintDeadline).where(ComplaintDeadline.complaint_id == complaint_id).order_by(ComplaintDeadline.id)
    )
    return list(session.scalars(stmt))


def list_complaint_events(session: Session, complaint_id: int) -> list[ComplaintEvent]:
    stmt = select(ComplaintEvent).where(ComplaintEvent.complaint_id == complaint_id).order_by(ComplaintEvent.at)
    return list(session.scalars(stmt))


def claim_complaint_event(session: Session, values: dict[str, Any]) -> int | None:
    """Insert an event unless one of its type is recorded for the complaint already; its id, or None."""
    dialect_insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = (
        dialect_insert(ComplaintEvent)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["complaint_id", "type"])
        .returning(ComplaintEvent.id)
    )
    found = session.execute(stmt).scalar_one_or_none()
    return int(found) if found is not None else None


def meet_complaint_deadline(deadline: ComplaintDeadline, at: datetime) -> None:
    """Record that the work was done at `at`: met if that was by the due time, else missed (done late)."""
    on_time = deadline.due_at is None or at <= deadline.due_at
    to = DeadlineState.MET if on_time else DeadlineState.MISSED
    if to != deadline.state:
        require_moves(COMPLAINT_DEADLINE_MOVES, [deadline.state], to)
        deadline.state = to
    deadline.met_at = at


def start_complaint_deadline(deadline: ComplaintDeadline, start: datetime, due: datetime) -> None:
    """Start a deadline whose clock waited for an event (the satisfaction follow-up waits for the closing)."""
    deadline.start_at, deadline.due_at = start, due


def mark_overdue_complaint_deadlines(session: Session, now: datetime) -> int:
    """Every pending deadline due by `now` becomes missed, in one statement; how many did."""
    require_moves(COMPLAINT_DEADLINE_MOVES, [DeadlineState.PENDING], DeadlineState.MISSED)
    stmt = (
        update(ComplaintDeadline)
        .where(ComplaintDeadline.state == DeadlineState.PENDING, ComplaintDeadline.due_at <= now)
        .values(state=DeadlineState.MISSED)
        .execution_options(synchronize_session=False)
    )
    return int(session.execute(stmt).rowcount or 0)  # type: ignore[attr-defined]


# ---- the KPI report's complaint figures ----------------------------------------------------------------------


@dataclass
class ComplaintKpiRows:
    """Raw figures over complaints received in a period; bot/review/kpi.py folds them into the report."""

    by_channel_category: list[tuple[str, str, int]] = field(default_factory=list)
    # first response: (whole minute, count, summed microseconds) from registration to the first response
    first_response: list[tuple[int, int, int]] = field(default_factory=list)
    # (deadline key, state, done late or not, count)
    deadlines: list[tuple[str, str, bool, int]] = field(default_factory=list)
    rated: int = 0
    satisfied: int = 0


def _seconds(dialect: str, end: Any, start: Any) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.date_part("epoch", end - start)  # type: ignore[no-any-return]
    return (func.julianday(end) - func.julianday(start)) * 86400.0  # type: ignore[no-any-return]


def complaint_kpi_rows(session: Session, start: datetime, end: datetime, good_at_least: int) -> ComplaintKpiRows:
    """Four grouped reads over the complaints received in [start, end), each by a received_at index and
    without a join (deadlines and events carry their complaint's received_at)."""
    dialect = session.get_bind().dialect.name
    rows = ComplaintKpiRows()
    counted = session.execute(
        select(Complaint.contact_channel, Complaint.category, func.count())
        .where(Complaint.received_at >= start, Complaint.received_at < end)
        .group_by(Complaint.contact_channel, Complaint.category)
    )
    rows.by_channel_category = [(str(a), str(b), int(n)) for a, b, n in counted]

    def events_of(kind: str) -> tuple[ColumnElement[bool], ...]:
        return (ComplaintEvent.type == kind, ComplaintEvent.received_at >= start, ComplaintEvent.received_at < end)

    seconds = _seconds(dialect, ComplaintEvent.at, ComplaintEvent.received_at)
    if dialect == "postgresql":
        minute: ColumnElement[Any] = cast(func.floor(seconds / 60), Integer)
    else:  # julianday arithmetic is off by microseconds
        minute = cast(seconds / 60.0 + 0.000001, Integer)
    micros = func.sum(cast(func.round(seconds * 1000000.0), BigInteger))
    responded = session.execute(
        select(minute.label("minute"), func.count(), micros)
        .where(*events_of("first_response"))
        .group_by("minute")  # by the label: the expression's literals are bound apart on PostgreSQL
    )
    rows.first_response = [(int(m), int(n), int(t)) for m, n, t in responded]

    late = ComplaintDeadline.met_at.is_not(None)
    states = session.execute(
        select(ComplaintDeadline.key, ComplaintDeadline.state, late.label("late"), func.count())
        .where(ComplaintDeadline.received_at >= start, ComplaintDeadline.received_at < end)
        .group_by(ComplaintDeadline.key, ComplaintDeadline.state, "late")
    )
    rows.deadlines = [(str(k), str(s), bool(done) and s == DeadlineState.MISSED, int(n)) for k, s, done, n in states]

    rated = session.execute(
        select(func.count(), func.sum(cast(ComplaintEvent.score >= good_at_least, Integer))).where(
            *events_of("satisfaction")
        )
    ).one()
    rows.rated, rows.satisfied = int(rated[0] or 0), int(rated[1] or 0)
    return rows
