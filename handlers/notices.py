"""Customer notices: the preview's Edit, Approve and Publish buttons, and the edit modal."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from bot.core.errors import BotError
from bot.core.i18n import N_, _
from bot.core.inputs import parse_row_id
from bot.services import Services
from bot.slack.forms import notice_texts_from_view
from bot.slack.ids import ActionId, CallbackId
from bot.slack.replies import reporting_errors

STALE = N_("That button is out of date; draft the notice again with `/incident notice`.")


def register(app: App, services: Services) -> None:
    def handle_edit_notice_button(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        with reporting_errors(services.slack, body):
            view = services.notices.editor(notice_id=_notice_id(action), actor=body["user"]["id"])
            services.slack.open_view(body["trigger_id"], view)

    def handle_approve_notice_button(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        with reporting_errors(services.slack, body):
            told = services.notices.approve(notice_id=_notice_id(action), actor=body["user"]["id"])
            services.slack.respond(body["response_url"], told)  # the approver's own confirmation

    def handle_publish_notice_button(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        with reporting_errors(services.slack, body):
            services.notices.publish(notice_id=_notice_id(action), actor=body["user"]["id"])

    def _notice_id(action: dict[str, Any]) -> int:
        return parse_row_id(action.get("value"), stale=_(STALE))

    def handle_edit_notice_view(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        values = view["state"]["values"]
        try:
            services.notices.edit(
                notice_id=parse_row_id(view.get("private_metadata"), stale=_(STALE)),
                texts=notice_texts_from_view(values),
                actor=body["user"]["id"],
            )
        except BotError as exc:
            exc.field = exc.field or next(iter(values), None)  # shown under the first box of the modal
            raise
        ack()

    app.action(ActionId.EDIT_NOTICE.value)(handle_edit_notice_button)
    app.action(ActionId.APPROVE_NOTICE.value)(handle_approve_notice_button)
    app.action(ActionId.PUBLISH_NOTICE.value)(handle_publish_notice_button)
    app.view(CallbackId.EDIT_NOTICE)(handle_edit_notice_view)
