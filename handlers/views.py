"""Modal submissions: the report form behind `/incident open`."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import Ack, App

from bot.core.i18n import use_locale
from bot.services import Services
from bot.slack.forms import incident_from_view
from bot.slack.ids import CallbackId
from bot.slack.replies import reporting_errors

CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,39}")


def channel_id(value: object) -> str | None:
    """The channel the form was opened from, if the modal still carries a real channel id."""
    return value if isinstance(value, str) and CHANNEL_ID.fullmatch(value) else None


def register(app: App, services: Services) -> None:
    def handle_open_incident_view(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        with use_locale(services.playbook.locale):  # until the reader's own locale is looked up
            incident_in = incident_from_view(view["state"]["values"], services.playbook)
        ack()
        user = body["user"]["id"]
        with reporting_errors(services.slack, body):
            incident = services.incidents.open_incident(
                incident_in, reporter=user, origin_channel=channel_id(view.get("private_metadata"))
            )
            services.incidents.setup_channel(incident.id, tell=lambda text: services.slack.dm(user, text))

    app.view(CallbackId.OPEN_INCIDENT)(handle_open_incident_view)
