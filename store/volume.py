"""Queries of the channel-creation budget (bot/incidents/budget.py): the moments booked for conversations.create.

A `channel.create` outbox row that has been taken (or sent) holds its booked moment in `due_at`; one waiting
in the queue is due at its moment. The budget reads them back to book the next one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.models import Complaint, OutboxMessage, TimelineEvent
from store.states import OutboxState

CREATE = "channel.create"


def booked_creates(session: Session, *, since: datetime, other_than: str) -> dict[str, datetime]:
    """The moments of channel creations booked after `since` (done, under way or queued), by key."""
    stmt = select(OutboxMessage.key, OutboxMessage.due_at).where(
        OutboxMessage.effect == CREATE,
        OutboxMessage.key != other_than,
        OutboxMessage.due_at > since,
        OutboxMessage.state.in_((OutboxState.SENT, OutboxState.PENDING)),
    )
    return {key: at for key, at in session.execute(stmt)}


def queue_effect(session: Session, key: str, *, at: datetime, payload: dict[str, Any]) -> None:
    """Queue the effect `key` (written in this transaction) for `at`. It counts as taken once, so the sweep runs
    it at its moment rather than leaving it to the request that wrote it."""
    row = session.scalars(select(OutboxMessage).where(OutboxMessage.key == key)).one()
    row.due_at, row.attempts, row.payload = at, 1, {**(row.payload or {}), **payload}


def has_timeline_event(session: Session, incident_id: int, event: str) -> bool:
    """Whether the incident's timeline holds `event` (e.g. its channel was queued)."""
    stmt = select(TimelineEvent.id).where(TimelineEvent.incident_id == incident_id, TimelineEvent.event == event)
    return session.scalar(stmt.limit(1)) is not None


def count_complaints(session: Session, external_id_prefix: str) -> int:
    """How many complaints are recorded whose external id starts with the prefix (a benchmark's own)."""
    stmt = select(func.count()).select_from(Complaint).where(Complaint.external_id.startswith(external_id_prefix))
    return int(session.scalar(stmt) or 0)
