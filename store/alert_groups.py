"""The queries of the Alertmanager intake (bot/intake/alerts.py): one row per group key, claimed and locked so
that concurrent deliveries of one group decide one after another, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from store.models import AlertGroup
from store.states import AlertGroupStatus


def lock_alert_group(
    session: Session, group_key: str, *, now: datetime, create: bool
) -> tuple[AlertGroup | None, bool]:
    """The group's row, locked until `session` commits (created first when `create` and it is new), and
    whether this call created it; None if it does not exist and `create` is False.

    The first statement writes: an insert that does nothing if the key exists, or an update that changes
    nothing. On PostgreSQL a concurrent delivery of the same group waits on the row (or on the uncommitted
    insert of its key) and then reads what the first committed; on SQLite the write takes the database's
    write lock, so the second delivery waits (busy timeout) the same way."""
    created = False
    if create:
        insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        created = (
            session.execute(
                insert(AlertGroup)
                .values(
                    group_key=group_key,
                    incident_id=None,
                    last_status=AlertGroupStatus.FIRING,
                    last_seen=now,
                    fingerprints=[],
                )
                .on_conflict_do_nothing(index_elements=["group_key"])
                .returning(AlertGroup.id)
            ).scalar_one_or_none()
            is not None
        )
    else:
        session.execute(
            update(AlertGroup)
            .where(AlertGroup.group_key == group_key)
            .values(last_seen=AlertGroup.last_seen)
            .execution_options(synchronize_session=False)
        )
    row = session.scalars(
        select(AlertGroup)
        .where(AlertGroup.group_key == group_key)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    return row, created


def find_alert_group(session: Session, group_key: str) -> AlertGroup | None:
    """The group's row as committed (tests and the CLI; the intake locks it with `lock_alert_group`)."""
    return session.scalars(select(AlertGroup).where(AlertGroup.group_key == group_key)).one_or_none()
