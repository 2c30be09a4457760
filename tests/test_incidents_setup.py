"""Open → channel ready in three Slack round trips: the topic, the invites and the card go out together after
the channel is created, and the card is still the first message; the reporter is told while the plan posts."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.conftest import LEAD, REPORTER, TECH, Stack


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Wait for the bot's worker threads to act, bounded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_the_card_goes_out_while_the_invites_are_still_on_their_way(stack: Stack, general: str) -> None:
    hold = stack.sandbox.hold("conversations.invite")
    stack.driver.slash(REPORTER, general, "open complaint sev2 客户卡号6222021234567890123被重复扣款", wait=False)
    assert wait_for(hold.reached.is_set)

    channel = stack.incident_channel(1)
    # the invite is held, yet the card and the topic are already there: they did not wait for it
    assert wait_for(lambda: len(stack.sandbox.channel_messages(channel.id)) == 1)
    assert stack.texts(channel.id)[0].startswith("#1 SEV2")
    assert wait_for(lambda: stack.sandbox.channels[channel.id].topic.startswith("SEV2 Customer complaint"))
    assert stack.ephemeral_texts(REPORTER)[-1] == "Opening a new complaint incident…"  # not told before ready

    hold.release()
    stack.bot.executor.wait_idle()
    card, plan = stack.sandbox.channel_messages(channel.id)  # the plan waited for the whole batch
    assert card.text.startswith("#1 SEV2") and plan.text.startswith("*How we handle this complaint*")
    assert set(stack.sandbox.channels[channel.id].members) == {stack.sandbox.bot_user_id, REPORTER, LEAD, TECH}
    assert stack.ephemeral_texts(REPORTER)[-1].startswith(":rotating_light: Opened incident *#1*")
    assert len(stack.sandbox.calls_to("conversations.members")) == 0  # a new channel: nobody to look up
    assert "6222021234567890123" not in "".join(stack.texts(channel.id))
