"""Button clicks on the incident card."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import Ack, App

from bot.errors import UserInputError
from bot.ids import ActionId
from bot.replies import reporting_errors
from bot.services import Services


def register(app: App, services: Services) -> None:
    def handle_take_role_button(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        with reporting_errors(services.slack, body):
            number, _, role = str(action.get("value", "")).partition(":")
            if not number.isdigit() or not role:
                raise UserInputError("That button is out of date; run `/incident status` for a fresh card.")
            warning = services.incidents.take_role(incident_id=int(number), role=role, actor=body["user"]["id"])
            if warning:
                services.slack.respond(body["response_url"], warning)

    app.action(re.compile(rf"^{ActionId.TAKE_ROLE}:"))(handle_take_role_button)
