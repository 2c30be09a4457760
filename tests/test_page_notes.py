"""Channel notes of an escalation decided before the incident's channel exists (a SEV1 opened by Alertmanager,
whose channel is set up after the answer): they wait in the incident's outbox lane and are posted once the
channel exists, once — through real HTTP to the running bot and the Slack sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from bot.core.clock import FixedClock
from bot.core.config import Playbook
from bot.sandbox.server import SlackSandbox
from tests.conftest import Stack
from tests.test_alertmanager import _behind_the_front, alert, notification, post


@pytest.fixture
def front(
    sandbox: SlackSandbox, general: str, playbook: Playbook, sqlite_url: str, clock: FixedClock
) -> Iterator[tuple[Stack, str]]:
    yield from _behind_the_front(sandbox, playbook, sqlite_url, clock)


def test_a_page_decided_before_the_channel_exists_is_noted_in_it_once_it_is_created(
    front: tuple[Stack, str],
) -> None:
    stack, url = front
    hold = stack.sandbox.hold("conversations.create", timeout=10)
    answer, shown = post(url, notification(alert("gw-9", severity="critical")))
    assert answer.status == 200 and shown["action"] == "opened"
    assert hold.reached.wait(5)
    number = shown["incident"]["number"]
    lead = stack.bot.services.playbook.roles["lead"].default_owners[0]
    stack.bot.sweeper.sweep()  # the SEV1's first page goes out while the channel is still being created
    assert any("You are paged" in t for t in stack.dm_texts(lead))
    hold.release()
    assert stack.bot.executor.wait_idle()
    channel = stack.incident_channel(number)
    stack.bot.sweeper.sweep()  # nothing posts it a second time
    paging = [t for t in stack.texts(channel.id) if t.startswith(":pager: Paging")]
    assert paging == [f":pager: Paging <@{lead}> (*Owner*) for: SEV1 service outage opened"], stack.texts(channel.id)


def test_a_set_up_a_sweep_took_over_while_slack_held_the_create_makes_one_channel(
    front: tuple[Stack, str],
) -> None:
    """The sweep takes the set-up over once its lease has run out, while the first `conversations.create` is
    still with Slack: the late answer is name_taken for a channel this incident already has, which is adopted,
    not renamed into a second, empty channel."""
    stack, url = front
    hold = stack.sandbox.hold("conversations.create", timeout=10)
    answer, shown = post(url, notification(alert("gw-7", severity="critical")))
    assert answer.status == 200 and hold.reached.wait(5)
    stack.clock.advance(timedelta(minutes=6))  # far past the outbox lease
    stack.bot.sweeper.sweep()  # takes the set-up over and creates the channel
    hold.release()  # the first call's answer comes back: the name is taken
    assert stack.bot.executor.wait_idle()
    created = [c for c in stack.sandbox.channels.values() if c.name.startswith("inc-")]
    assert [c.name for c in created] == ["inc-20261124-1-payment-gateway-is-down"]
    channel = stack.incident_channel(shown["incident"]["number"])
    assert channel.id == created[0].id
    assert stack.texts(channel.id)[0].startswith("#1 SEV1 Service outage"), stack.texts(channel.id)  # the card
