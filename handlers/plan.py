"""The "I have read it" button on the announcement of a new version of the plan and on its reminders."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from bot.core.i18n import _
from bot.core.inputs import parse_row_id
from bot.services import Services
from bot.slack.ids import ActionId
from bot.slack.replies import reporting_errors


def register(app: App, services: Services) -> None:
    def handle_confirm_plan_button(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        with reporting_errors(services.slack, body):
            stale = _("That button is out of date; no such version of the plan is stored.")
            version_id = parse_row_id(action.get("value"), stale=stale)
            message = services.plan.confirm(version_id=version_id, actor=body["user"]["id"])
            services.slack.respond(body["response_url"], message)

    app.action(ActionId.CONFIRM_PLAN.value)(handle_confirm_plan_button)
