"""The running surge plan (seed 004) over simulated hours: departments and their duties, a late department
reminded then paged, the diversion notice approved and published, the live chart refreshed on the clock,
End suggested, refused to a non-leader and done by a leader, and the summary checked against the record.

The activation itself (warning line, proposal, Activate) is another part's; here the surge incident is opened
with `/incident open surge …` and the `surge_activated` event (the contract between the two parts) is written
into the record as the activation writes it."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from bot.deadlines.service import humanize
from bot.sandbox.driver import click_button
from bot.sandbox.server import Message
from bot.surge import volume
from store import queries
from tests.conftest import ADMIN, COMMS, LEAD, LEGAL, OUTSIDER, REPORTER, TECH, Stack, test_playbook
from tests.test_notices import get, preview

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai: the stack's clock starts here
CROSSED = T0 + timedelta(minutes=5)
PROPOSED = CROSSED + timedelta(seconds=2)
ACTIVATED = T0 + timedelta(minutes=7)
CARD = "6222021234567890123"


def arrivals() -> list[datetime]:
    """An hour of ordinary traffic (one complaint every 2 minutes), a surge of 20 a minute for 20 minutes
    (over the shipped line of 100 in 10 minutes), then a tail of 3 a minute for 20 minutes, then calm."""
    base = [T0 - timedelta(hours=1) + timedelta(minutes=2 * i) for i in range(30)]
    surge = [T0 + timedelta(seconds=3 * i) for i in range(400)]
    tail = [T0 + timedelta(minutes=20) + timedelta(seconds=20 * i) for i in range(60)]
    return base + surge + tail


def receive(stack: Stack, times: list[datetime]) -> None:
    """The complaint system's complaints, written as the intake API records them (the intake is tested apart)."""
    with stack.bot.services.db.begin() as s:
        for i, at in enumerate(times):
            queries.claim_complaint(
                s,
                {
                    "external_id": f"CS-{i}",
                    "fingerprint": hashlib.sha256(str(i).encode()).hexdigest(),
                    "received_at": at,
                    "contact_channel": "phone",
                    "category": "service",
                    "product": "debit card",
                    "summary": "热线打不通",
                    "customer_ref": f"cust-{i}",
                    "severity": None,
                    "amount": None,
                    "created_at": at,
                },
            )


def uploads(stack: Stack) -> list[dict[str, object]]:
    return stack.sandbox.calls_to("files.completeUploadExternal")


def with_button(messages: list[Message], label: str) -> list[Message]:
    return [
        m
        for m in messages
        if any(
            e.get("type") == "button" and e["text"]["text"] == label for b in m.blocks for e in b.get("elements", [])
        )
    ]


def test_the_shipped_surge_kind_has_the_seed_departments_and_one_cadence_each() -> None:
    playbook = test_playbook()
    surge = playbook.kinds["surge"]
    assert set(surge.departments) == {"lead", "customer_comms", "tech_support", "marketing", "hr"}
    assert surge.departments["lead"].names["zh-CN"] == "预案领导小组"
    assert surge.departments["customer_comms"].names["zh-CN"] == "客户服务部"
    assert {d.owner for d in surge.deadlines if d.cadence} == {"customer_comms", "tech_support", "marketing", "hr"}
    assert playbook.role_for("市场营销部") == "marketing" and playbook.role_for("人事") == "hr"


def test_volume_peaks_and_quiet_spells() -> None:
    line = test_playbook().surge.warning_lines[0]
    times = arrivals()
    marks = [volume.Arrival(t, "service", "phone") for t in times]
    # the surge reaches 100 in 10 minutes; the tail never does
    assert volume.peak(times, T0, T0 + timedelta(minutes=20), line.window) == 200
    assert volume.peak(times, T0 + timedelta(minutes=27), T0 + timedelta(hours=1), line.window) < 100
    assert not volume.quiet([line], marks, T0 + timedelta(minutes=50), timedelta(minutes=30))
    assert volume.quiet([line], marks, T0 + timedelta(minutes=58), timedelta(minutes=30))
    assert sum(volume.buckets(times, T0, T0 + timedelta(minutes=5), timedelta(minutes=1))) == 100


