"""The whole surge plan (seed 004) end to end, through the real surfaces only, over simulated hours on the
injected clock: complaints in through the intake API cross the warning line, the proposal reaches the
leadership group, a non-leader's Activate is refused and a leader's opens the surge, the departments get their
duties and report (one on time, one late: reminded, then paged), the diversion notice is approved by someone
other than its drafter and published, volume falls, End is suggested, refused to a non-leader and done by a
leader, and the summary's figures are checked against the store (not against what the test meant to send).

The parts are tested apart in tests/test_surge_watch.py (the line and the decision), tests/test_surge_run.py
(the running plan, from a faked activation) and tests/test_offline.py (the demo); this test checks they join.
The line is 10 complaints in 10 minutes (the shipped one is 100); the shipped intake routing stays on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.clock import FixedClock, utc
from bot.deadlines.service import humanize
from bot.sandbox.driver import click_button
from bot.sandbox.server import SlackSandbox
from bot.slack.web import HttpServer, make_wsgi
from bot.surge import volume
from bot.surge.watch import SurgeWatch
from store import queries
from store import surge_runs as runs
from store.db import make_engine, make_session_factory
from store.models import Complaint, Deadline, Incident, Notice, SurgeProposal, TimelineEvent
from tests.conftest import (
    ADMIN,
    COMMS,
    LEAD,
    LEGAL,
    OUTSIDER,
    REPORTER,
    TECH,
    Stack,
    running_stack,
    seed_sqlite,
    test_playbook,
)
from tests.test_notices import get, preview
from tests.test_surge_run import uploads, with_button
from tests.test_surge_watch import CARD, TOKEN, body, buttons, leadership, post, proposals, record

LINE, WINDOW = 10, timedelta(minutes=10)
LEAD_ROLE = "aliases: [commander, ic, 组长, 指挥长]\n    default_owners: []"
EDITS = {
    "  leaders: []": f"  leaders: [{LEAD}]",  # the leadership group: LEAD, and the admin (admins always count)
    "    - {count: 100, window: 10m}": "    - {count: 10, window: 10m}",
    LEAD_ROLE: LEAD_ROLE,  # no default lead: the activating leader leads the surge
    "  chart_every: 5m": "  chart_every: 1h",  # the chart is tested in test_surge_run.py; here it only costs time
}
MASKED = "客户卡号****0123被重复扣款"  # bot/core/text.py mask_identifiers


@pytest.fixture
def surge(sandbox: SlackSandbox, general: str, sqlite_url: str, clock: FixedClock) -> Iterator[tuple[Stack, str]]:
    """The running bot with the intake API on (its own front, with the token)."""
    with running_stack(sandbox, test_playbook(EDITS), sqlite_url, clock) as stack:
        server = HttpServer(make_wsgi(stack.bot, intake_token=TOKEN)).start()
        try:
            yield stack, server.url
        finally:
            stack.bot.services.surge.wait_idle()
            server.stop()


def until(stack: Stack, when: datetime) -> None:
    """Simulated time up to `when`, swept at every moment the scheduler's timer would wake and at `when` (the
    timer's interval sweeps in between find nothing new: no complaint arrives there)."""
    stack.advance(seconds=(when - stack.clock.now()).total_seconds())


def acks(stack: Stack, user: str) -> list[str]:
    """The pages (DMs with an Acknowledge button) a person got."""
    return [m.text for m in stack.sandbox.dm_messages(user) if with_button([m], "Acknowledge")]


