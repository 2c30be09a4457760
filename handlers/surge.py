"""The surge plan's proposal buttons (Activate / Dismiss) and the modal asking why it is dismissed."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from bot.core.errors import UserInputError
from bot.core.i18n import _
from bot.core.inputs import parse_row_id
from bot.services import Services
from bot.slack.ids import INPUT_ACTION, ActionId, BlockId, CallbackId
from bot.slack.replies import reporting_errors


def _proposal_id(value: object) -> int:
    return parse_row_id(value, stale=_("That button is out of date; run `/incident surge` to see the volume now."))


def register(app: App, services: Services) -> None:
    def handle_activate_surge_button(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        with reporting_errors(services.slack, body):
            said = services.surge.activate(proposal_id=_proposal_id(action.get("value")), actor=body["user"]["id"])
            services.slack.respond(body["response_url"], said)

    def handle_dismiss_surge_button(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        with reporting_errors(services.slack, body):
            said = services.surge.dismiss_form(
                proposal_id=_proposal_id(action.get("value")),
                actor=body["user"]["id"],
                trigger_id=str(body.get("trigger_id", "")),
            )
            if said:
                services.slack.respond(body["response_url"], said)

    def handle_dismiss_surge_view(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        reason = (
            view.get("state", {}).get("values", {}).get(BlockId.SURGE_REASON, {}).get(INPUT_ACTION, {}).get("value")
        )
        if not (reason or "").strip():
            raise UserInputError(_("Say why the surge plan is not activated."), field=BlockId.SURGE_REASON)
        proposal_id = _proposal_id(view.get("private_metadata"))
        ack()
        user = body["user"]["id"]
        with reporting_errors(services.slack, body):
            said = services.surge.dismiss(proposal_id=proposal_id, actor=user, reason=str(reason))
            services.slack.dm(user, said)

    app.action(ActionId.ACTIVATE_SURGE.value)(handle_activate_surge_button)
    app.action(ActionId.DISMISS_SURGE.value)(handle_dismiss_surge_button)
    app.view(CallbackId.DISMISS_SURGE.value)(handle_dismiss_surge_view)
