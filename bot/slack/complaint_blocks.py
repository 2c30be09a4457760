"""Block Kit for the complaint list (`/incident complaints`): one section per complaint, with an Escalate button
on each that has no incident yet. Builders take plain, already masked and escaped text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from slack_sdk.models.blocks import Block as SlackBlock
from slack_sdk.models.blocks import ContextBlock, SectionBlock

from bot.core.i18n import _
from bot.core.text import truncate
from bot.slack.blocks import SECTION_MAX, Block, _button, mrkdwn, to_dicts
from bot.slack.ids import ActionId


@dataclass(frozen=True)
class ComplaintLine:
    text: str  # mrkdwn, masked and escaped by the caller
    escalate: str | None  # the button's value (the complaint's number); None: it is with an incident already


def complaint_list_blocks(header: str, lines: Sequence[ComplaintLine], more: str | None) -> list[Block]:
    blocks: list[SlackBlock] = [SectionBlock(text=mrkdwn(truncate(header, SECTION_MAX)))]
    for line in lines:
        button = (
            _button(ActionId.ESCALATE_COMPLAINT, _("Escalate to an incident"), line.escalate, "danger")
            if line.escalate is not None
            else None
        )
        blocks.append(SectionBlock(text=mrkdwn(truncate(line.text, SECTION_MAX)), accessory=button))
    if more:
        blocks.append(ContextBlock(elements=[mrkdwn(truncate(more, SECTION_MAX))]))
    return to_dicts(blocks)