def test_a_surge_from_the_intake_api_to_the_summary(surge: tuple[Stack, str]) -> None:
    stack, url = surge
    sandbox, driver = stack.sandbox, stack.driver
    t0 = stack.clock.now()  # 10:00 in Shanghai

    # ---- warning: an ordinary morning, a ramp just under the line, and the complaint that reaches it ----
    record(stack, 1, ago=timedelta(minutes=70))  # 08:50: outside the hour before the crossing
    for minutes in (50, 40, 30, 20):
        record(stack, 1, category="cards", channel="online_chat", ago=timedelta(minutes=minutes))
    for k in range(9):  # 09:51 .. 09:59: nine in the window, one short of the line
        record(stack, 1, channel=("phone", "app")[k % 2], ago=timedelta(minutes=9 - k))
    assert proposals(stack) == []
    assert sandbox.channel_by_name("incident-leadership") is None
    crossing = body(stack)
    answer = post(url, crossing)
    assert answer == 201

    # ---- the proposal, with its figures, in the leadership channel; the group paged ----
    [proposal] = proposals(stack)
    assert (proposal.state, proposal.count, proposal.line_count) == ("proposed", LINE, LINE)
    assert utc(proposal.crossed_at) == t0
    room = leadership(stack)
    [message] = sandbox.channel_messages(room.id)
    assert f"{LINE} complaints in 10m (warning line {LINE})" in message.text, message.text
    assert "By category: payments 10" in message.text
    assert "By contact channel: phone 6, mobile app 4" in message.text
    assert set(buttons(message)) == {"Activate", "Dismiss"}
    assert any("leadership group decides" in t for t in stack.dm_texts(LEAD))
    assert any("leadership group decides" in t for t in stack.dm_texts(ADMIN))

    # ---- a non-leader's Activate is refused, privately; three minutes later the admin (a leader) activates ----
    reply = click_button(driver, OUTSIDER, room.id, message.ts, "Activate")
    assert reply.status == 200, reply.body
    assert "Only the leadership group" in stack.ephemeral_texts(OUTSIDER)[-1]
    assert proposals(stack)[0].state == "proposed"
    stack.advance(minutes=3)
    click_button(driver, ADMIN, room.id, message.ts, "Activate")
    [proposal] = proposals(stack)
    assert (proposal.state, proposal.decided_by) == ("activated", ADMIN)
    number = proposal.incident_id
    assert number is not None
    assert any(f"Surge plan activated: #{number}" in t for t in stack.ephemeral_texts(ADMIN))
    with Session(stack.engine) as s:
        incident = s.get(Incident, number)
        assert incident is not None
        assert (incident.kind, incident.severity) == ("surge", "sev2")
        # 8 are in the window at 10:03, but the title keeps the crossing's count, not one under the line
        assert incident.title == f"Customer complaint surge: {LINE} in 10m (warning line {LINE})"
        assert {r.role: r.user_id for r in incident.roles}["lead"] == ADMIN  # led by the one who activated it
    channel = stack.incident_channel(number).id

    # the departments' owners (tech support's default owner is TECH; HR is left to nobody)
    stack.join(channel, COMMS, REPORTER, LEGAL, LEAD)
    for role, user in (("customer_comms", COMMS), ("marketing", REPORTER), ("pr", LEGAL)):
        reply = driver.slash(ADMIN, channel, f"assign {role} <@{user}>")
        assert reply.status == 200, reply.body

    # ---- the next sweep starts the plan: duties, the diversion notice drafted by the lead, the chart ----
    stack.advance(seconds=1)
    duties = next(t for t in stack.texts(channel) if t.startswith("*Surge plan activated"))
    assert f"• *Leadership group* (<@{ADMIN}>)" in duties
    assert f"• *Customer service* (<@{COMMS}>): Activation: add agents" in duties
    assert f"• *Tech support* (<@{TECH}>)" in duties
    assert f"• *Marketing* (<@{REPORTER}>): Activation: publish the diversion notice" in duties
    assert "• *HR* (nobody yet: `/incident assign hr @someone`)" in duties
    assert len(uploads(stack)) == 1

    # ---- the diversion notice: its drafter (an admin, who could approve others') cannot approve it; PR does,
    # marketing publishes it, and the status page shows it ----
    draft = preview(stack, channel)
    assert draft.blocks[0]["text"]["text"] == f"Customer notice for #{number}: diversion"
    click_button(driver, ADMIN, channel, draft.ts, "Approve")
    assert stack.ephemeral_texts(ADMIN)[-1].startswith("You wrote this notice, so someone else approves it")
    click_button(driver, LEGAL, channel, preview(stack, channel).ts, "Approve")
    assert "You approved the *diversion* notice" in stack.ephemeral_texts(LEGAL)[-1]
    click_button(driver, REPORTER, channel, preview(stack, channel).ts, "Publish")
    assert stack.texts(channel)[-1].startswith(f":loudspeaker: <@{REPORTER}> published the *diversion* notice")
    status = json.loads(get(stack, "/status.json"))
    [shown] = [i for i in status["incidents"] if i["number"] == number]
    assert [n["stage"] for n in shown["notices"]] == ["diversion"]
    assert "建议您优先通过手机银行" in get(stack, "/status?lang=zh-CN").decode()

    # ---- the surge goes on for ten minutes, then falls to a trickle ----
    until(stack, t0 + timedelta(minutes=5))
    for k in range(8):  # 10:01:30 .. 10:05:00
        record(stack, 1, channel="phone", ago=timedelta(seconds=30 * (7 - k)))
    until(stack, t0 + timedelta(minutes=10))
    for k in range(6):  # 10:06 .. 10:10 (the window ending at 10:10 holds 14)
        record(stack, 1, channel="app", ago=timedelta(seconds=48 * (5 - k)))
    assert len(proposals(stack)) == 1, "no second proposal while the surge is being worked"

    # ---- customer service reports on time (its identifiers masked); tech support too; marketing does not ----
    until(stack, t0 + timedelta(minutes=25))
    report = f"已增加20名客服坐席，客户卡号{CARD}被重复扣款已优先处理"
    assert driver.slash(COMMS, channel, f"update {report}").status == 200
    until(stack, t0 + timedelta(minutes=30))
    record(stack, 1)  # the trickle after the surge
    until(stack, t0 + timedelta(minutes=40))  # the 50% reminder of marketing's report (due 11:03) went at 10:33
    reminded = [t for t in stack.dm_texts(REPORTER) if "Marketing progress report" in t]
    assert reminded and not acks(stack, REPORTER), stack.dm_texts(REPORTER)
    assert not with_button(sandbox.channel_messages(channel), "End the surge plan"), "the plan ran < 30 min quiet"
    record(stack, 1)
    assert driver.slash(TECH, channel, "update Capacity doubled on the call-centre queue").status == 200

    # ---- quiet for end_after (30 min since the last window at the line, 10:10): End suggested, once each ----
    until(stack, t0 + timedelta(minutes=50))
    suggested = with_button(sandbox.channel_messages(channel), "End the surge plan")
    assert len(suggested) == 1 and "stayed below every warning line for 30 min" in suggested[0].text
    [in_room] = with_button(sandbox.channel_messages(room.id), "End the surge plan")

    # ---- marketing's report is missed at 11:03: its owner is paged (escalation), customer service is not ----
    until(stack, t0 + timedelta(minutes=60))
    record(stack, 1)
    until(stack, t0 + timedelta(minutes=65))
    pages = acks(stack, REPORTER)
    assert pages and "Marketing progress report" in pages[-1], stack.dm_texts(REPORTER)
    assert not acks(stack, COMMS) and not acks(stack, TECH)
    assert len(with_button(sandbox.channel_messages(channel), "End the surge plan")) == 1

    # ---- End: refused to a department head (not of the leadership group), done by a named leader ----
    click_button(driver, TECH, channel, suggested[0].ts, "End the surge plan")
    assert stack.ephemeral_texts(TECH)[-1].startswith("Only the leadership group (预案领导小组) can end")
    with Session(stack.engine) as s:
        assert s.get(Incident, number).status == "investigating"  # type: ignore[union-attr]
    ended_at = stack.clock.now()
    click_button(driver, LEAD, room.id, in_room.ts, "End the surge plan")
    assert "has ended" in stack.ephemeral_texts(LEAD)[-1]
    summary = next(t for t in stack.texts(channel) if t.startswith(f"*Summary of the surge plan #{number}*"))
    assert summary in stack.texts(room.id)

    # ---- the summary against the store ----
    local = stack.bot.services.renderer.local_time
    with Session(stack.engine) as s:
        incident = s.get(Incident, number)
        assert incident is not None and incident.status == "resolved"
        received = sorted(utc(at) for at in s.scalars(select(Complaint.received_at)))
        [row] = proposals(stack)
        updates = list(
            s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == number, TimelineEvent.event == "update"))
        )
        deadlines = list(s.scalars(select(Deadline).where(Deadline.incident_id == number)))
        notices = list(s.scalars(select(Notice).where(Notice.incident_id == number, Notice.state == "published")))
        published = list(
            s.scalars(
                select(TimelineEvent).where(
                    TimelineEvent.incident_id == number, TimelineEvent.event == "notice_published"
                )
            )
        )
    assert len(received) == 1 + 4 + 9 + 1 + 8 + 6 + 3  # every complaint sent is recorded once
    assert f"Ended at {local(ended_at, '%m-%d %H:%M')} by <@{LEAD}>" in summary

    # time to activate, from the proposal row
    crossed, proposed, decided = utc(row.crossed_at), utc(row.proposed_at), utc(row.decided_at)  # type: ignore[arg-type]
    assert decided - crossed == timedelta(minutes=3)
    assert (
        f"• Warning line crossed at {local(crossed, '%H:%M:%S')}; proposed at {local(proposed, '%H:%M:%S')}; "
        f"activated at {local(decided, '%H:%M:%S')} by <@{ADMIN}>." in summary
    ), summary
    assert f"• {humanize(decided - crossed)} from the crossing to the activation" in summary

    # volume before, during and after, counted from the complaints table
    def in_window(t: datetime) -> int:  # the line's count in the window ending at t
        return sum(1 for u in received if t - WINDOW < u <= t)

    calm = max(t for t in received if t >= crossed and in_window(t) >= LINE)
    assert local(calm, "%H:%M") == "10:10"
    before = sum(1 for t in received if crossed - timedelta(hours=1) <= t < crossed)
    during = sum(1 for t in received if crossed <= t <= calm)
    after = sum(1 for t in received if calm < t <= ended_at)
    assert (before, during, after) == (13, 15, 3)
    assert f"• Before (the hour before the crossing): {before}" in summary
    assert f"• During (from the crossing until volume last reached a warning line at 10:10): {during}" in summary
    assert f"• After (from then until the end): {after}" in summary
    peak = max(in_window(t) for t in received if crossed <= t <= ended_at)
    assert f"• Peak: {peak} in {humanize(WINDOW)} (warning line {LINE})" in summary

    # the departments' reports and lateness, from the timeline and the deadlines
    def missed(key: str) -> int:
        return sum(1 for d in deadlines if d.key == key and d.state == "missed")

    by = {e.actor_id: e for e in updates}
    assert set(by) == {COMMS, TECH}
    assert (missed("report_customer_service"), missed("report_tech_support")) == (0, 0)
    assert (missed("report_marketing"), missed("report_hr")) == (1, 1)
    assert f"• *Customer service* (<@{COMMS}>): 1 report, 0 late" in summary
    assert f"`{local(by[COMMS].at, '%H:%M')}` 已增加20名客服坐席，{MASKED}" in summary
    assert f"• *Tech support* (<@{TECH}>): 1 report, 0 late" in summary
    assert "Capacity doubled on the call-centre queue" in summary
    assert f"• *Marketing* (<@{REPORTER}>): 0 reports, 1 late" in summary
    assert "• *HR* (nobody): 0 reports, 1 late" in summary

    # the notices published, from the notices table and what their publication recorded
    [notice] = notices
    [event] = published
    assert (notice.stage, notice.published_by, notice.approved_by, notice.created_by) == (
        "diversion",
        REPORTER,
        LEGAL,
        ADMIN,
    )
    assert event.data["delivered"] and "status_page" in event.data["delivered"]
    assert f"• diversion at {local(notice.published_at, '%H:%M')} by <@{REPORTER}>, delivered to Status page" in summary
    assert "*Lessons learned*" in summary

    # ---- no raw card number reached Slack anywhere (the planted-identifier check sees every call) ----
    assert CARD not in summary and all(CARD not in m.text for m in sandbox.messages)
    assert sandbox.leaks.violations == []


