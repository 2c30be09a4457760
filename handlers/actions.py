"""Button clicks on the incident card and on reminder and page DMs."""

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

    def _row_id(action: dict[str, Any]) -> int:
        value = str(action.get("value", ""))
        if not value.isdigit():
            raise UserInputError("That button is out of date; run `/incident deadlines` in the incident's channel.")
        return int(value)

    def handle_mark_done_button(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        with reporting_errors(services.slack, body):
            services.timekeeping.mark_done(actor=body["user"]["id"], deadline_id=_row_id(action))
            services.slack.respond(body["response_url"], ":white_check_mark: Marked done. Thank you.")

    def handle_snooze_button(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        with reporting_errors(services.slack, body):
            message = services.timekeeping.snooze(deadline_id=_row_id(action), actor=body["user"]["id"])
            services.slack.respond(body["response_url"], message)

    def handle_acknowledge_button(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        with reporting_errors(services.slack, body):
            services.timekeeping.acknowledge(actor=body["user"]["id"], escalation_id=_row_id(action))
            services.slack.respond(body["response_url"], ":white_check_mark: Acknowledged; paging stopped.")

    app.action(re.compile(rf"^{ActionId.TAKE_ROLE}:"))(handle_take_role_button)
    app.action(ActionId.MARK_DONE.value)(handle_mark_done_button)
    app.action(ActionId.SNOOZE.value)(handle_snooze_button)
    app.action(ActionId.ACKNOWLEDGE.value)(handle_acknowledge_button)
