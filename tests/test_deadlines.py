"""Deadlines on a clock: reminders, misses, escalation and acknowledgement, driven by moving time."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from bot.sandbox.driver import click_button
from bot.sandbox.server import Message
from store.models import Deadline, Escalation, SentNotification, TimelineEvent
from tests.conftest import ADMIN, COMMS, LEAD, REPORTER, TECH, Stack

OPENED = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
LEADERSHIP_AND_COMMS = {
    "aliases: [comms, customer_service, cs, 客户沟通, 客服]\n    default_owners: []": (
        f"aliases: [comms, customer_service, cs, 客户沟通, 客服]\n    default_owners: [{COMMS}]"
    ),
    "{name: Leadership group, names: {zh-CN: 预案领导小组}, leadership: true, ack_timeout: 1h}": (
        f"{{name: Leadership group, names: {{zh-CN: 预案领导小组}}, leadership: true, "
        f"users: [{ADMIN}], ack_timeout: 1h}}"
    ),
}


def events(stack: Stack, kind: str) -> list[TimelineEvent]:
    with stack.bot.services.db() as s:
        from sqlalchemy import select

        return list(s.scalars(select(TimelineEvent).where(TimelineEvent.event == kind).order_by(TimelineEvent.id)))


def hours_after_open(when: datetime) -> float:
    return (when.replace(tzinfo=UTC) - OPENED).total_seconds() / 3600


def button(message: Message, label: str) -> bool:
    return any(e.get("text", {}).get("text") == label for b in message.blocks for e in b.get("elements", []))


@pytest.mark.playbook(LEADERSHIP_AND_COMMS)
def test_the_seed_complaint_case_walked_through_time(stack: Stack) -> None:
    channel = stack.open("complaint sev3 cat:technical Customer charged twice for one transfer")
    listing = stack.driver.slash(REPORTER, channel.id, "deadlines").text
    assert (
        "*First response to the customer* (`first_response`) — <@UCOMMS00001> (Customer comms) — "
        "due 11-25 10:00 UTC+8 — in 1d 0h — pending"
    ) in listing
    assert (
        "*Investigation finished* (`investigation`) — <@UTECH000001> (Tech support) — due 11-26 10:00 UTC+8" in listing
    )

    stack.advance(hours=11, minutes=59)
    assert stack.dm_texts(COMMS) == []  # nothing before the 50 % mark

    stack.advance(minutes=1)  # 12 h: half the first-response time
    (reminder,) = stack.sandbox.dm_messages(COMMS)
    assert reminder.text.startswith(":alarm_clock: Reminder: *First response to the customer* for #1")
    assert "is due 2026-11-25 10:00 UTC+8 — 12h 0m left." in reminder.text
    assert button(reminder, "Mark done") and button(reminder, "Snooze 1h 0m")
    assert (
        stack.texts(channel.id)[-1]
        == f":alarm_clock: <@{COMMS}>: *First response to the customer* is due in 12h 0m (11-25 10:00)."
    )

    stack.advance(hours=1)  # 13 h: customer comms replies to the customer and marks it done
    click_button(stack.driver, COMMS, reminder.channel, reminder.ts, "Mark done")
    assert (
        stack.texts(channel.id)[-1]
        == f":white_check_mark: <@{COMMS}> marked *First response to the customer* done (11h 0m to spare)."
    )

    stack.advance(hours=9)  # 22 h: the 2-hours-before reminder must not come for a met deadline
    assert len(stack.dm_texts(COMMS)) == 1

    stack.advance(hours=2)  # 24 h: half of the 48 h deadlines
    assert [t.split(" for #1")[0] for t in stack.dm_texts(TECH)] == [":alarm_clock: Reminder: *Investigation finished*"]
    assert stack.dm_texts(COMMS)[-1].startswith(":alarm_clock: Reminder: *Solution communicated to the customer*")
    stack.driver.slash(COMMS, channel.id, "done solution")

    stack.advance(hours=22)  # 46 h: two hours left on the investigation
    assert stack.dm_texts(TECH)[-1].startswith(":alarm_clock: Reminder: *Investigation finished*")
    assert "2h 0m left" in stack.dm_texts(TECH)[-1]

    stack.advance(hours=2)  # 48 h: missed → the owner is paged first
    assert stack.texts(channel.id)[-2] == (
        f":red_circle: *Investigation finished* is overdue (was due 11-26 10:00; owner <@{TECH}>). Escalating."
    )
    page = stack.sandbox.dm_messages(TECH)[-1]
    assert page.text.startswith(":rotating_light: *Page for #1*: Investigation finished missed")
    assert "You are paged as *Owner*. If nobody acknowledges within 15m, *Team lead* is paged next." in page.text
    assert button(page, "Acknowledge")
    assert stack.dm_texts(LEAD) == []

    stack.advance(minutes=14)
    assert stack.dm_texts(LEAD) == []
    stack.advance(minutes=1)  # 48 h 15 m: the owner did not acknowledge → the team lead
    assert stack.dm_texts(LEAD)[-1].startswith(":rotating_light: *Page for #1*")
    assert "paged as *Team lead*. If nobody acknowledges within 30m, *Leadership group*" in stack.dm_texts(LEAD)[-1]

    stack.advance(minutes=30)  # 48 h 45 m: → the leadership group
    leadership_page = stack.sandbox.dm_messages(ADMIN)[-1]
    assert "paged as *Leadership group*." in leadership_page.text

    stack.advance(minutes=15)  # 49 h: the leadership group acknowledges
    click_button(stack.driver, ADMIN, leadership_page.channel, leadership_page.ts, "Acknowledge")
    assert stack.texts(channel.id)[-1] == (
        f":white_check_mark: <@{ADMIN}> acknowledged *Investigation finished missed* after 1h 0m; paging stopped."
    )

    stack.advance(hours=5)  # nothing more is sent once acknowledged
    assert len(stack.dm_texts(ADMIN)) == 1 and len(stack.dm_texts(LEAD)) == 1

    reminders = [(e.text, hours_after_open(e.at)) for e in events(stack, "reminder_sent")]
    assert reminders == [
        ("First response to the customer", 12.0),
        ("Investigation finished", 24.0),
        ("Solution communicated to the customer", 24.0),
        ("Investigation finished", 46.0),
    ]
    pages = [(e.text, round(hours_after_open(e.at), 2)) for e in events(stack, "paged")]
    assert pages == [("Owner", 48.0), ("Team lead", 48.25), ("Leadership group", 48.75)]
    (ack,) = events(stack, "acknowledged")
    assert ack.actor_id == ADMIN and ack.data["seconds_to_ack"] == 3600
    listing = stack.driver.slash(REPORTER, channel.id, "deadlines").text
    assert ":white_check_mark: *First response to the customer*" in listing and "met 11h 0m early" in listing
    assert ":red_circle: *Investigation finished*" in listing and "— missed" in listing
    assert "— missed — missed" not in listing and re.search(r"Investigation finished.* — overdue by \d", listing)


def test_a_restart_sends_each_due_reminder_once_and_escalates_what_passed_while_down(stack: Stack) -> None:
    from tests.conftest import build_stack

    channel = stack.open("complaint sev3 Fee charged twice")
    url = str(stack.engine.url)
    # the bot process stops; 25 hours pass; a new process starts on the same database
    stack.http.stop()
    stack.bot.executor.shutdown(wait=True)
    stack.clock.advance(timedelta(hours=25))
    bot, http, engine = build_stack(stack.sandbox, stack.bot.services.playbook, url, stack.clock)
    try:
        first = bot.sweeper.sweep()
        second = bot.sweeper.sweep()

        with bot.services.db() as s:
            from sqlalchemy import select

            states = {d.key: d.state for d in s.scalars(select(Deadline))}
            keys = [n.key for n in s.scalars(select(SentNotification).order_by(SentNotification.id))]
        assert states == {"first_response": "missed", "investigation": "pending", "solution": "pending"}
        # the 12 h first-response reminder no longer made sense: its deadline passed, so it escalated instead;
        # the two 24 h reminders (investigation, solution) arrive once each
        reminder_keys = [k for k in keys if k.startswith("reminder:")]
        assert len(reminder_keys) == 2 and len(set(reminder_keys)) == 2
        assert any(k.startswith("missed:") for k in keys) and any(k.startswith("page:") for k in keys)
        assert second.sent == 0
        lead_dms = stack.sandbox.dm_messages(LEAD)
        assert [m.text.split(" for #1")[0] for m in lead_dms].count(
            ":alarm_clock: Reminder: *Solution communicated to the customer*"
        ) == 1
        assert first.failed == 0
        assert any("First response to the customer* is overdue" in t for t in stack.texts(channel.id))
    finally:
        http.stop()
        bot.executor.shutdown(wait=True)
        bot.sweeper.close()
        engine.dispose()


def test_two_sweeps_never_send_the_same_reminder_twice(stack: Stack) -> None:
    stack.open("complaint sev3 Fee charged twice")
    stack.clock.advance(timedelta(hours=12))
    stack.bot.sweeper.sweep()
    with stack.bot.services.db.begin() as s:  # as if another process had read the rows before they moved on
        from sqlalchemy import update

        s.execute(update(Deadline).values(next_action_at=OPENED + timedelta(hours=12), reminders_done=0))
    again = stack.bot.sweeper.sweep()
    assert again.sent == 0
    assert len([m for m in stack.sandbox.messages if "Reminder: *First response" in m.text]) == 1


def test_snooze_delays_the_next_reminder_and_is_capped(stack: Stack) -> None:
    stack.open("complaint sev3 Fee charged twice")
    stack.advance(hours=12)
    reminder = stack.sandbox.dm_messages(LEAD)[-1]  # customer comms has no owner: the lead gets it
    click_button(stack.driver, LEAD, reminder.channel, reminder.ts, "Snooze 1h 0m")
    assert (
        stack.ephemeral_texts(LEAD)[-1]
        == f":zzz: <@{LEAD}> snoozed *First response to the customer* until 11-24 23:00."
    )
    stack.advance(minutes=59)
    assert len([t for t in stack.dm_texts(LEAD) if "First response" in t]) == 1
    stack.advance(minutes=1)
    assert len([t for t in stack.dm_texts(LEAD) if "First response" in t]) == 2
    for _ in range(2):
        latest = [m for m in stack.sandbox.dm_messages(LEAD) if "First response" in m.text][-1]
        click_button(stack.driver, LEAD, latest.channel, latest.ts, "Snooze 1h 0m")
        stack.advance(hours=1)
    latest = [m for m in stack.sandbox.dm_messages(LEAD) if "First response" in m.text][-1]
    click_button(stack.driver, LEAD, latest.channel, latest.ts, "Snooze 1h 0m")
    assert stack.ephemeral_texts(LEAD)[-1].startswith("*First response to the customer* was snoozed 3 times already")
    assert len(events(stack, "snoozed")) == 3


def test_a_status_update_meets_the_cadence_and_re_arms_it_from_the_update(stack: Stack) -> None:
    channel = stack.open("outage sev3 Statement downloads slow")  # sev3: a 2 h cadence, no page on open
    stack.advance(minutes=90)
    stack.driver.slash(LEAD, channel.id, "update Cache rebuilt; downloads recovering")
    with stack.bot.services.db() as s:
        from sqlalchemy import select

        rows = list(s.scalars(select(Deadline).where(Deadline.key == "status_update").order_by(Deadline.id)))
    assert [r.state for r in rows] == ["met", "pending"]
    assert rows[1].due_at.replace(tzinfo=UTC) == OPENED + timedelta(minutes=90) + timedelta(hours=2)
    stack.advance(minutes=30)  # the old due time passes: nothing is missed
    assert not any("overdue" in t for t in stack.texts(channel.id))


def test_a_severe_opening_pages_the_lead_and_ack_from_the_channel_stops_it(stack: Stack) -> None:
    channel = stack.open("outage sev1 Core banking down")
    stack.bot.sweeper.sweep()
    assert stack.dm_texts(LEAD)[-1].startswith(":rotating_light: *Page for #1*: SEV1 service outage opened")
    stack.advance(minutes=3)
    stack.driver.slash(LEAD, channel.id, "ack")
    assert stack.texts(channel.id)[-1] == (
        f":white_check_mark: <@{LEAD}> acknowledged *SEV1 service outage opened* after 3m; paging stopped."
    )
    with stack.bot.services.db() as s:
        from sqlalchemy import select

        ack_deadline = s.scalars(select(Deadline).where(Deadline.key == "acknowledge")).one()
        chain = s.scalars(select(Escalation)).one()
    assert ack_deadline.state == "met" and chain.state == "acknowledged" and chain.acked_by == LEAD
    stack.advance(hours=3)
    pages = [t.split(" — ")[0] for t in stack.dm_texts(LEAD) if "Page for #1" in t]
    # the acknowledged chain never pages again; the missed 30-minute status update is a chain of its own
    assert pages == [
        ":rotating_light: *Page for #1*: SEV1 service outage opened",
        ":rotating_light: *Page for #1*: Status update missed",
    ]
    with stack.bot.services.db() as s:
        from sqlalchemy import select

        chains = {c.reason: c.state for c in s.scalars(select(Escalation))}
    # nobody acknowledged the missed update: owner, team lead and the leadership group (the admin here) were paged
    assert chains == {"SEV1 service outage opened": "acknowledged", "Status update missed": "exhausted"}
    assert f":pager: Paging <@{ADMIN}> (*Leadership group*) for: Status update missed" in stack.texts(channel.id)
    assert not any("Nobody is configured" in t for t in stack.texts(channel.id))
    stack.driver.slash(LEAD, channel.id, "ack")
    assert stack.ephemeral_texts(LEAD)[-1] == "Nothing is paging for #1."


def test_only_people_paged_or_responders_may_acknowledge(stack: Stack) -> None:
    channel = stack.open("outage sev1 Core banking down")
    stack.bot.sweeper.sweep()
    from tests.conftest import OUTSIDER

    stack.driver.slash(OUTSIDER, channel.id, "ack")
    assert (
        stack.ephemeral_texts(OUTSIDER)[-1]
        == f"Only the lead (<@{LEAD}>), role owners (<@{TECH}>), the people paged or a playbook admin can acknowledge "
        "pages for #1. Ask one of them, or take an open role with `/incident assign <role> me`."
    )


def test_nothing_is_sent_for_a_closed_incident(stack: Stack) -> None:
    channel = stack.open("outage sev1 Core banking down")
    stack.driver.slash(LEAD, channel.id, "resolve Failover completed")
    stack.driver.slash(LEAD, channel.id, "review done")
    stack.driver.slash(LEAD, channel.id, "close")
    before = len(stack.sandbox.messages)
    stack.advance(hours=30)
    assert len(stack.sandbox.messages) == before
    with stack.bot.services.db() as s:
        from sqlalchemy import select

        assert {d.state for d in s.scalars(select(Deadline))} <= {"met", "cancelled"}
        assert {c.state for c in s.scalars(select(Escalation))} == {"cancelled"}


def test_pausing_stops_the_clocks_and_resuming_moves_every_deadline_out(stack: Stack) -> None:
    channel = stack.open("complaint sev3 Fee charged twice")
    stack.advance(hours=2)
    stack.driver.slash(LEAD, channel.id, "pause Waiting for the customer's bank statement")
    assert stack.texts(channel.id)[-1] == (
        f":double_vertical_bar: <@{LEAD}> paused the clocks: Waiting for the customer's bank statement. "
        "No reminders until `/incident resume`."
    )
    stack.advance(hours=30)  # the 12 h reminder and the 24 h deadline would both have passed
    assert not any("Reminder" in t for t in stack.dm_texts(LEAD))
    assert not any("overdue" in t for t in stack.texts(channel.id))
    stack.driver.slash(LEAD, channel.id, "resume")
    assert stack.texts(channel.id)[-1] == (
        f":arrow_forward: <@{LEAD}> resumed the clocks after 1d 6h; every pending deadline moved out by that time."
    )
    with stack.bot.services.db() as s:
        from sqlalchemy import select

        first = s.scalars(select(Deadline).where(Deadline.key == "first_response")).one()
    assert first.due_at.replace(tzinfo=UTC) == OPENED + timedelta(hours=24 + 30)
    stack.advance(hours=10)  # 12 h of running time since the opening: the 50 % reminder, 30 h late
    assert any("Reminder: *First response to the customer*" in t for t in stack.dm_texts(LEAD))


BUSINESS_FIRST_RESPONSE = {
    "owner: customer_comms, after: 24h, on_resolve: keep,": (
        "owner: customer_comms, after: 9h, on_resolve: keep, clock: business,"
    )
}


@pytest.mark.playbook(BUSINESS_FIRST_RESPONSE)
def test_resuming_a_business_hours_deadline_keeps_the_working_time_it_had_left(stack: Stack) -> None:
    """Whatever the host's time zone (CI runs this under TZ=Asia/Shanghai too): 9 working hours from Tuesday
    10:00 are due Wednesday 10:00; paused at Tuesday 12:00 with 7 working hours left and resumed Wednesday
    18:00, it falls due Thursday 16:00 (Shanghai)."""
    channel = stack.open("complaint sev3 客户卡号6222021234567890123被重复扣款")
    assert "due 11-25 10:00 UTC+8" in stack.driver.slash(LEAD, channel.id, "deadlines").text
    stack.advance(hours=2)
    stack.driver.slash(LEAD, channel.id, "pause 等客户提供流水")
    stack.advance(hours=30)
    stack.driver.slash(LEAD, channel.id, "resume")
    listing = stack.driver.slash(LEAD, channel.id, "deadlines").text
    assert "(`first_response`) — <@ULEAD000001> (Customer comms) — due 11-26 16:00 UTC+8 — in 22h 0m" in listing
    with stack.bot.services.db() as s:
        from sqlalchemy import select

        first = s.scalars(select(Deadline).where(Deadline.key == "first_response")).one()
    assert first.due_at == datetime(2026, 11, 26, 8, 0, tzinfo=UTC)  # aware UTC from the store


def test_pause_is_refused_twice_and_resume_when_not_paused(stack: Stack) -> None:
    channel = stack.open("complaint sev3 Fee charged twice")
    stack.driver.slash(LEAD, channel.id, "resume")
    assert stack.ephemeral_texts(LEAD)[-1] == "#1 is not paused."
    stack.driver.slash(LEAD, channel.id, "pause customer on holiday")
    stack.driver.slash(LEAD, channel.id, "pause again")
    assert stack.ephemeral_texts(LEAD)[-1] == (
        f"#1 is already paused by <@{LEAD}>; `/incident resume` restarts its clocks."
    )


@pytest.mark.playbook(
    {
        "owner: customer_comms, after: 24h, on_resolve: keep,": (
            "owner: customer_comms, after: 9h, on_resolve: keep, clock: business,"
        )
    }
)
def test_a_business_hours_deadline_skips_the_night_and_the_weekend(stack: Stack) -> None:
    stack.clock.set(datetime(2026, 11, 27, 8, 0, tzinfo=UTC))  # Friday 16:00 in Shanghai
    channel = stack.open("complaint sev3 Card declined abroad")
    listing = stack.driver.slash(REPORTER, channel.id, "deadlines").text
    # two working hours on Friday, seven on Monday: due Monday 16:00
    assert (
        "*First response to the customer* (`first_response`) — <@ULEAD000001> (Customer comms) — due 11-30 16:00 UTC+8"
        in listing
    )


def test_reminders_falling_due_together_reach_a_person_as_one_digest(stack: Stack) -> None:
    stack.open("complaint sev3 Fee charged twice")
    stack.open("complaint sev3 Card declined abroad")
    stack.advance(hours=12)  # both first-response reminders go to the lead (customer comms has no owner)
    (message,) = [m for m in stack.sandbox.dm_messages(LEAD) if "need attention" in m.text]
    assert message.text.startswith(":alarm_clock: 2 of your deadlines need attention:")
    buttons = [e for b in message.blocks for e in b.get("elements", []) if e.get("text", {}).get("text") == "Mark done"]
    assert len(buttons) == 2
    stack.driver.click(LEAD, message.channel, message.ts, buttons[1]["action_id"], buttons[1]["value"])
    with stack.bot.services.db() as s:
        from sqlalchemy import select

        states = {(d.incident_id, d.key): d.state for d in s.scalars(select(Deadline))}
    assert states[(2, "first_response")] == "met" and states[(1, "first_response")] == "pending"


def test_the_timer_sweeps_by_itself_once_started(stack: Stack) -> None:
    """`incident-desk run` starts APScheduler around the sweeper: due work goes out without a test's sweep."""
    import time as wall

    stack.open("complaint sev3 Fee charged twice")
    stack.clock.advance(timedelta(hours=12))  # the reminder is due now; nobody calls sweep()
    scheduler = stack.bot.scheduler  # the app's own timer, as `incident-desk run` starts it
    scheduler.start()
    try:
        deadline = wall.monotonic() + 10
        while wall.monotonic() < deadline and not stack.dm_texts(LEAD):
            wall.sleep(0.02)  # waiting for the timer's thread, bounded
    finally:
        scheduler.stop()  # while a tick may still be running and planning its next wake-up
    assert not scheduler.aps.running
    assert stack.dm_texts(LEAD)[0].startswith(":alarm_clock: Reminder: *First response to the customer*")


