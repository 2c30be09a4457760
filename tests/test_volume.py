"""Volume-safe Slack: with the Slack test server enforcing Slack's published limits (429 + Retry-After, counted
on the bot's injected clock), many incidents opened at once all get their channel — the first twenty at once,
the rest queued in the store and created as the budget allows, in order, after a restart too — the reporter
of a queued one is told so and told again when it is ready, and posts to one channel keep about one a second
after a short burst. Nobody sleeps: the sandbox and the bot count time on the same FixedClock."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import select

from bot.core.clock import FixedClock
from bot.core.config import Playbook
from bot.incidents.budget import ChannelBudget
from bot.sandbox.server import SlackSandbox
from bot.slack.pacing import Limit, Pacer
from store.models import Incident, OutboxMessage
from store.states import OutboxState
from tests.conftest import LEAD, REPORTER, Stack, running_stack

OPENS = 25
REPORTERS = (REPORTER, LEAD)
QUEUED = {  # what the reporter of a queued channel is told at once: REPORTER reads Slack in Chinese
    REPORTER: r"频道创建已排队（前面还有 (\d+) 个），就绪后会通知您",
    LEAD: r"channel creation is queued \((\d+) ahead of it\); I will tell you when it is ready",
}
READY = {REPORTER: r"事件 \*#(\d+)\* 已在 <#C\d+> 就绪", LEAD: r"Incident \*#(\d+)\* is ready in <#C\d+>"}


def on_the_bots_clock(sandbox: SlackSandbox, clock: FixedClock) -> None:
    """Slack's real limits, counted on the bot's clock."""
    sandbox.now = lambda: clock.now().timestamp()
    sandbox.enforce_slack_limits()


@pytest.fixture
def limited(sandbox: SlackSandbox, general: str, clock: FixedClock) -> SlackSandbox:
    on_the_bots_clock(sandbox, clock)
    return sandbox


def open_many(stack: Stack, count: int) -> list[int]:
    """`count` incidents opened at once (concurrent slash commands), by two reporters taking turns."""
    general = stack.sandbox.channel_by_name("general")
    assert general is not None

    def one(n: int) -> int:
        reply = stack.driver.slash(REPORTERS[n % 2], general.id, f"open outage sev3 Surge {n}", wait=False)
        return reply.status

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(one, range(count)))
    stack.bot.executor.wait_idle()
    return statuses


def channels_by_incident(stack: Stack) -> dict[int, str | None]:
    with stack.bot.services.db() as s:
        return {i.id: i.channel_id for i in s.scalars(select(Incident).order_by(Incident.id))}


def test_a_surge_of_opens_queues_channels_beyond_the_budget_and_drains_them_in_order_after_a_restart(
    limited: SlackSandbox, playbook: Playbook, sqlite_url: str, clock: FixedClock
) -> None:
    limited.set_user_locale(REPORTER, "zh-CN")
    with running_stack(limited, playbook, sqlite_url, clock) as first:
        assert set(open_many(first, OPENS)) == {200}
        created = channels_by_incident(first)
        assert len(created) == OPENS
        made = [n for n, channel in created.items() if channel]
        queued = [n for n, channel in created.items() if not channel]
        assert made == list(range(1, 21))  # the budget, at once, first opened first; the rest wait in the store
        # each reporter is told in their own Slack language (the lead reads Slack in English)
        told: dict[str, list[int]] = {e.user: [] for e in limited.ephemerals}
        for e in limited.ephemerals:
            found = re.search(QUEUED[e.user], e.text)
            if found:
                told[e.user].append(int(found.group(1)))
        assert sorted(told[REPORTER] + told[LEAD]) == list(range(OPENS - 20))  # how many wait before each
        assert told[REPORTER] and told[LEAD]
        with first.bot.services.db() as s:
            waiting = s.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.effect == "channel.create", OutboxMessage.state == OutboxState.PENDING
                )
            ).all()
            assert len(waiting) == OPENS - 20 and all(row.due_at > clock.now() for row in waiting)
    # the bot goes away with the queue in the store; a new process on the same database drains it
    with running_stack(limited, playbook, sqlite_url, clock) as second:
        second.advance(seconds=59)
        assert sum(1 for c in channels_by_incident(second).values() if c) == 20  # still within the minute
        second.advance(seconds=3)
        created = channels_by_incident(second)
        assert all(created.values()), created
        order = sorted(queued, key=lambda n: int(str(created[n])[1:]))  # sandbox IDs grow with creation
        assert order == queued  # created in the order they were opened
        for n in queued:
            assert limited.channels[str(created[n])].members  # set up: people invited
        ready = [
            int(found.group(1))
            for user in REPORTERS
            for m in limited.dm_messages(user)
            if (found := re.search(READY[user], m.text))
        ]
        assert sorted(ready) == queued  # each told once, in their language, that the channel is ready
    stats = limited.call_stats()
    assert stats["conversations.create"]["calls"] == OPENS
    assert stats["conversations.create"]["max_per_minute"] <= 20
    assert all(s["throttled"] == 0 for s in stats.values()), stats  # the bot paced itself: no 429 needed


def test_posts_to_one_channel_keep_about_one_a_second_after_a_short_burst(limited: SlackSandbox, stack: Stack) -> None:
    channel = stack.open()
    incident_id = 1
    updates = stack.bot.services.incidents.updates
    with stack.bot.services.db.begin() as s:
        for n in range(20):
            updates.queue(s, incident_id, "post", text=f"progress {n}")
    before = stack.clock.now()
    assert updates.flush(incident_id) is None
    posts = [m for m in limited.channel_messages(channel.id) if m.text.startswith("progress")]
    assert [m.text for m in posts] == [f"progress {n}" for n in range(20)]  # all of them, in order
    stats = limited.call_stats()["chat.postMessage"]
    assert stats["throttled"] == 0
    assert stats["max_per_second_one_channel"] <= 10  # Slack's short burst, never more
    assert stack.clock.now() - before >= timedelta(seconds=10)  # the rest went out about one a second


def test_the_budget_books_the_twenty_first_creation_a_minute_later_and_counts_those_ahead(
    stack: Stack, clock: FixedClock
) -> None:
    stack.open()  # its channel is the first of the minute
    budget = ChannelBudget(stack.bot.services.db, clock, capacity=3, window=timedelta(seconds=60))
    with stack.bot.services.db.begin() as s:
        bookings = [budget.book(s, f"k{n}") for n in range(4)]
    now = clock.now()
    assert [(b.at - now, b.ahead) for b in bookings] == [
        (timedelta(0), 0),
        (timedelta(0), 0),
        (timedelta(seconds=60), 0),
        (timedelta(seconds=60), 1),
    ]


def test_the_sandbox_answers_429_with_retry_after_beyond_slacks_published_limits(
    limited: SlackSandbox, clock: FixedClock
) -> None:
    client = WebClient(token=limited.bot_token, base_url=limited.api_url, retry_handlers=[])
    channels = [client.conversations_create(name=f"room-{n}")["channel"]["id"] for n in range(20)]
    with pytest.raises(SlackApiError) as refused:
        client.conversations_create(name="room-20")  # Tier 2: twenty a minute for the workspace
    assert refused.value.response.status_code == 429
    assert refused.value.response.headers["Retry-After"] == "60"
    clock.advance(timedelta(seconds=60))
    client.conversations_create(name="room-20")  # the minute has passed on the sandbox's clock
    for n in range(10):  # a short burst in one channel is taken...
        client.chat_postMessage(channel=channels[0], text=f"m{n}")
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(channel=channels[0], text="one too many")
    assert refused.value.response.headers["Retry-After"] == "1"
    client.chat_postMessage(channel=channels[1], text="another channel")  # ...counted per channel
    clock.advance(timedelta(seconds=1))
    client.chat_postMessage(channel=channels[0], text="a second later")
    assert limited.call_stats()["conversations.create"]["throttled"] == 1


def test_the_pacer_waits_out_a_workspace_window_and_a_channel_bucket() -> None:
    clock = FixedClock()
    pacer = Pacer(
        lambda: clock.now().timestamp(),
        clock.sleep,
        {"create": Limit(2, 60.0), "post": Limit(3, 1.0, per_channel=True)},
    )
    assert [pacer.book("create") for _ in range(3)] == [0, 0, 60]
    assert [pacer.book("post", "C1") for _ in range(5)] == [0, 0, 0, 1, 2]
    assert pacer.book("post", "C2") == 0  # another channel has its own bucket
    assert pacer.book("other") == 0


def test_when_slack_is_stricter_than_the_budget_the_bot_waits_out_its_429s_and_loses_nothing(
    sandbox: SlackSandbox, stack: Stack, clock: FixedClock
) -> None:
    sandbox.now = lambda: clock.now().timestamp()
    sandbox.enforce_slack_limits({"conversations.create": (1, 60.0, False)})  # far tighter than the bot's 20
    channels = [stack.open(f"outage sev3 Strict {n}") for n in range(3)]
    assert len({c.id for c in channels}) == 3  # every channel created, each once
    assert sandbox.call_stats()["conversations.create"]["throttled"] > 0  # Slack refused, Retry-After was honoured
    assert all(c.members for c in channels)
