"""The running surge plan's button: End (the leadership group's; bot/surge/plan.py says who may)."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from bot.core.i18n import _
from bot.core.inputs import parse_row_id
from bot.services import Services
from bot.slack.ids import ActionId
from bot.slack.replies import reporting_errors


def register(app: App, services: Services) -> None:
    def handle_end_surge_button(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        with reporting_errors(services.slack, body):
            stale = _("That button is out of date; run `/incident status` in the surge channel.")
            incident_id = parse_row_id(action.get("value"), stale=stale)
            answer = services.surge_plan.end(incident_id=incident_id, actor=body["user"]["id"])
            services.slack.respond(body["response_url"], answer)

    app.action(ActionId.END_SURGE.value)(handle_end_surge_button)
