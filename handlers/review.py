"""After the incident: satisfaction ratings (command and buttons), action items and the review."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import Ack, App

from bot.core.errors import UserInputError
from bot.core.inputs import parse_row_id
from bot.review.service import parse_due
from bot.services import Services
from bot.slack.commands import Command
from bot.slack.ids import ActionId
from bot.slack.replies import reporting_errors

COMMANDS = {"satisfaction", "action", "review"}


def run_command(services: Services, command: Command, channel: str, user: str) -> str | None:
    review_service = services.review
    if command.name == "satisfaction":
        assert command.number is not None
        return review_service.record_customer(
            actor=user, score=command.number, comment=command.text or "", channel_id=channel
        )
    if command.name == "action":
        assert command.user is not None and command.due is not None
        return review_service.add_action(
            channel_id=channel, text=command.text or "", owner=command.user, due=parse_due(command.due), actor=user
        )
    steps = {
        "post": review_service.post_review_now,
        "export": review_service.export_review,
        "done": review_service.complete_review,
    }
    return steps[command.text or ""](channel_id=channel, actor=user)


def register(app: App, services: Services) -> None:
    def _rating(action: dict[str, Any]) -> tuple[int, int]:
        stale = "That button is out of date; use `/incident satisfaction <1-5>` instead."
        number, _, score = str(action.get("value", "")).partition(":")
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