def test_the_watch_and_the_summary_count_a_window_alike(sqlite_url: str, clock: FixedClock) -> None:
    """A complaint received exactly one window before now is out of the window for the summary, the chart and the
    End suggestion (bot/surge/volume.py: (now − window, now]); the watch that proposes must not count it either,
    or a proposal says "10 complaints in 10m" of a stretch whose summary says the line was never reached."""
    seed_sqlite(sqlite_url)
    engine = make_engine(sqlite_url)
    db = make_session_factory(engine)
    now = clock.now()
    try:
        with db.begin() as s:
            for i, at in enumerate([now - WINDOW] + [now] * (LINE - 1)):
                queries.claim_complaint(s, {**complaint_row(i), "received_at": at, "created_at": now})
        watch = SurgeWatch(test_playbook(EDITS), db, clock, publish=lambda _: None)
        with db() as s:
            [line] = watch.warning_lines
            counted = watch.line_volume(s, line, now)
            times = [at for at, _, _ in runs.list_complaint_arrivals(s, now - timedelta(hours=1), now + WINDOW)]
            by_channel = watch.breakdown(s, SurgeProposal(crossed_at=now, line_window_seconds=600))
        assert counted == volume.count_at([utc(t) for t in times], now, WINDOW) == LINE - 1
        assert by_channel["contact_channel"] == {"phone": LINE - 1}
        assert watch.observe(now, thorough=True) == []  # one short of the line: no proposal
    finally:
        engine.dispose()


def complaint_row(i: int) -> dict[str, object]:
    return {
        "external_id": f"EDGE-{i}",
        "fingerprint": f"{i:064d}",
        "contact_channel": "phone",
        "category": "payments",
        "product": "借记卡",
        "summary": "热线打不通",
        "customer_ref": f"cust-{i}",
        "severity": None,
        "amount": None,
    }
