"""The Escalate button on the complaint list (`/incident complaints`): open an incident for that complaint."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from bot.core.i18n import _
from bot.core.inputs import parse_row_id
from bot.services import Services
from bot.slack.ids import ActionId
from bot.slack.replies import reporting_errors


def register(app: App, services: Services) -> None:
    def handle_escalate_complaint_button(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        with reporting_errors(services.slack, body):
            stale = _("That button is out of date; run `/incident complaints` for a fresh list.")
            number = parse_row_id(action.get("value"), stale=stale)
            url = body.get("response_url") or ""
            answer = services.routing.escalate_and_set_up(
                number,
                actor=body["user"]["id"],
                tell=(lambda text: services.slack.respond(url, text)) if url else None,
            )
            if answer and url:
                services.slack.respond(url, answer)

    app.action(ActionId.ESCALATE_COMPLAINT.value)(handle_escalate_complaint_button)
