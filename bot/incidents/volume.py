"""What the reporter of an incident is told when its channel waits behind Slack's channel-creation budget."""

from __future__ import annotations

from bot.core.i18n import _


def queued_message(number: int, ahead: int) -> str:
    """Told at once to the reporter whose channel is queued (in their language: the request's)."""
    return _(
        ":hourglass_flowing_sand: Incident *#{number}* is recorded. Slack lets an app create only about 20 "
        "channels a minute, so its channel creation is queued ({ahead} ahead of it); I will tell you when it is "
        "ready.",
        number=number,
        ahead=ahead,
    )


def ready_after_queue(number: int, channel: str) -> str:
    """Told by DM once the queued channel is created and set up."""
    return _(
        ":white_check_mark: Incident *#{number}* is ready in <#{channel}>: its channel waited in the queue and is "
        "created now. You are invited; the card there shows the roles.",
        number=number,
        channel=channel,
    )
