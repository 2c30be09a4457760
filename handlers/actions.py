"""Button clicks on the incident card and on reminder and page DMs."""

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
    def handle_take_role_button(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        with reporting_errors(services.slack, body):
            stale = _("That button is out of date; run `/incident status` for a fresh card.")
            number, _sep, role = str(action.get("value", "")).partition(":")
            if role not in services.playbook.roles:
                raise UserInputError(stale)
            incident_id = parse_row_id(number, stale=stale)
            warning = services.incidents.take_role(incident_id=incident_id, role=role, actor=body["user"]["id"])
            if warning:
                services.slack.respond(body["response_url"], warning)

    def _row_id(action: dict[str, Any]) -> int:
        stale = _("That button is out of date; run `/incident deadlines` in the incident's channel.")
        return parse_row_id(action.get("value"), stale=stale)

    def handle_mark_done_button(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        with reporting_errors(services.slack, body):
            services.deadline_actions.mark_done(actor=body["user"]["id"], deadline_id=_row_id(action))
            services.slack.respond(body["response_url"], _(":white_check_mark: Marked done. Thank you."))

    def handle_snooze_button(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        with reporting_errors(services.slack, body):
            message = services.deadline_actions.snooze(deadline_id=_row_id(action), actor=body["user"]["id"])
            services.slack.respond(body["response_url"], message)

    def handle_acknowledge_button(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        with reporting_errors(services.slack, body):
            services.deadline_actions.acknowledge(actor=body["user"]["id"], escalation_id=_row_id(action))
            services.slack.respond(body["response_url"], _(":white_check_mark: Acknowledged; paging stopped."))

    app.action(re.compile(rf"^{ActionId.TAKE_ROLE}:"))(handle_take_role_button)
    app.action(ActionId.MARK_DONE.value)(handle_mark_done_button)
    app.action(ActionId.SNOOZE.value)(handle_snooze_button)
    app.action(ActionId.ACKNOWLEDGE.value)(handle_acknowledge_button)
