"""After the incident, across simulated days: satisfaction, the review draft filled from the record, action
items reminded and escalated (even after close), the review export, the final summary and the archive."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.sandbox.driver import click_button
from bot.sandbox.server import Message
from store.queries import get_incident, list_timeline
from tests.conftest import ADMIN, COMMS, LEAD, LEGAL, OUTSIDER, TECH, Stack
from tests.notice_targets import WebhookReceiver


def last_ephemeral(stack: Stack, user: str) -> str:
    texts = stack.ephemeral_texts(user)
    return texts[-1] if texts else ""


def review_drafts(stack: Stack, channel: str) -> list[Message]:
    return [m for m in stack.sandbox.channel_messages(channel) if m.blocks and m.blocks[0]["type"] == "markdown"]


def test_an_incident_from_open_to_closed_across_days(stack: Stack, hotline: WebhookReceiver) -> None:
    # Tuesday 10:00 in Shanghai: a complaint, staffed, first response by notice (to the customer, through the
    # hotline), resolved at 15:00.
    channel = stack.open("complaint sev3 cat:technical Card 6222021234567890123 charged twice").id
    stack.driver.slash(LEAD, channel, f"assign comms <@{COMMS}>")
    stack.driver.slash(LEAD, channel, f"assign legal <@{LEGAL}>")
    stack.driver.slash(COMMS, channel, "notice initial hotline")
    notice = next(
        m
        for m in reversed(stack.sandbox.channel_messages(channel))
        if m.blocks and "Customer notice" in str(m.blocks[0])
    )
    click_button(stack.driver, COMMS, channel, notice.ts, "Publish")
    assert len(hotline.to("/hotline")) == 1
    stack.advance(hours=5)
    stack.driver.slash(TECH, channel, "update Duplicate from a retry in the clearing job")
    stack.driver.slash(LEAD, channel, "resolve Refunded; retry fixed")

    # Ratings: the customer's (recorded by comms with a button in the channel), and the team's own by DM.
    rating_message = stack.sandbox.channel_messages(channel)[-1]
    assert rating_message.text.startswith("When customer comms has called the customer back (满意度回访)")
    click_button(stack.driver, COMMS, channel, rating_message.ts, "4")
    assert stack.texts(channel)[-1] == f":star: <@{COMMS}> recorded the customer's satisfaction: *4/5*"
    tech_dm = stack.sandbox.dm_messages(TECH)[-1]
    assert tech_dm.text.startswith("#1 is resolved. How well did the response go")
    click_button(stack.driver, TECH, tech_dm.channel, tech_dm.ts, "5")
    assert last_ephemeral(stack, TECH) == ":white_check_mark: Thank you: you rated the response to #1 5/5."
    stack.driver.slash(LEAD, channel, "report")  # the KPIs see the rating and the first response
    report = last_ephemeral(stack, LEAD)
    assert "Satisfaction: 100% rated 4+ of 5 (1 rated; target 90%) :white_check_mark:" in report
    assert "First response: mean 0m, median 0m (target ≤ 24h; 1 responded)" in report
    click_button(stack.driver, OUTSIDER, channel, rating_message.ts, "1")  # not a responder
    assert last_ephemeral(stack, OUTSIDER).startswith(f"Only the lead (<@{LEAD}>), role owners (")

    # The review draft is due at 10:00 on the next working day (Wednesday), not before.
    stack.advance(hours=18, minutes=59)  # Wednesday 09:59
    assert review_drafts(stack, channel) == []
    stack.advance(minutes=1)
    (draft,) = review_drafts(stack, channel)
    markdown = draft.blocks[0]["text"]
    assert markdown.startswith("# Post-incident review: #1 Card `****0123` charged twice")
    assert "**SEV3 Customer complaint** · category technical" in markdown
    assert "time to resolve 5h 0m" in markdown
    assert "## Summary\nRefunded; retry fixed" in markdown
    assert f"- Customer comms: <@{COMMS}>\n- Tech support: <@{TECH}>\n- Legal & compliance: <@{LEGAL}>" in markdown
    assert f"| First response to the customer | <@{COMMS}> | 2026-11-25 10:00 UTC+8 | met, 1d 0h early |" in markdown
    assert f"| Investigation finished | <@{TECH}> | 2026-11-26 10:00 UTC+8 | met, 1d 19h early |" in markdown
    assert f"| Satisfaction follow-up | <@{COMMS}> | 2026-11-27 15:00 UTC+8 | met, 3d 0h early |" in markdown
    assert "- initial published 2026-11-24 10:00 UTC+8 to hotline" in markdown
    assert "- Customer: 4/5\n- The team's rating of the response: 5.0/5 from 1 participant\n" in markdown
    assert f"- 11-24 15:00 <@{TECH}> update: Duplicate from a retry in the clearing job" in markdown
    assert "6222021234567890123" not in markdown
    assert stack.dm_texts(LEAD)[-1].startswith(
        f":memo: The post-incident review draft for #1 is ready in <#{channel}>."
    )

    # An action item: reminded before it is due, like any deadline.
    stack.driver.slash(LEAD, channel, f"action Alert on clearing-job retries <@{TECH}> 2d")
    assert stack.texts(channel)[-1] == (
        f":pushpin: <@{LEAD}> added action item `action-1` for <@{TECH}>, due 2026-11-27 10:00 UTC+8: "
        "Alert on clearing-job retries"
    )
    stack.advance(days=1)
    assert stack.dm_texts(TECH)[-1].startswith(":alarm_clock: Reminder: *Alert on clearing-job retries* for #1")

    # The export is a Markdown file shared in the channel, with the action item in it.
    stack.driver.slash(LEAD, channel, "review export")
    (shared,) = stack.sandbox.files.values()
    assert shared.filename == "incident-1-review.md" and shared.channel == channel and shared.data is not None
    exported = shared.data.decode()
    assert exported.startswith("# Post-incident review: #1 ")
    assert (
        f"- [ ] `action-1` Alert on clearing-job retries — <@{TECH}>, due 2026-11-27 10:00 UTC+8 (pending)" in exported
    )

    # Close: needs the review complete; then a final summary, and the channel is archived.
    stack.driver.slash(LEAD, channel, "close")
    assert last_ephemeral(stack, LEAD).startswith("The review of #1 is not complete")
    stack.driver.slash(TECH, channel, "review done")
    assert last_ephemeral(stack, TECH).startswith(
        f"Only the lead (<@{LEAD}>) or a playbook admin can complete the review"
    )
    stack.driver.slash(LEAD, channel, "review done")
    stack.driver.slash(LEAD, channel, "close")
    summary = stack.texts(channel)[-1]
    assert summary.startswith(":checkered_flag: *Final summary of #1* — SEV3 Customer complaint: Card ")
    assert "• Customer satisfaction: 4/5 · the team's rating of the response: 5.0/5 (1)" in summary
    assert "• Action items still open: 1 (their owners keep getting reminders)" in summary
    assert stack.sandbox.channels[channel].is_archived
    assert ("conversations.archive", {"channel": channel}) in stack.sandbox.calls

    # The action item outlives the incident: missed after close, its owner is paged by DM; the archived
    # channel gets nothing more.
    channel_messages = len(stack.sandbox.channel_messages(channel))
    stack.advance(days=1, minutes=1)
    assert any(
        t.startswith(":rotating_light: *Page for #1*") and "Alert on clearing-job retries" in t
        for t in stack.dm_texts(TECH)
    )
    assert len(stack.sandbox.channel_messages(channel)) == channel_messages
    with stack.bot.services.db() as s:
        incident = get_incident(s, 1)
        assert incident is not None and incident.status == "closed"
        events = [e.event for e in list_timeline(s, 1)]
    assert events.count("review_posted") == 1 and "review_completed" in events and "closed_without_review" not in events


def test_closing_before_the_review_is_an_admins_call_and_is_recorded(stack: Stack) -> None:
    channel = stack.open("outage sev3 Transfers delayed").id
    stack.driver.slash(LEAD, channel, "resolve Queue drained")
    stack.driver.slash(ADMIN, channel, "close")
    summary = stack.texts(channel)[-1]
    assert f"• Closed by <@{ADMIN}> *without a completed review* (recorded)" in summary
    with stack.bot.services.db() as s:
        events = [(e.event, e.actor_id) for e in list_timeline(s, 1)]
        incident = get_incident(s, 1)
        assert incident is not None and incident.review_at is None  # nothing left to post to an archived channel
    assert ("closed_without_review", ADMIN) in events
    stack.advance(days=2)
    assert review_drafts(stack, channel) == []


@pytest.mark.playbook({"archive_on_close: true": "archive_on_close: false", "day: next_working_day": "day: same_day"})
def test_the_playbook_may_keep_the_channel_and_review_the_same_day(stack: Stack) -> None:
    channel = stack.open("outage sev3 Transfers delayed").id
    stack.driver.slash(LEAD, channel, "resolve Queue drained")  # Tuesday 10:00, the review hour itself
    stack.advance(minutes=1)
    assert len(review_drafts(stack, channel)) == 1
    stack.driver.slash(LEAD, channel, "review done")
    stack.driver.slash(LEAD, channel, "close")
    assert not stack.sandbox.channels[channel].is_archived
    assert stack.texts(channel)[-1].startswith(":checkered_flag: *Final summary of #1*")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("satisfaction 7", "Give the customer's rating from 1 to 5, then any comment"),
        ("satisfaction 4 Happy", "#1 is reported; the satisfaction follow-up comes after it is resolved."),
        ("action Fix it", "Say what, who and by when: `/incident action <text> @owner <due>`."),
        ("action Fix it @tom.tech soon", "`soon` is not a due time. Use a duration like `3d`"),
        ("action Fix it @tom.tech 2020-01-01", "That due time has already passed; give a later one"),
        ("action Fix it @nobody.here 2d", "I can't find @nobody.here in this workspace."),
        ("review", "`/incident review post` posts the draft now, `/incident review export`"),
        ("review post", "#1 is reported; the review comes after it is resolved."),
    ],
)
def test_aftercare_commands_that_cannot_be_done_say_what_to_type(stack: Stack, text: str, expected: str) -> None:
    channel = stack.open().id
    stack.driver.slash(LEAD, channel, text)
    assert last_ephemeral(stack, LEAD).startswith(expected)


def test_the_review_is_scheduled_past_weekends_and_holidays(stack: Stack) -> None:
    stack.clock.set(datetime(2026, 11, 27, 9, 0, tzinfo=UTC))  # Friday 17:00 in Shanghai
    channel = stack.open("outage sev3 Batch late").id
    stack.driver.slash(LEAD, channel, "resolve Batch rerun")
    with stack.bot.services.db() as s:
        incident = get_incident(s, 1)
        assert incident is not None and incident.review_at is not None
        assert incident.review_at.replace(tzinfo=UTC) == datetime(2026, 11, 30, 2, 0, tzinfo=UTC)  # Monday 10:00


def test_a_review_draft_slack_refuses_is_posted_by_the_retry_once(stack: Stack) -> None:
    """Marked posted together with the post it promises: a refusal leaves the draft to the outbox's retry."""
    channel = stack.open("outage sev3 转账延迟，客户卡号6222021234567890123").id
    stack.driver.slash(LEAD, channel, "resolve 队列已清空")
    stack.sandbox.fail("chat.postMessage", error="msg_too_long", times=1)
    stack.driver.slash(LEAD, channel, "review post")
    assert review_drafts(stack, channel) == []
    stack.advance(seconds=20)
    assert len(review_drafts(stack, channel)) == 1
    stack.advance(days=2)  # the scheduled draft is not posted again: this one counts
    assert len(review_drafts(stack, channel)) == 1
