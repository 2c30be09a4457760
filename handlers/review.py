"""After the incident: the satisfaction rating buttons (the commands are declared in bot/slack/registry.py)."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import Ack, App

from bot.core.errors import UserInputError
from bot.core.i18n import _
from bot.core.inputs import parse_row_id
from bot.services import Services
from bot.slack.ids import ActionId
from bot.slack.replies import reporting_errors


def register(app: App, services: Services) -> None:
    def _rating(action: dict[str, Any]) -> tuple[int, int]:
        stale = _("That button is out of date; use `/incident satisfaction <1-5>` instead.")
        number, _sep, score = str(action.get("value", "")).partition(":")
        if score not in ("1", "2", "3", "4", "5"):
            raise UserInputError(stale)
        return parse_row_id(number, stale=stale), int(score)

    def handle_rate_customer_button(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        with reporting_errors(services.slack, body):
            number, score = _rating(action)
            message = services.review.record_customer(actor=body["user"]["id"], score=score, incident_id=number)
            if message:
                services.slack.respond(body["response_url"], message)

    def handle_rate_response_button(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        with reporting_errors(services.slack, body):
            number, score = _rating(action)
            message = services.review.rate_response(incident_id=number, score=score, actor=body["user"]["id"])
            services.slack.respond(body["response_url"], message)

    app.action(re.compile(rf"^{ActionId.RATE_CUSTOMER}:"))(handle_rate_customer_button)
    app.action(re.compile(rf"^{ActionId.RATE_RESPONSE}:"))(handle_rate_response_button)