@pytest.mark.playbook({"  leaders: []": f"  leaders: [{LEAD}]"})
def test_a_surge_runs_its_plan_and_ends_with_a_summary(stack: Stack) -> None:
    sandbox = stack.sandbox
    leadership = sandbox.add_channel("incident-leadership", [sandbox.bot_user_id, LEAD, ADMIN])
    receive(stack, arrivals())

    # Activated at 10:07 by the leader (the proposal's part, as its contract records it)
    stack.clock.set(ACTIVATED)
    channel = stack.open("surge sev2 Complaint volume over the warning line", user=LEAD).id
    with stack.bot.services.db.begin() as s:
        queries.add_timeline_event(
            s,
            1,
            at=ACTIVATED,
            event="surge_activated",
            actor_id=LEAD,
            text="",
            data={
                "proposal_id": 1,
                "crossed_at": CROSSED.isoformat(),
                "proposed_at": PROPOSED.isoformat(),
                "activated_by": LEAD,
                "count": 100,
                "line_count": 100,
                "line_window_seconds": 600,
                "category": None,
                "contact_channel": None,
            },
        )
    stack.join(channel, COMMS, REPORTER, LEGAL)
    for role, user in (("customer_comms", COMMS), ("marketing", REPORTER), ("pr", LEGAL)):
        reply = stack.driver.slash(LEAD, channel, f"assign {role} <@{user}>")
        assert reply.status == 200, reply.body

    # The plan starts at the next sweep: duties, the diversion notice for approval, the chart
    stack.advance(seconds=1)
    duties = next(t for t in stack.texts(channel) if t.startswith("*Surge plan activated"))
    assert f"• *Leadership group* (<@{LEAD}>): Coordinates every department" in duties
    assert f"• *Customer service* (<@{COMMS}>): Activation: add agents" in duties
    assert f"• *Tech support* (<@{TECH}>): Activation: keep the systems stable" in duties
    assert f"• *Marketing* (<@{REPORTER}>): Activation: publish the diversion notice" in duties
    assert "• *HR* (nobody yet: `/incident assign hr @someone`): Activation: move staff" in duties
    draft = preview(stack, channel)
    assert draft.blocks[0]["text"]["text"] == "Customer notice for #1: diversion"
    assert any("please consider other channels" in b.get("text", {}).get("text", "") for b in draft.blocks)
    assert len(uploads(stack)) == 1
    assert "all complaints: " in str(uploads(stack)[0]["initial_comment"])
    stack.advance(seconds=1)
    assert len(uploads(stack)) == 1, "the plan starts once and the chart waits for chart_every"

    # The drafter (the activating lead) cannot approve; PR (not the drafter) approves, a role owner publishes
    click_button(stack.driver, LEAD, channel, draft.ts, "Approve")
    assert stack.ephemeral_texts(LEAD)[-1].startswith(f"Only PR (<@{LEGAL}>) or a playbook admin can approve")
    click_button(stack.driver, LEGAL, channel, preview(stack, channel).ts, "Approve")
    click_button(stack.driver, COMMS, channel, preview(stack, channel).ts, "Publish")
    assert stack.texts(channel)[-1].startswith(f":loudspeaker: <@{COMMS}> published the *diversion* notice")
    status = json.loads(get(stack, "/status.json"))
    assert [n["stage"] for n in status["incidents"][0]["notices"]] == ["diversion"]
    page = get(stack, "/status?lang=zh-CN").decode()
    assert "建议您优先通过手机银行" in page

    # Simulated hours, five minutes at a time: departments report (one of them late), the chart is refreshed
    def until(when: datetime) -> None:
        while stack.clock.now() < when:
            stack.advance(minutes=min(5, (when - stack.clock.now()).total_seconds() / 60))

    until(T0 + timedelta(minutes=30))
    stack.driver.slash(COMMS, channel, f"update 已增加20名客服坐席，客户卡号{CARD}被重复扣款已优先处理")
    until(T0 + timedelta(minutes=40))
    stack.driver.slash(TECH, channel, "update Capacity doubled on the call-centre queue")
    until(T0 + timedelta(minutes=45))
    stack.driver.slash(LEAD, channel, "update HR moved 10 people from the branches")  # HR has nobody: the lead
    until(T0 + timedelta(minutes=47))
    assert not with_button(sandbox.channel_messages(channel), "End the surge plan"), "volume was over the line"
    reminded = [t for t in stack.dm_texts(REPORTER) if "Marketing progress report" in t]
    assert reminded, stack.dm_texts(REPORTER)
    assert not any("Marketing progress report" in t for t in stack.dm_texts(COMMS))
    charts = len(uploads(stack))
    assert charts >= 8, charts  # every 5 minutes since 10:07

    until(T0 + timedelta(minutes=70))  # marketing's report was due at 11:07: missed, so its owner is paged
    pages = [m for m in sandbox.dm_messages(REPORTER) if with_button([m], "Acknowledge")]
    assert pages and "Marketing progress report" in pages[-1].text, stack.dm_texts(REPORTER)
    assert not [m for m in sandbox.dm_messages(COMMS) if with_button([m], "Acknowledge")]

    # Quiet since about 10:26 for 30 minutes: End suggested in both channels, once
    suggested = with_button(sandbox.channel_messages(channel), "End the surge plan")
    assert len(suggested) == 1 and "stayed below every warning line for 30 min" in suggested[0].text
    in_leadership = with_button(sandbox.channel_messages(leadership), "End the surge plan")
    assert len(in_leadership) == 1

    click_button(stack.driver, OUTSIDER, leadership, in_leadership[0].ts, "End the surge plan")
    assert stack.ephemeral_texts(OUTSIDER)[-1].startswith("Only the leadership group (预案领导小组) can end")
    with stack.bot.services.db() as s:
        assert queries.get_incident(s, 1).status == "investigating"  # type: ignore[union-attr]
    ended_at = stack.clock.now()
    click_button(stack.driver, LEAD, leadership, in_leadership[0].ts, "End the surge plan")
    assert "has ended" in stack.ephemeral_texts(LEAD)[-1]
    with stack.bot.services.db() as s:
        incident = queries.get_incident(s, 1)
        assert incident is not None and incident.status == "resolved"
    complaints = arrivals()
    charts = len(uploads(stack))

    # The summary, checked against the record
    summary = next(t for t in stack.texts(channel) if t.startswith("*Summary of the surge plan #1*"))
    assert summary in stack.texts(leadership)
    assert f"by <@{LEAD}>" in summary
    assert "Warning line crossed at 10:05:00; proposed at 10:05:02; activated at 10:07:00" in summary
    took, waited = humanize(ACTIVATED - CROSSED), humanize(ACTIVATED - PROPOSED)
    assert f"• {took} from the crossing to the activation ({waited} of it waiting for the decision)" in summary
    before = sum(1 for t in complaints if CROSSED - timedelta(hours=1) <= t < CROSSED)
    assert f"• Before (the hour before the crossing): {before}" in summary
    during_and_after = sum(1 for t in complaints if CROSSED <= t <= ended_at)
    periods = [line for line in summary.splitlines() if line.startswith(("• During", "• After"))]
    counted = [int(line.rsplit(": ", 1)[1]) for line in periods]
    assert sum(counted) == during_and_after and len(counted) == 2
    peak = max(sum(1 for u in complaints if t - timedelta(minutes=10) < u <= t) for t in complaints if t >= CROSSED)
    assert f"• Peak: {peak} in 10m (warning line 100)" in summary
    assert f"• *Customer service* (<@{COMMS}>): 1 report, 0 late" in summary
    assert "6222 **** **** ***0123" in summary or "****" in summary.split("Customer service", 1)[1]
    assert CARD not in summary
    assert f"• *Tech support* (<@{TECH}>): 1 report, 0 late" in summary
    assert f"• *Marketing* (<@{REPORTER}>): 0 reports, 1 late" in summary
    assert "• *HR* (nobody): 1 report, 0 late" in summary  # the lead reported for it
    assert summary.index("HR moved 10 people") > summary.index("*HR*")
    assert f"• diversion at 10:07 by <@{COMMS}>, delivered to Status page" in summary
    assert "*Lessons learned*" in summary and "Was the warning line right" in summary

    # Nothing more once it has ended: no chart, no second summary, End refused
    stack.advance(minutes=20)
    assert len(uploads(stack)) == charts
    click_button(stack.driver, LEAD, leadership, in_leadership[0].ts, "End the surge plan")
    assert "has ended already" in stack.ephemeral_texts(LEAD)[-1]
    assert sum(t.startswith("*Summary of the surge plan") for t in stack.texts(channel)) == 1


