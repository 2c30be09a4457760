"""The incident card from a stored incident: the row's values copied into CardFacts for the Block Kit builders
(bot/slack/blocks.py), which never see the store."""

from __future__ import annotations

from typing import Any

from bot.core.config import Playbook
from bot.core.render import Renderer
from bot.slack.blocks import CardFacts, CardRole, card_text, incident_card
from store.models import Incident


def card_facts(incident: Incident) -> CardFacts:
    """What the card shows, copied out of the row (roles included, so nothing loads lazily later)."""
    return CardFacts(
        id=incident.id,
        title=incident.title,
        kind=incident.kind,
        severity=incident.severity,
        status=incident.status,
        reporter_id=incident.reporter_id,
        created_at=incident.created_at,
        playbook_version=incident.playbook_version,
        category=incident.category,
        description=incident.description,
        customer_ref=incident.customer_ref,
        resolution_summary=incident.resolution_summary,
        is_drill=incident.is_drill,
        roles=tuple(CardRole(a.role, a.user_id, a.assigned_by) for a in incident.roles),
    )


def card(incident: Incident, playbook: Playbook, renderer: Renderer) -> tuple[str, list[dict[str, Any]]]:
    """The card's notification text and blocks, in the current language (`use_locale`)."""
    facts = card_facts(incident)
    return card_text(facts, playbook), incident_card(facts, playbook, renderer)
