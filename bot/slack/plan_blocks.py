"""Block Kit for the plan's life cycle: the announcement of a new version and the reminder to read it, each with
one "I have read it" button (slack_sdk models, as in bot/slack/blocks.py)."""

from __future__ import annotations

from slack_sdk.models.blocks import ActionsBlock, SectionBlock

from bot.core.i18n import _
from bot.core.text import truncate
from bot.slack.blocks import SECTION_MAX, Block, _button, mrkdwn, to_dicts
from bot.slack.ids import ActionId


def plan_read_blocks(text: str, version_id: int) -> list[Block]:
    """The text (the changes, who has not confirmed) and the confirmation button, in the current language."""
    return to_dicts(
        [
            SectionBlock(text=mrkdwn(truncate(text, SECTION_MAX))),
            ActionsBlock(elements=[_button(ActionId.CONFIRM_PLAN, _("I have read it"), str(version_id), "primary")]),
        ]
    )
