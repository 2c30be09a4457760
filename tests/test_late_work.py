"""Late work is recorded as done late, and counted: a first response after its deadline, the solution
communicated by a real action. Driven like a user: signed commands and clicks, the clock moved by the test."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.sandbox.driver import click_button
from store.models import Deadline, Escalation
from tests.conftest import COMMS, LEAD, OUTSIDER, Stack
from tests.notice_targets import WebhookReceiver
from tests.test_deadlines import LEADERSHIP_AND_COMMS

TITLE = "complaint sev3 客户卡号6222021234567890123被重复扣款，电话13812345678"


def states(stack: Stack) -> dict[str, str]:
    with stack.bot.services.db() as s:
        return {d.key: d.state for d in s.scalars(select(Deadline))}


@pytest.mark.playbook(LEADERSHIP_AND_COMMS)
def test_a_first_response_after_its_deadline_is_met_late_and_counted_in_the_kpis(stack: Stack) -> None:
    channel = stack.open(TITLE).id
    stack.advance(hours=25)  # the 24 h first response was missed an hour ago; the leadership group is paged now
    assert states(stack)["first_response"] == "missed"
    stack.driver.slash(COMMS, channel, "done first_response")
    assert stack.texts(channel)[-1] == (
        f":white_check_mark: <@{COMMS}> marked *First response to the customer* done (1h 0m late)."
    )
    assert states(stack)["first_response"] == "met"
    listing = stack.driver.slash(LEAD, channel, "deadlines").text
    assert "(`first_response`)" in listing and "met 1h 0m late" in listing
    with stack.bot.services.db() as s:
        chains = list(s.scalars(select(Escalation)))
    assert chains and {c.state for c in chains} == {"cancelled"}  # the late response stops the paging
    stack.driver.slash(COMMS, channel, "done first_response")  # once only
    assert stack.ephemeral_texts(COMMS)[-1].startswith("No pending deadline `first_response` in #1.")

    stack.driver.slash(LEAD, channel, "report 2026-11-24 2026-11-30")
    report = stack.ephemeral_texts(LEAD)[-1]
    assert "First response: mean 25.0h, median 25.0h (target ≤ 24h; 1 responded)" in report
    assert "first_response 0% (0/1; 1 met late)" in report


def test_a_missed_deadline_can_be_marked_done_late_from_its_reminder(stack: Stack) -> None:
    channel = stack.open(TITLE).id
    stack.advance(hours=12)
    reminder = next(m for m in stack.sandbox.dm_messages(LEAD) if "Reminder" in m.text)
    stack.advance(hours=14)  # missed two hours ago
    click_button(stack.driver, LEAD, reminder.channel, reminder.ts, "Mark done")
    assert stack.texts(channel)[-1].endswith("done (2h 0m late).")
    assert states(stack)["first_response"] == "met"
    click_button(stack.driver, LEAD, reminder.channel, reminder.ts, "Mark done")
    assert stack.ephemeral_texts(LEAD)[-1] == f"*First response to the customer* is already met by <@{LEAD}>."


@pytest.mark.playbook(LEADERSHIP_AND_COMMS)
def test_the_solution_deadline_is_met_by_recording_the_solution_given(stack: Stack) -> None:
    channel = stack.open(TITLE).id
    stack.driver.slash(OUTSIDER, channel, "solution 已退款")
    assert stack.ephemeral_texts(OUTSIDER)[-1].startswith("Only")
    stack.driver.slash(COMMS, channel, "solution")
    assert stack.ephemeral_texts(COMMS)[-1] == (
        "Say what solution the customer was given: `/incident solution Refunded the double debit`."
    )
    assert states(stack)["solution"] == "pending"
    stack.advance(hours=6)
    stack.driver.slash(COMMS, channel, "solution 已为客户 6222021234567890123 退回重复扣款，短信通知 13812345678")
    assert stack.texts(channel)[-1] == (
        f":speech_balloon: <@{COMMS}> recorded the solution given to the customer: "
        "已为客户 ****0123 退回重复扣款，短信通知 138****5678\n"
        ":white_check_mark: *Solution communicated to the customer* met."
    )
    assert states(stack)["solution"] == "met"
    timeline = stack.driver.slash(COMMS, channel, "timeline").text
    assert "solution communicated: 已为客户" in timeline


@pytest.mark.playbook(LEADERSHIP_AND_COMMS)
def test_a_late_solution_is_met_late_and_the_final_summary_says_so(stack: Stack) -> None:
    channel = stack.open(TITLE).id
    stack.driver.slash(COMMS, channel, "done first_response")
    stack.advance(hours=50)  # the 48 h solution deadline was missed
    assert states(stack)["solution"] == "missed"
    stack.driver.slash(COMMS, channel, "solution 已退款并电话告知客户")
    assert stack.texts(channel)[-1].endswith("*Solution communicated to the customer* met (2h 0m late).")
    assert states(stack)["solution"] == "met"


@pytest.mark.playbook(LEADERSHIP_AND_COMMS)
def test_customer_notices_meet_the_first_response_late_and_the_solution_with_the_resolved_one(
    stack: Stack, hotline: WebhookReceiver
) -> None:
    channel = stack.open(TITLE).id
    stack.advance(hours=30)  # no first response within 24 h
    assert states(stack)["first_response"] == "missed"
    stack.driver.slash(COMMS, channel, "notice initial hotline")  # a complaint is answered to its customer
    click_button(stack.driver, COMMS, channel, stack.sandbox.channel_messages(channel)[-1].ts, "Publish")
    assert (states(stack)["first_response"], states(stack)["solution"]) == ("met", "pending")
    stack.driver.slash(LEAD, channel, "resolve 已退款")
    stack.driver.slash(COMMS, channel, "notice resolved hotline")
    click_button(stack.driver, COMMS, channel, stack.sandbox.channel_messages(channel)[-1].ts, "Publish")
    assert states(stack)["solution"] == "met"
    listing = stack.driver.slash(COMMS, channel, "deadlines").text
    assert "met 6h 0m late" in listing and "met 18h 0m early" in listing
