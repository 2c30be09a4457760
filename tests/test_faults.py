"""Slack failing a fifth of its calls: 429s, 5xx and dropped connections, before or after Slack did the work.

Nothing the users see may appear twice, and nobody may be told that Slack refused what it in fact did.
"""

from __future__ import annotations

from collections import Counter

import pytest

from bot.sandbox.server import DROP, SlackSandbox
from bot.slack.gateway import SlackGateway, make_web_client
from store.queries import get_incident
from tests.conftest import ADMIN, COMMS, LEAD, LEGAL, REPORTER, TECH, Stack

FALSE_ALARMS = ("Slack refused", "could not be invited", "Something went wrong", "Slack failed")


def gateway_for(sandbox: SlackSandbox) -> SlackGateway:
    return SlackGateway(make_web_client(sandbox.bot_token, sandbox.api_url), sleep=lambda _seconds: None)


@pytest.fixture
def room(sandbox: SlackSandbox) -> str:
    """A channel the bot is in."""
    return sandbox.add_channel("incident-room", [sandbox.bot_user_id, LEAD])


@pytest.mark.parametrize(("status", "label"), [(503, "5xx"), (DROP, "dropped answer")])
def test_a_post_that_slack_took_before_failing_is_not_posted_again(
    sandbox: SlackSandbox, room: str, status: int, label: str
) -> None:
    gateway = gateway_for(sandbox)
    sandbox.fail("chat.postMessage", error="service_unavailable", status=status, after=True)

    ts = gateway.post(room, f"客户卡号****0123 first post ({label})")

    posted = sandbox.channel_messages(room)
    assert [m.text for m in posted] == [f"客户卡号****0123 first post ({label})"]
    assert posted[0].ts == ts
    assert len(sandbox.calls_to("chat.postMessage")) == 1  # found in the history, not sent again


def test_a_post_that_failed_before_slack_took_it_is_sent_again(sandbox: SlackSandbox, room: str) -> None:
    gateway = gateway_for(sandbox)
    sandbox.fail("chat.postMessage", error="service_unavailable", status=DROP)

    gateway.post(room, "second try")

    assert [m.text for m in sandbox.channel_messages(room)] == ["second try"]
    assert len(sandbox.calls_to("chat.postMessage")) == 2


def test_a_retried_invite_and_archive_that_had_worked_are_not_reported_as_refused(sandbox: SlackSandbox) -> None:
    gateway = gateway_for(sandbox)
    channel = gateway.create_channel("inc-faults")["id"]
    sandbox.fail("conversations.invite", error="service_unavailable", status=503, after=True)

    assert gateway.invite(channel, [LEAD]) == {}  # the retry answers already_in_channel: LEAD is in
    assert LEAD in sandbox.channels[channel].members

    sandbox.fail("conversations.archive", error="service_unavailable", status=DROP, after=True)
    gateway.archive(channel)
    assert sandbox.channels[channel].is_archived


def test_four_whole_incidents_with_a_fifth_of_slack_calls_failing_show_everything_once(stack: Stack) -> None:
    chaos = stack.sandbox.chaos(0.2, seed=20261128)
    channels = []
    for n in range(1, 5):
        channel = stack.open(f"complaint sev2 客户卡号6222021234567890123被重复扣款 第{n}次")
        channels.append(channel.id)
        stack.driver.slash(LEAD, channel.id, f"assign legal <@{LEGAL}|lena.legal>")
        stack.join(channel.id, COMMS)
        stack.driver.slash(COMMS, channel.id, "assign comms me")
        stack.driver.slash(TECH, channel.id, "update 已定位：清算批次重复提交")
        stack.driver.slash(LEAD, channel.id, "sev 3")
        stack.advance(hours=13)  # the first reminders fall due
        stack.driver.slash(LEAD, channel.id, "resolve 已退款")
        stack.driver.slash(ADMIN, channel.id, "close")
    stack.bot.executor.wait_idle()
    stack.sandbox.chaos(0)

    assert sum(chaos.counts.values()) >= 20, chaos.counts  # the run really was faulty
    assert set(chaos.counts) == {"ratelimited", "5xx_before", "5xx_after", "drop_before", "drop_after"}

    for number, channel_id in enumerate(channels, start=1):
        with stack.bot.services.db() as s:
            incident = get_incident(s, number)
            assert incident is not None and incident.status == "closed"
            assert incident.setup_error is None
        assert stack.sandbox.channels[channel_id].is_archived
        assert {REPORTER, LEAD, LEGAL, COMMS} <= set(stack.sandbox.channels[channel_id].members)
        texts = stack.texts(channel_id)
        assert len(texts) == len(set(texts)), texts
        assert sum(1 for t in texts if "changed the severity" in t) == 1
    assert len([c for c in stack.sandbox.channels.values() if c.name.startswith("inc-")]) == 4

    keys = Counter(str(m.metadata["event_payload"]["key"]) for m in stack.sandbox.messages if m.metadata is not None)
    assert [key for key, n in keys.items() if n > 1] == []  # no message was posted twice
    everything = [m.text for m in stack.sandbox.messages] + [e.text for e in stack.sandbox.ephemerals]
    assert [t for t in everything if any(alarm in t for alarm in FALSE_ALARMS)] == []