NO_LEAD = "aliases: [commander, ic, 组长, 指挥长]\n    default_owners: []"


LEADERSHIP_LEVEL = "leadership: true, ack_timeout: 1h"


@pytest.mark.playbook({NO_LEAD: NO_LEAD})  # undo the test playbook's default lead
def test_the_leadership_level_pages_the_surge_plans_leadership_group(stack: Stack) -> None:
    """The shipped last level names no users: it pages the group that decides on a surge (admins at least)."""
    channel = stack.open("outage sev1 Core banking down")
    stack.bot.sweeper.sweep()
    texts = stack.texts(channel.id)
    assert texts[-1] == f":pager: Paging <@{ADMIN}> (*Leadership group*) for: SEV1 service outage opened"
    assert not any("Nobody" in t for t in texts)
    assert any(t.startswith(":rotating_light: *Page for #1*") for t in stack.dm_texts(ADMIN))


@pytest.mark.playbook({NO_LEAD: NO_LEAD, LEADERSHIP_LEVEL: "users: [], ack_timeout: 1h"})  # nobody at all
def test_a_severe_opening_with_nobody_to_page_says_so_and_what_to_do(stack: Stack) -> None:
    channel = stack.open("outage sev1 Core banking down")
    stack.bot.sweeper.sweep()
    assert stack.texts(channel.id)[-1] == (
        ":sos: Nobody could be paged for *SEV1 service outage opened*: no one holds the roles the escalation levels "
        "name. Take the lead with `/incident assign lead me`, and fill in the playbook's `escalation.levels`."
    )
