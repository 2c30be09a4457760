"""Queries of the running surge plan (bot/surge/plan.py): its own row, the surges it must start or watch, and
the complaint volume it charts and sums up. Functions here never commit: the caller's unit of work does."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from store.models import Complaint, Incident, SurgeRun
from store.queries import _insert_for
from store.states import ACTIVE


def list_surges_to_start(session: Session, kind: str) -> list[int]:
    """Open incidents of the surge kind whose channel is set up and whose plan has not started yet."""
    stmt = (
        select(Incident.id)
        .outerjoin(SurgeRun, SurgeRun.incident_id == Incident.id)
        .where(
            Incident.kind == kind,
            Incident.status.in_(ACTIVE),
            Incident.channel_id.is_not(None),
            Incident.welcome_posted.is_(True),
            SurgeRun.incident_id.is_(None),
        )
        .order_by(Incident.id)
    )
    return list(session.scalars(stmt))


def claim_surge_run(session: Session, incident_id: int, now: datetime) -> bool:
    """Record that the plan starts; False if it has started already (another sweep or replica: it starts once)."""
    stmt = (
        _insert_for(session)(SurgeRun)
        .values(incident_id=incident_id, started_at=now)
        .on_conflict_do_nothing(index_elements=["incident_id"])
        .returning(SurgeRun.incident_id)
    )
    return session.execute(stmt).scalar_one_or_none() is not None


def get_surge_run(session: Session, incident_id: int) -> SurgeRun | None:
    return session.get(SurgeRun, incident_id)


def list_running_surges(session: Session) -> list[int]:
    """Surge plans started and not ended whose incident is still being worked on."""
    stmt = (
        select(SurgeRun.incident_id)
        .join(Incident, Incident.id == SurgeRun.incident_id)
        .where(SurgeRun.ended_at.is_(None), Incident.status.in_(ACTIVE))
        .order_by(SurgeRun.incident_id)
    )
    return list(session.scalars(stmt))


def claim_chart(session: Session, incident_id: int, *, last: datetime | None, now: datetime) -> bool:
    """Take the chart's next refresh (a conditional update: one sweep posts it)."""
    condition = SurgeRun.chart_at.is_(None) if last is None else SurgeRun.chart_at == last
    stmt = update(SurgeRun).where(SurgeRun.incident_id == incident_id, condition).values(chart_at=now)
    return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def set_end_suggested(session: Session, incident_id: int, at: datetime | None) -> bool:
    """Record (or clear, `at` None) the End suggestion; False if it was in that state already."""
    condition = SurgeRun.end_suggested_at.is_(None) if at is not None else SurgeRun.end_suggested_at.is_not(None)
    stmt = update(SurgeRun).where(SurgeRun.incident_id == incident_id, condition).values(end_suggested_at=at)
    return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def end_surge_run(session: Session, incident_id: int, *, by: str, at: datetime) -> bool:
    """Mark the plan ended; False if someone ended it a moment ago."""
    stmt = (
        update(SurgeRun)
        .where(SurgeRun.incident_id == incident_id, SurgeRun.ended_at.is_(None))
        .values(ended_at=at, ended_by=by)
    )
    return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def list_complaint_arrivals(session: Session, start: datetime, end: datetime) -> Sequence[tuple[datetime, str, str]]:
    """(received_at, category, contact_channel) of the complaints received in [start, end), oldest first."""
    stmt = (
        select(Complaint.received_at, Complaint.category, Complaint.contact_channel)
        .where(Complaint.received_at >= start, Complaint.received_at < end)
        .order_by(Complaint.received_at)
    )
    return [(at, category, channel) for at, category, channel in session.execute(stmt)]


def list_resolved_unended(session: Session) -> list[int]:
    """Surge plans started whose incident was resolved (or closed) without End: their summary is still due."""
    stmt = (
        select(SurgeRun.incident_id)
        .join(Incident, Incident.id == SurgeRun.incident_id)
        .where(SurgeRun.ended_at.is_(None), Incident.status.not_in(ACTIVE))
        .order_by(SurgeRun.incident_id)
    )
    return list(session.scalars(stmt))
