"""The surge plan's warning line (seed 004 预警阶段): complaints in through the intake API, a proposal to the
leadership group when a line is crossed, and the group's decision through signed button clicks.

The line here is 5 complaints in 2 hours (the shipped one is 100 in 10 minutes); time is the injected clock's.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.clock import FixedClock
from bot.core.config import Playbook
from bot.intake.service import ComplaintInput, parse_complaint
from bot.sandbox.server import Channel, SlackSandbox
from bot.slack.ids import INPUT_ACTION, ActionId, BlockId
from bot.slack.web import HttpServer, make_wsgi
from store.models import Incident, SurgeProposal, TimelineEvent
from tests.conftest import ADMIN, LEAD, OUTSIDER, TECH, Stack, running_stack, test_playbook
from tests.test_web_front import fetch

TOKEN = "intake-surge-token-5d1e"
CARD = "6222021234567890123"
LEAD_ROLE = "aliases: [commander, ic, 组长, 指挥长]\n    default_owners: []"
SURGE_EDITS = {
    "  leaders: []": f"  leaders: [{LEAD}]",
    "    - {count: 100, window: 10m}": "    - {count: 5, window: 2h}",
    LEAD_ROLE: LEAD_ROLE,  # no default lead: whoever opens an incident leads it (the activating leader)
    "intake:\n  enabled: true": "intake:\n  enabled: false",  # volume only: no complaint opens its own incident
}
CHINESE = {**SURGE_EDITS, "locale: zh-CN": "locale: zh-CN"}
LEADERSHIP = "incident-leadership"


@pytest.fixture
def playbook() -> Playbook:
    return test_playbook(SURGE_EDITS)


@pytest.fixture
def surge(
    sandbox: SlackSandbox, general: str, playbook: Playbook, sqlite_url: str, clock: FixedClock
) -> Iterator[tuple[Stack, str]]:
    """The running bot with the intake API on."""
    with running_stack(sandbox, playbook, sqlite_url, clock) as stack:
        server = HttpServer(make_wsgi(stack.bot, intake_token=TOKEN)).start()
        try:
            yield stack, server.url
        finally:
            stack.bot.services.surge.wait_idle()
            server.stop()


_numbers = iter(range(1, 10**9))


def body(stack: Stack, *, category: str = "payments", channel: str = "phone", ago: timedelta = timedelta(0)) -> dict:
    return {
        "external_id": f"CMS-{next(_numbers):06d}",
        "received_at": (stack.clock.now() - ago).isoformat(),
        "contact_channel": channel,
        "category": category,
        "product": "借记卡",
        "summary": f"客户卡号{CARD}被重复扣款",
        "customer_ref": f"卡号{CARD}",
    }


def post(url: str, complaint: dict[str, Any]) -> int:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    answer = fetch(url, "/api/v1/complaints", headers, method="POST", data=json.dumps(complaint).encode())
    return answer.status


def record(stack: Stack, n: int, **kwargs: Any) -> None:
    """Complaints recorded through the service (the HTTP route is covered elsewhere; here it is volume)."""
    for _ in range(n):
        stack.bot.services.intake.record(complaint(stack, **kwargs))


def complaint(stack: Stack, **kwargs: Any) -> ComplaintInput:
    return parse_complaint(body(stack, **kwargs))


def proposals(stack: Stack) -> list[SurgeProposal]:
    stack.bot.services.surge.wait_idle()
    with Session(stack.engine) as s:
        return list(s.scalars(select(SurgeProposal).order_by(SurgeProposal.id)))


def leadership(stack: Stack) -> Channel:
    channel = stack.sandbox.channel_by_name(LEADERSHIP)
    assert channel is not None, "no leadership channel"
    return channel


def buttons(message: Any) -> dict[str, tuple[str, str]]:
    """Button label → (action_id, value) on a message."""
    return {
        e["text"]["text"]: (e["action_id"], e.get("value", ""))
        for block in message.blocks
        for e in block.get("elements", [])
        if e.get("type") == "button"
    }


def click(stack: Stack, user: str, action: ActionId, proposal: int, *, wait: bool = True) -> None:
    message = stack.sandbox.channel_messages(leadership(stack).id)[-1]
    reply = stack.driver.click(user, leadership(stack).id, message.ts, action, str(proposal), wait=wait)
    assert reply.status == 200, reply.body


def test_below_the_line_nothing_then_a_crossing_proposes_once_and_a_leader_activates(
    surge: tuple[Stack, str],
) -> None:
    stack, url = surge
    for _ in range(3):
        assert post(url, body(stack)) == 201
    record(stack, 1, category="cards", channel="online_chat")
    stack.advance(minutes=30)
    assert proposals(stack) == []
    assert stack.sandbox.channel_by_name(LEADERSHIP) is None
    assert [name for name, _ in stack.sandbox.calls if name not in ("auth.test",)] == []

    # the fifth complaint in the window reaches the line: one proposal, posted off the request within seconds
    started = time.perf_counter()
    assert post(url, body(stack)) == 201  # the answer does not wait for Slack
    [proposal] = proposals(stack)
    assert time.perf_counter() - started < 5
    assert (proposal.state, proposal.count, proposal.line_count, proposal.line_window_seconds) == (
        "proposed",
        5,
        5,
        7200,
    )
    room = leadership(stack)
    assert LEAD in room.members  # created, with the named leader invited
    [message] = stack.sandbox.channel_messages(room.id)
    assert "5 complaints in 2h (warning line 5)" in message.text
    assert "By category: payments 4, cards 1" in message.text
    assert "By contact channel: phone 4, online chat 1" in message.text
    assert set(buttons(message)) == {"Activate", "Dismiss"}
    # the leadership group is paged: the named leader and the admin, each by DM with the buttons
    for leader in (LEAD, ADMIN):
        [page] = stack.sandbox.dm_messages(leader)
        assert "leadership group decides" in page.text and f"<#{room.id}>" in page.text
        assert set(buttons(page)) == {"Activate", "Dismiss"}
    assert stack.sandbox.dm_messages(OUTSIDER) == []

    # more complaints while it waits: no second proposal
    for _ in range(3):
        assert post(url, body(stack)) == 201
    assert len(proposals(stack)) == 1

    # someone outside the leadership group is refused, privately, and told who decides
    click(stack, OUTSIDER, ActionId.ACTIVATE_SURGE, proposal.id)
    [refusal] = stack.ephemeral_texts(OUTSIDER)
    assert "Only the leadership group" in refusal and f"<@{LEAD}>" in refusal and f"<@{ADMIN}>" in refusal
    assert proposals(stack)[0].state == "proposed"

    # twenty clicks by the leaders at once make one decision and one incident
    stack.clock.advance(timedelta(minutes=7))
    with ThreadPoolExecutor(10) as pool:
        list(pool.map(lambda _: click(stack, LEAD, ActionId.ACTIVATE_SURGE, proposal.id, wait=False), range(20)))
    stack.bot.executor.wait_idle()
    [proposal] = proposals(stack)
    assert (proposal.state, proposal.decided_by) == ("activated", LEAD)
    with Session(stack.engine) as s:
        [incident] = s.scalars(select(Incident)).all()
        assert (incident.kind, incident.severity, incident.reporter_id) == ("surge", "sev2", LEAD)
        assert incident.title == "Customer complaint surge: 8 in 2h (warning line 5)"
        assert {r.role: r.user_id for r in incident.roles}["lead"] == LEAD  # the activating leader leads it
        [event] = s.scalars(select(TimelineEvent).where(TimelineEvent.event == "surge_activated")).all()
    assert proposal.incident_id == incident.id
    assert event.actor_id == LEAD
    assert event.data == {
        "proposal_id": proposal.id,
        "crossed_at": "2026-11-24T02:30:00+00:00",
        "proposed_at": "2026-11-24T02:30:00+00:00",
        "activated_by": LEAD,
        "count": 5,
        "line_count": 5,
        "line_window_seconds": 7200,
        "category": None,
        "contact_channel": None,
    }
    answers = stack.ephemeral_texts(LEAD)
    assert sum("Surge plan activated: #1" in a for a in answers) == 1
    late = [a for a in answers if f"Already activated by <@{LEAD}>: #1" in a or "is activating the surge plan" in a]
    assert len(late) == 19
    # the proposal message shows who activated it and where the surge is run, without its buttons
    [message] = stack.sandbox.channel_messages(room.id)
    assert message.edited and buttons(message) == {}
    status = json.dumps(message.blocks)
    assert f"Activated by <@{LEAD}> at 10:37 UTC+8: incident #1 <#{incident.channel_id}>" in status


def test_dismiss_asks_why_records_it_and_the_line_stays_quiet_until_volume_falls_and_rises(
    surge: tuple[Stack, str],
) -> None:
    stack, url = surge
    record(stack, 5)
    [proposal] = proposals(stack)
    # a non-leader cannot dismiss either
    click(stack, TECH, ActionId.DISMISS_SURGE, proposal.id)
    assert "Only the leadership group" in stack.ephemeral_texts(TECH)[0]
    assert stack.sandbox.views == {}
    # the leader is asked why, in a modal; an empty reason is refused in the form
    click(stack, ADMIN, ActionId.DISMISS_SURGE, proposal.id)
    [(view_id, view)] = stack.sandbox.views.items()
    assert view["user"] == ADMIN
    empty = stack.driver.submit_view(ADMIN, view_id, {BlockId.SURGE_REASON: {INPUT_ACTION: {"value": "  "}}})
    assert empty.json["response_action"] == "errors" and BlockId.SURGE_REASON in empty.json["errors"]
    why = f"系统批量重推，客户卡号{CARD}重复计数，非真实激增"
    stack.driver.submit_view(ADMIN, view_id, {BlockId.SURGE_REASON: {INPUT_ACTION: {"value": why}}})
    [proposal] = proposals(stack)
    assert (proposal.state, proposal.decided_by, proposal.reason) == ("dismissed", ADMIN, why)
    [message] = stack.sandbox.channel_messages(leadership(stack).id)
    assert buttons(message) == {} and f"Dismissed by <@{ADMIN}>" in json.dumps(message.blocks, ensure_ascii=False)
    assert CARD not in json.dumps(message.blocks)  # the reason is shown masked
    # a second leader's late click is told who dismissed it
    click(stack, LEAD, ActionId.ACTIVATE_SURGE, proposal.id)
    assert any(f"Already dismissed by <@{ADMIN}>" in t for t in stack.ephemeral_texts(LEAD))

    # still over the line: no new proposal
    record(stack, 3)
    stack.advance(minutes=30)
    assert len(proposals(stack)) == 1
    # the volume falls below the line (the window empties; the sweep sees it with no complaint coming in)
    stack.advance(hours=2)
    assert proposals(stack)[0].fell_at is not None
    assert len(proposals(stack)) == 1
    # ... and rises again: a new proposal, posted and paged
    assert post(url, body(stack)) == 201
    record(stack, 4)
    later = proposals(stack)
    assert [p.state for p in later] == ["dismissed", "proposed"]
    assert len(stack.sandbox.channel_messages(leadership(stack).id)) == 2


def test_the_leadership_group_dismisses_or_ends_by_command_and_others_are_told_who_may(
    surge: tuple[Stack, str],
) -> None:
    """`/incident surge dismiss <why>` and `/incident surge end`: the Dismiss modal and End button, typed."""
    stack, _url = surge
    general = stack.sandbox.channel_by_name("general")
    assert general is not None
    record(stack, 5)
    [proposal] = proposals(stack)
    stack.driver.slash(TECH, general.id, "surge dismiss 重复计数")
    assert stack.ephemeral_texts(TECH)[-1] == (
        f"Only the leadership group (<@{LEAD}>, <@{ADMIN}>) or a playbook admin can dismiss the surge proposal."
    )
    stack.driver.slash(TECH, general.id, "surge end")
    assert stack.ephemeral_texts(TECH)[-1].startswith("Only the leadership group (")
    assert proposals(stack)[0].state == "proposed"
    why = f"系统批量重推，客户卡号{CARD}重复计数"
    stack.driver.slash(LEAD, general.id, f"surge dismiss {why}")
    assert stack.ephemeral_texts(LEAD)[-1].startswith("Dismissed; your reason is recorded.")
    [proposal] = proposals(stack)
    assert (proposal.state, proposal.decided_by, proposal.reason) == ("dismissed", LEAD, why)
    [message] = stack.sandbox.channel_messages(leadership(stack).id)
    assert buttons(message) == {} and f"Dismissed by <@{LEAD}>" in json.dumps(message.blocks, ensure_ascii=False)
    assert CARD not in json.dumps(message.blocks)
    stack.driver.slash(LEAD, general.id, "surge dismiss again")
    assert stack.ephemeral_texts(LEAD)[-1] == "No proposal is waiting for the leadership group."
    stack.driver.slash(LEAD, general.id, "surge end")
    assert stack.ephemeral_texts(LEAD)[-1].startswith("No surge plan is running")
    reply = stack.driver.slash(LEAD, general.id, "surge")  # the read-only status is still the one word
    assert "No proposal is waiting for the leadership group." in reply.text


def test_nobody_decides_the_group_is_paged_once_more_and_a_fallen_proposal_expires(surge: tuple[Stack, str]) -> None:
    stack, _url = surge
    record(stack, 5)
    [proposal] = proposals(stack)
    assert len(stack.dm_texts(LEAD)) == 1
    stack.advance(minutes=59)
    assert len(stack.dm_texts(LEAD)) == 1
    stack.advance(minutes=1)  # the last escalation level's ack_timeout (1h): paged again, once
    assert len(stack.dm_texts(LEAD)) == 2 and "Still undecided" in stack.dm_texts(LEAD)[1]
    assert len(stack.dm_texts(ADMIN)) == 2
    stack.advance(minutes=30)
    assert len(stack.dm_texts(LEAD)) == 2
    # the window passes with nobody deciding: the proposal expires and the message says so
    stack.advance(minutes=31)
    [proposal] = proposals(stack)
    assert (proposal.state, proposal.fell_at is not None) == ("expired", True)
    [message] = stack.sandbox.channel_messages(leadership(stack).id)
    assert "Expired at" in json.dumps(message.blocks) and buttons(message) == {}


@pytest.mark.playbook(CHINESE)
def test_surge_command_shows_volume_and_the_waiting_proposal_in_chinese(
    sandbox: SlackSandbox, general: str, sqlite_url: str, clock: FixedClock
) -> None:
    sandbox.set_user_locale(OUTSIDER, "zh-CN")
    with running_stack(sandbox, test_playbook(CHINESE), sqlite_url, clock) as stack:
        record(stack, 2)
        reply = stack.driver.slash(OUTSIDER, general, "分流")
        assert "最近2小时内 2 件（预警线 5），低于预警线" in reply.text, reply.text
        assert "没有等待预案领导小组决定的启动建议" in reply.text
        record(stack, 3, category="service")
        proposals(stack)
        reply = stack.driver.slash(OUTSIDER, general, "surge")
        assert "已达到预警线" in reply.text and "等待预案领导小组决定" in reply.text
        [message] = stack.sandbox.channel_messages(leadership(stack).id)
        assert "投诉量已达到预警线" in message.text and set(buttons(message)) == {"启动预案", "不启动"}
        # the complaint kind's categories and the contact channels both in the reader's language
        assert "按类别: 服务问题 3, payments 2" in message.text, message.text
        assert "按渠道: 电话 5" in message.text, message.text
        click(stack, LEAD, ActionId.ACTIVATE_SURGE, proposals(stack)[0].id)
        with Session(stack.engine) as s:
            [incident] = s.scalars(select(Incident)).all()
        assert incident.title == "客户投诉激增：2小时内 5 件（预警线 5）"


def test_concurrent_intakes_crossing_together_make_one_proposal(
    sandbox: SlackSandbox, general: str, playbook: Playbook, stack_db_url: str, clock: FixedClock
) -> None:
    with running_stack(sandbox, playbook, stack_db_url, clock) as stack:
        record(stack, 3)
        gate = threading.Barrier(8)

        def one(_: int) -> None:
            item = complaint(stack)
            gate.wait()
            stack.bot.services.intake.record(item)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(8)))
        [proposal] = proposals(stack)
        assert proposal.state == "proposed" and proposal.count >= 5
        assert len(stack.sandbox.channel_messages(leadership(stack).id)) == 1


def test_a_proposal_slack_refused_is_posted_by_the_next_sweep_once(surge: tuple[Stack, str]) -> None:
    stack, _url = surge
    # refused twice: the post, and the post again after joining the channel (bot/surge/leadership.py)
    stack.sandbox.fail("chat.postMessage", error="not_in_channel", times=2)
    record(stack, 5)
    [proposal] = proposals(stack)
    assert proposal.message_ts is None and stack.sandbox.channel_messages(leadership(stack).id) == []
    stack.advance(seconds=15)  # the scheduler's next sweep
    [proposal] = proposals(stack)
    assert proposal.message_ts is not None
    stack.advance(seconds=15)
    assert len(stack.sandbox.channel_messages(leadership(stack).id)) == 1
    assert len(stack.dm_texts(LEAD)) == 1


def test_an_activation_whose_incident_cannot_be_opened_is_given_back(
    surge: tuple[Stack, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack, _url = surge
    record(stack, 5)
    [proposal] = proposals(stack)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database went away")

    monkeypatch.setattr(stack.bot.services.incidents, "open_incident", broken)
    click(stack, LEAD, ActionId.ACTIVATE_SURGE, proposal.id)
    assert "Something went wrong (ref" in stack.ephemeral_texts(LEAD)[-1]
    assert (proposals(stack)[0].state, proposals(stack)[0].decided_by) == ("proposed", None)
    monkeypatch.undo()
    click(stack, LEAD, ActionId.ACTIVATE_SURGE, proposal.id)
    assert proposals(stack)[0].state == "activated" and proposals(stack)[0].incident_id is not None


def test_another_replicas_complaints_are_seen_within_a_second(surge: tuple[Stack, str]) -> None:
    """Below the line, a count is trusted for BELOW_FOR plus this process's own complaints (no query per
    complaint at 200 a second); complaints another replica records reach the line's check within that time."""
    from bot.intake.service import ComplaintIntake
    from bot.surge.watch import BELOW_FOR

    stack, _url = surge
    record(stack, 3)  # this process: counted once, then trusted and raised by one per complaint
    other = ComplaintIntake(stack.bot.services.db, stack.clock, stack.bot.services.playbook)  # no surge watch
    for _ in range(2):
        other.record(complaint(stack))
    assert stack.bot.services.surge_watch.observe() == []  # 3 + this one < 5: not counted again yet
    stack.clock.advance(BELOW_FOR)
    [made] = stack.bot.services.surge_watch.observe()
    [proposal] = proposals(stack)
    assert proposal.id == made and proposal.count == 5
