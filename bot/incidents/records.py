"""Loading an incident inside a unit of work: by number, or by the channel a command was typed in.

Every command opens one transaction and loads its incident once with these, then decides and writes in it.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from bot.core.errors import NotFoundError
from bot.core.i18n import _
from store import queries
from store.models import Incident


def load_incident(s: Session, incident_id: int) -> Incident:
    """The incident numbered `incident_id` (with its roles), or a refusal that says how to find one."""
    incident = queries.get_incident(s, incident_id)
    if incident is None:
        raise NotFoundError(
            _("There is no incident #{number}. `/incident list` shows the open ones.", number=incident_id)
        )
    return incident


def locate_incident(s: Session, *, channel_id: str | None, number: int | None = None) -> Incident:
    """The incident named by number, or else the one whose channel the command ran in."""
    if number is not None:
        return load_incident(s, number)
    incident = queries.get_incident_by_channel(s, channel_id) if channel_id else None
    if incident is None:
        raise NotFoundError(
            _(
                "This isn't an incident channel. Run the command in the incident's channel "
                "(`/incident list` shows them), or give its number, e.g. `/incident status 42`."
            )
        )
    return incident
