"""Escalation chains: who is paged, level by level, until someone acknowledges."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from bot.core.clock import utc
from bot.core.config import Playbook, name_in
from bot.core.i18n import current_locale
from store import queries
from store.drills import get_drill
from store.models import Escalation, Incident
from store.states import EscalationState


class Escalations:
    """Chain rules used inside other services' units of work (they never commit)."""

    def __init__(self, playbook: Playbook) -> None:
        self.playbook = playbook

    def start(
        self,
        s: Session,
        incident: Incident,
        *,
        reason: str,
        owner: str | None,
        now: datetime,
        deadline_id: int | None = None,
        caused_by: str | None = None,
    ) -> Escalation:
        """Start a chain with the playbook's levels frozen as they are now; the first page goes out at once."""
        levels: list[dict[str, Any]] = [
            {
                "name": level.name,
                "names": dict(level.names),  # its name per language, shown in pages (Playbook.level_name)
                "owner": owner if level.owner else None,
                "owner_level": level.owner,  # with no owner known yet, page whoever leads at page time
                "role": level.role,
                "users": list(level.users),
                "usergroup": level.usergroup,
                "leadership": level.leadership,  # the surge plan's leadership group, read at page time
                "ack_timeout": int(level.ack_timeout.total_seconds()),
            }
            for level in self.playbook.escalation.levels
        ]
        if incident.is_drill:
            levels = self._drill_levels(s, incident, levels)
        chain = Escalation(
            incident_id=incident.id,
            deadline_id=deadline_id,
            reason=reason,
            levels=levels,
            level=0,
            state=EscalationState.ACTIVE,
            started_at=now,
            next_action_at=now,
            caused_by=caused_by,
        )
        queries.add_escalation(s, chain)
        queries.add_timeline_event(
            s,
            incident.id,
            at=now,
            event="escalation_started",
            actor_id=None,
            text=reason,
            data={"escalation_id": chain.id, "levels": [lvl["name"] for lvl in levels]},
        )
        return chain

    @staticmethod
    def _drill_levels(s: Session, incident: Incident, levels: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A drill pages only the people in it (its role owners and reporter), never a group, and its
        acknowledgement timeouts run at the drill's speed."""
        drill = get_drill(s, incident.id)
        speed = drill.speed if drill is not None else 1.0
        participants = {a.user_id for a in incident.roles if a.user_id} | {incident.reporter_id}
        for level in levels:
            level["users"] = [u for u in level["users"] if u in participants]
            level["usergroup"] = None
            level["leadership"] = False  # the surge plan's leadership group is not in the drill either
            level["ack_timeout"] = level["ack_timeout"] / speed  # seconds, fractional at high speeds
        return levels

    def active(self, s: Session, incident_id: int) -> list[Escalation]:
        return queries.list_escalations(s, incident_id, state=EscalationState.ACTIVE)

    def all(self, s: Session, incident_id: int) -> list[Escalation]:
        return queries.list_escalations(s, incident_id)

    def acknowledge(self, s: Session, chain: Escalation, *, actor: str, now: datetime) -> timedelta | None:
        """Stop the chain if it is still active: every page it still had pending is cancelled. Returns the time
        to acknowledge, or None when another request (or the sweeper) stopped it first."""
        if not queries.acknowledge_escalation(s, chain.id, actor=actor, at=now):
            return None
        chain.state, chain.acked_at, chain.acked_by, chain.next_action_at = (
            EscalationState.ACKNOWLEDGED,
            now,
            actor,
            None,
        )
        took = now - utc(chain.started_at)
        queries.add_timeline_event(
            s,
            chain.incident_id,
            at=now,
            event="acknowledged",
            actor_id=actor,
            text=chain.reason,
            data={"escalation_id": chain.id, "seconds_to_ack": int(took.total_seconds()), "level": chain.level},
        )
        return took

    def paged_users(self, s: Session, chain: Escalation) -> set[str]:
        """Everyone a chain has paged so far (they may acknowledge it)."""
        rows = queries.list_notifications(s, prefix=f"page:{chain.id}:")
        return {user for row in rows for user in row.recipients}


def level_name(level: dict[str, Any]) -> str:
    """A frozen escalation level's name in the current language (`names:` in the playbook; older chains have
    only the English `name`)."""
    return name_in(str(level["name"]), level.get("names") or {}, current_locale())
