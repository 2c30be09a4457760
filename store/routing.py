"""Queries of complaint routing (bot/intake/routing.py): cluster locks, counts in a window, linking complaints
to incidents, and the complaint list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, case, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from store.models import Complaint, ComplaintCluster, Incident


@dataclass(frozen=True)
class ClusterState:
    incident_id: int | None
    complaints: int  # complaints with that incident so far


def lock_cluster(session: Session, key: str, *, now: datetime) -> ClusterState:
    """The cluster's state, its row created if new and locked until the caller's transaction ends: concurrent
    complaints of one cluster decide one after the other (PostgreSQL: the row lock of this UPDATE; SQLite: the
    write lock). One statement when the cluster exists."""
    touch = (
        update(ComplaintCluster)
        .where(ComplaintCluster.key == key)
        .values(updated_at=now)
        .returning(ComplaintCluster.incident_id, ComplaintCluster.complaints)
    )
    row = session.execute(touch).first()
    if row is None:
        insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        session.execute(
            insert(ComplaintCluster)
            .values(key=key, updated_at=now, complaints=0)
            .on_conflict_do_nothing(index_elements=["key"])
        )
        row = session.execute(touch).one()
    return ClusterState(row[0], int(row[1] or 0))


@dataclass(frozen=True)
class ClusterTurn:
    """A cluster's state when a new complaint takes its lock: its incident, with that incident's status and
    channel name, and its complaint count (already counting the new one when the incident is active)."""

    incident_id: int | None
    complaints: int
    status: str | None
    channel_name: str | None


_CLUSTERS = cast(Table, ComplaintCluster.__table__)
_COMPLAINTS = cast(Table, Complaint.__table__)
_INCIDENTS = cast(Table, Incident.__table__)
# the join's statements, built once: per complaint, Core statements on the session's connection (no statement
# construction, no ORM execution layer: those were most of the hot path's Python time)
_TAKE_TURN = (
    update(_CLUSTERS)
    .where(_CLUSTERS.c.key == bindparam("cluster_key_"))
    .values(
        updated_at=bindparam("now_", type_=_CLUSTERS.c.updated_at.type),
        complaints=case((_CLUSTERS.c.incident_id.is_(None), _CLUSTERS.c.complaints), else_=_CLUSTERS.c.complaints + 1),
    )
    .returning(_CLUSTERS.c.incident_id, _CLUSTERS.c.complaints)
)
_INCIDENT_STATE = select(_INCIDENTS.c.status, _INCIDENTS.c.channel_name).where(
    _INCIDENTS.c.id == bindparam("incident_id_")
)
_ROUTE_COMPLAINT = (
    update(_COMPLAINTS)
    .where(_COMPLAINTS.c.id == bindparam("complaint_id_"))
    .values(incident_id=bindparam("incident_id_"), routed=bindparam("route_"))
)


def take_cluster_turn(session: Session, key: str, *, now: datetime) -> ClusterTurn:
    """`lock_cluster` with the join's count, then the incident's state: two statements for a complaint joining
    its cluster's open incident (the intake's hot path). The count goes up whenever the cluster has an incident;
    when that incident is no longer active the caller resets it (set_cluster). The state is read by a second
    statement on purpose: on PostgreSQL a statement that waited for the lock still reads other tables as of its
    start, so a subquery would miss the incident a concurrent complaint of the cluster has just opened."""
    conn = session.connection()
    params = {"cluster_key_": key, "now_": now}
    row = conn.execute(_TAKE_TURN, params).first()
    if row is None:
        insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        conn.execute(
            insert(_CLUSTERS)
            .values(key=key, updated_at=now, complaints=0)
            .on_conflict_do_nothing(index_elements=["key"])
        )
        row = conn.execute(_TAKE_TURN, params).one()
    incident_id = row[0]
    state = conn.execute(_INCIDENT_STATE, {"incident_id_": incident_id}).first() if incident_id is not None else None
    return ClusterTurn(incident_id, int(row[1] or 0), *((state[0], state[1]) if state else (None, None)))


def route_complaint(session: Session, complaint_id: int, *, incident_id: int, route: str) -> None:
    """Put a complaint just recorded with its incident (one update; the ORM would load it first)."""
    session.connection().execute(
        _ROUTE_COMPLAINT, {"complaint_id_": complaint_id, "incident_id_": incident_id, "route_": route}
    )


def set_cluster(session: Session, key: str, *, incident_id: int | None, complaints: int) -> None:
    session.execute(
        update(ComplaintCluster)
        .where(ComplaintCluster.key == key)
        .values(incident_id=incident_id, complaints=complaints)
    )


def incident_state(session: Session, incident_id: int) -> tuple[str, str | None] | None:
    """An incident's status and channel name, without loading the rest of it (a join needs no more)."""
    row = session.execute(select(Incident.status, Incident.channel_name).where(Incident.id == incident_id)).first()
    return None if row is None else (str(row[0]), row[1])


def lock_unrouted_in_cluster(session: Session, key: str, *, since: datetime) -> list[int]:
    """The cluster's complaints received since `since` that are not with an incident yet, locked (PostgreSQL),
    so an escalation of one of them waits for this transaction, or this one skips it once escalated."""
    stmt = (
        select(Complaint.id)
        .where(Complaint.cluster_key == key, Complaint.created_at >= since, Complaint.incident_id.is_(None))
        .order_by(Complaint.id)
        .with_for_update()
    )
    return [int(found) for found in session.scalars(stmt)]


def link_complaints(session: Session, ids: Sequence[int], *, incident_id: int, route: str) -> None:
    """Put waiting complaints with the incident their cluster opened."""
    session.execute(
        update(Complaint)
        .where(Complaint.id.in_(list(ids)), Complaint.incident_id.is_(None))
        .values(incident_id=incident_id, routed=route)
        .execution_options(synchronize_session=False)
    )


def claim_complaint_for_incident(session: Session, complaint_id: int, *, route: str) -> bool:
    """Mark a complaint as going to an incident unless it is already with one; False if it was (the conditional
    update decides between concurrent clicks: the loser waits for the winner's commit and finds it taken)."""
    result = session.execute(
        update(Complaint)
        .where(Complaint.id == complaint_id, Complaint.routed.is_(None), Complaint.incident_id.is_(None))
        .values(routed=route)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def list_recent_complaints(
    session: Session,
    *,
    limit: int,
    number: int | None = None,
    since: datetime | None = None,
    contact_channel: str | None = None,
    categories: Sequence[str] | None = None,
) -> list[tuple[Complaint, Incident | None]]:
    """The newest complaints first, each with its incident (if any), narrowed by what SQL can narrow."""
    stmt = select(Complaint, Incident).outerjoin(Incident, Incident.id == Complaint.incident_id)
    if number is not None:
        stmt = stmt.where(Complaint.id == number)
    if since is not None:
        stmt = stmt.where(Complaint.created_at >= since)
    if contact_channel is not None:
        stmt = stmt.where(Complaint.contact_channel == contact_channel)
    if categories is not None:
        stmt = stmt.where(func.lower(Complaint.category).in_([c.lower() for c in categories]))
    stmt = stmt.order_by(Complaint.id.desc()).limit(limit)
    return [(complaint, incident) for complaint, incident in session.execute(stmt)]
