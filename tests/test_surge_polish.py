"""The surge plan's loose ends: the leadership channel people made without the bot is joined before the bot
posts in it, and the proposal's second page wakes the timer at its moment (not at the next safety sweep)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.deadlines.scheduler import Scheduler
from bot.sandbox.server import SlackSandbox
from bot.slack.gateway import SlackCallError, SlackGateway, make_web_client
from store import queries
from tests.conftest import ADMIN, LEAD, Stack
from tests.test_surge_watch import playbook, proposals, record, surge  # noqa: F401 (fixtures)
from tests.test_timer import wait_for


def joins(stack: Stack) -> int:
    return sum(1 for name, _ in stack.sandbox.calls if name == "conversations.join")


def test_a_leadership_channel_made_without_the_bot_is_joined_to_post_the_proposal(
    surge: tuple[Stack, str],  # noqa: F811
) -> None:
    stack, _url = surge
    room = stack.sandbox.add_channel("incident-leadership", [LEAD, ADMIN])  # people made it; the bot is not in
    record(stack, 5)
    [proposal] = proposals(stack)
    assert proposal.message_ts is not None and proposal.channel_id == room
    [message] = stack.sandbox.channel_messages(room)
    assert "5 complaints in 2h (warning line 5)" in message.text
    assert stack.sandbox.bot_user_id in stack.sandbox.channels[room].members
    assert joins(stack) == 1
    assert [c.name for c in stack.sandbox.channels.values()].count("incident-leadership") == 1  # none created

    # `/incident notice` names every stage, the surge's diversion notice too, in its usage and in help
    general = stack.sandbox.channel_by_name("general")
    assert general is not None
    reply = stack.driver.slash(LEAD, general.id, "notice")
    assert "`/incident notice <initial|update|resolved|diversion> [channels] [locales]`" in reply.text, reply.text
    assert (
        "notice &lt;initial|update|resolved|diversion&gt; [channels] [locales]"
        in stack.driver.slash(LEAD, general.id, "help").text
    )


def test_conversations_join_behaves_as_slack() -> None:
    """Public channels only, archived ones refused, joining twice answered with a warning (the gateway's join
    needs no check first)."""
    sandbox = SlackSandbox().start()
    try:
        gateway = SlackGateway(make_web_client(sandbox.bot_token, sandbox.api_url))
        public = sandbox.add_channel("incident-leadership", ["UHUMAN0001"])
        gateway.join_channel(public)
        gateway.join_channel(public)
        assert sandbox.channels[public].members.count(sandbox.bot_user_id) == 1
        private = sandbox.add_channel("board", ["UHUMAN0001"])
        sandbox.channels[private].is_private = True
        archived = sandbox.add_channel("old-leadership", ["UHUMAN0001"])
        sandbox.channels[archived].is_archived = True
        for channel, error in (
            (private, "method_not_supported_for_channel_type"),
            (archived, "is_archived"),
            ("CNOPE", "channel_not_found"),
        ):
            with pytest.raises(SlackCallError) as refused:
                gateway.join_channel(channel)
            assert refused.value.error == error
    finally:
        sandbox.stop()


def test_the_second_page_of_an_undecided_proposal_wakes_the_timer(surge: tuple[Stack, str]) -> None:  # noqa: F811
    """The proposal's `repage_at` is one of the moments the timer plans for: with the safety sweep ten hours
    away, the second page still goes out when the last escalation level's acknowledgement time has passed."""
    stack, _url = surge
    record(stack, 5)
    [proposal] = proposals(stack)
    assert proposal.repage_at is not None
    with stack.bot.services.db() as s:
        assert queries.next_wakeup(s) == proposal.repage_at.replace(tzinfo=UTC)
    assert len(stack.dm_texts(LEAD)) == 1
    scheduler = Scheduler(stack.bot.sweeper, db=stack.bot.services.db, clock=stack.clock, interval=timedelta(hours=10))
    scheduler.start()
    try:

        def planned_for_the_repage() -> bool:
            job = scheduler.aps.get_job("sweep-next")
            return job is not None and job.next_run_time > datetime.now(UTC) + timedelta(minutes=30)

        assert wait_for(planned_for_the_repage), "the first sweep planned no wake-up for the second page"
        stack.clock.advance(timedelta(hours=1))  # the injected clock reaches repage_at; the timer is told
        scheduler.poke()
        assert wait_for(lambda: len(stack.dm_texts(LEAD)) == 2), "the second page waited for the safety sweep"
    finally:
        scheduler.stop()
    assert "Still undecided" in stack.dm_texts(LEAD)[1]
