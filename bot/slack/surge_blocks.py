"""Block Kit for the surge plan's warning-line proposal: the message with Activate / Dismiss, and the modal
that asks why it is dismissed."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import ActionsBlock, ContextBlock, SectionBlock
from slack_sdk.models.views import View

from bot.core.i18n import _
from bot.core.text import truncate
from bot.slack.blocks import MODAL_TITLE_MAX, SECTION_MAX, Block, _button, _text_input, mrkdwn, plain, to_dicts
from bot.slack.ids import ActionId, BlockId, CallbackId

REASON_MAX = 1000


def proposal_blocks(text: str, proposal_id: int, *, status: str | None = None) -> list[Block]:
    """The proposal: its figures, then Activate and Dismiss while it waits; once decided, what was decided."""
    blocks: list[Any] = [SectionBlock(text=mrkdwn(truncate(text, SECTION_MAX)))]
    if status is None:
        value = str(proposal_id)
        blocks.append(
            ActionsBlock(
                elements=[
                    _button(ActionId.ACTIVATE_SURGE, _("Activate"), value, "primary"),
                    _button(ActionId.DISMISS_SURGE, _("Dismiss"), value, "danger"),
                ]
            )
        )
    else:
        blocks.append(ContextBlock(elements=[mrkdwn(truncate(status, SECTION_MAX))]))
    return to_dicts(blocks)


def dismiss_modal(proposal_id: int, summary: str) -> dict[str, Any]:
    """Asks the leader why the plan is not activated (recorded with their name)."""
    view = View(
        type="modal",
        callback_id=CallbackId.DISMISS_SURGE,
        private_metadata=str(proposal_id),
        title=plain(_("Dismiss the warning"), MODAL_TITLE_MAX),
        submit=plain(_("Dismiss"), MODAL_TITLE_MAX),
        close=plain(_("Cancel"), MODAL_TITLE_MAX),
        blocks=[
            SectionBlock(text=mrkdwn(truncate(summary, SECTION_MAX))),
            _text_input(
                BlockId.SURGE_REASON,
                _("Why is the surge plan not activated?"),
                optional=False,
                multiline=True,
                max_length=REASON_MAX,
            ),
        ],
    )
    return dict(view.to_dict())
