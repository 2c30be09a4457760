"""Queries and writes for the plan's versions and their read confirmations. Never commit: the caller does."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from store.models import PlanConfirmation, PlaybookVersion


def latest_playbook_version(session: Session) -> PlaybookVersion | None:
    """The plan in force: the version loaded last."""
    return session.scalars(select(PlaybookVersion).order_by(PlaybookVersion.id.desc()).limit(1)).first()


def list_playbook_versions(session: Session) -> list[PlaybookVersion]:
    """Every version loaded, oldest first."""
    return list(session.scalars(select(PlaybookVersion).order_by(PlaybookVersion.id)))


def find_playbook_versions(session: Session, version: str) -> list[PlaybookVersion]:
    """The stored texts of `version` (more than one only if it was loaded with different content)."""
    stmt = select(PlaybookVersion).where(PlaybookVersion.version == version).order_by(PlaybookVersion.id)
    return list(session.scalars(stmt))


def get_playbook_version(session: Session, version_id: int) -> PlaybookVersion | None:
    return session.get(PlaybookVersion, version_id)


def add_playbook_version(
    session: Session,
    *,
    version: str,
    content_hash: str,
    text: str,
    loaded_at: datetime,
    effective_on: date,
    reason: str,
    changes: list[str],
) -> PlaybookVersion:
    row = PlaybookVersion(
        version=version,
        content_hash=content_hash,
        text=text,
        loaded_at=loaded_at,
        effective_on=effective_on,
        reason=reason,
        changes=changes,
    )
    session.add(row)
    session.flush()
    return row


def claim_announcement(session: Session, version_id: int, *, at: datetime) -> bool:
    """Mark a version announced; False if another process did first."""
    stmt = (
        update(PlaybookVersion)
        .where(PlaybookVersion.id == version_id, PlaybookVersion.announced_at.is_(None))
        .values(announced_at=at)
    )
    return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def set_announcement(session: Session, version_id: int, *, channel: str, ts: str) -> None:
    session.execute(
        update(PlaybookVersion)
        .where(PlaybookVersion.id == version_id)
        .values(announcement_channel=channel, announcement_ts=ts)
    )


def claim_review_reminder(session: Session, version_id: int, *, last: datetime | None, at: datetime) -> bool:
    """Record a yearly-review reminder, once per moment: False if another process sent it."""
    stmt = update(PlaybookVersion).where(PlaybookVersion.id == version_id).values(review_reminded_at=at)
    if last is None:
        stmt = stmt.where(PlaybookVersion.review_reminded_at.is_(None))
    else:
        stmt = stmt.where(PlaybookVersion.review_reminded_at == last)
    return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def add_plan_readers(
    session: Session, version_id: int, users: Iterable[str], *, at: datetime, remind_at: datetime
) -> None:
    """Ask `users` to confirm reading a version (those already asked are left as they are)."""
    asked = {
        c.user_id for c in session.scalars(select(PlanConfirmation).where(PlanConfirmation.version_id == version_id))
    }
    for user in dict.fromkeys(users):
        if user not in asked:
            session.add(
                PlanConfirmation(
                    version_id=version_id, user_id=user, asked_at=at, next_reminder_at=remind_at, reminders=0
                )
            )
    session.flush()


def list_plan_confirmations(session: Session, version_id: int) -> list[PlanConfirmation]:
    stmt = select(PlanConfirmation).where(PlanConfirmation.version_id == version_id).order_by(PlanConfirmation.id)
    return list(session.scalars(stmt))


def get_plan_confirmation(session: Session, version_id: int, user_id: str) -> PlanConfirmation | None:
    stmt = select(PlanConfirmation).where(
        PlanConfirmation.version_id == version_id, PlanConfirmation.user_id == user_id
    )
    return session.scalars(stmt).first()


def confirm_plan_read(session: Session, version_id: int, user_id: str, *, at: datetime) -> bool:
    """Record that `user_id` read the version; True only for the first confirmation (clicks repeat)."""
    stmt = (
        update(PlanConfirmation)
        .where(
            PlanConfirmation.version_id == version_id,
            PlanConfirmation.user_id == user_id,
            PlanConfirmation.confirmed_at.is_(None),
        )
        .values(confirmed_at=at, next_reminder_at=None)
    )
    return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def due_plan_reminders(session: Session, version_id: int, now: datetime) -> list[PlanConfirmation]:
    """Who has not confirmed reading the version and is due a reminder."""
    stmt = select(PlanConfirmation).where(
        PlanConfirmation.version_id == version_id,
        PlanConfirmation.confirmed_at.is_(None),
        PlanConfirmation.next_reminder_at <= now,
    )
    return list(session.scalars(stmt.order_by(PlanConfirmation.id)))


def claim_plan_reminder(session: Session, confirmation_id: int, *, due: datetime, next_at: datetime) -> bool:
    """Move a due reminder on; False if another process sent it or the person confirmed meanwhile."""
    stmt = (
        update(PlanConfirmation)
        .where(
            PlanConfirmation.id == confirmation_id,
            PlanConfirmation.confirmed_at.is_(None),
            PlanConfirmation.next_reminder_at == due,
        )
        .values(next_reminder_at=next_at, reminders=PlanConfirmation.reminders + 1)
    )
    return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def count_plan_confirmations(session: Session, version_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """Per version: (confirmed, asked)."""
    ids = list(version_ids)
    if not ids:
        return {}
    stmt = (
        select(
            PlanConfirmation.version_id,
            func.count(PlanConfirmation.confirmed_at),
            func.count(PlanConfirmation.id),
        )
        .where(PlanConfirmation.version_id.in_(ids))
        .group_by(PlanConfirmation.version_id)
    )
    return {int(v): (int(c), int(n)) for v, c, n in session.execute(stmt)}