def test_the_duties_speak_the_shipped_playbook_s_chinese() -> None:
    """The shipped playbook speaks zh-CN in channels: each department by its seed name, with its seed duties."""
    from bot.core.i18n import in_channel_language
    from bot.surge.plan import SurgePlan
    from store.models import Incident, RoleAssignment
    from tests.conftest import SHIPPED_LOCALE

    playbook = test_playbook({SHIPPED_LOCALE: SHIPPED_LOCALE})
    plan = SurgePlan(
        playbook=playbook,
        **dict.fromkeys(  # only the playbook is used to write the duties
            ("db", "slack", "clock", "renderer", "outbox", "leadership", "lifecycle", "notices")
        ),
    )  # type: ignore[arg-type]
    incident = Incident(kind="surge", severity="sev2", roles=[RoleAssignment(role="lead", user_id=LEAD)])
    with in_channel_language(playbook):
        text = plan.duties_text(incident)
    assert text.startswith("*分流预案已启动：各部门职责*")
    assert f"• *预案领导小组*（<@{LEAD}>）：统筹协调各部门" in text
    assert "• *客户服务部*（暂无负责人：`/incident assign customer_comms @某人`）：启动：增加客服人员" in text
    assert "各部门每1小时在本频道用 `/incident update <内容>` 报告进展" in text
