"""Drills (issue 13): a scenario played on its own clock, scored, and kept away from customers and figures."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.core.config import ConfigError, load_playbook_text
from bot.core.i18n import use_locale
from bot.sandbox.driver import click_button
from bot.sandbox.server import Message
from store.models import Drill, Incident
from tests.conftest import ADMIN, LEAD, LEGAL, OUTSIDER, REPORTER, ROOT, TECH, Stack, playbook_text
from tests.notice_targets import SmtpServer, WebhookReceiver, wire_targets

CARD = "6222021234567890123"


@pytest.fixture
def targets(monkeypatch: pytest.MonkeyPatch, stack: Stack) -> Iterator[tuple[WebhookReceiver, SmtpServer]]:
    """Every customer target wired to a real receiver (as tests/test_notices.py does)."""
    hooks, smtp = WebhookReceiver(), SmtpServer()
    wire_targets(monkeypatch, hooks, "social", "hotline", "complaints", smtp=smtp)
    stack.sandbox.add_channel("announcements", [stack.sandbox.bot_user_id, LEAD])
    try:
        yield hooks, smtp
    finally:
        hooks.close()
        smtp.close()


def preview(stack: Stack, channel: str) -> Message:
    return next(
        m
        for m in reversed(stack.sandbox.channel_messages(channel))
        if m.blocks and any(b.get("type") == "header" for b in m.blocks) and "Customer notice" in str(m.blocks)
    )


# the leadership group has a member: a real incident's chain reaches them, a drill's never does
@pytest.mark.playbook({"leadership: true, ack_timeout: 1h}": f"leadership: true, users: [{ADMIN}], ack_timeout: 1h}}"})
def test_a_payment_outage_drill_at_speed_60_is_scored_and_reaches_no_customer(
    stack: Stack, targets: tuple[WebhookReceiver, SmtpServer]
) -> None:
    hooks, smtp = targets
    general = stack.sandbox.channel_by_name("general")
    assert general is not None
    kpis_before = stack.bot.services.reports.kpi_text()

    reply = stack.driver.slash(LEAD, general.id, "drill payment-outage")
    assert reply.status == 200
    channel = stack.incident_channel(1)
    assert channel.name.startswith("drill-inc-20261124-1-")
    with stack.bot.services.db() as s:
        incident = s.get(Incident, 1)
        drill = s.get(Drill, 1)
        assert incident is not None and incident.is_drill and drill is not None and drill.speed == 60
    texts = stack.texts(channel.id)
    card = stack.sandbox.channel_messages(channel.id)[0]
    assert card.blocks[0]["text"]["text"].startswith("[DRILL] #1 ")
    assert all(t.startswith("[DRILL]") for t in texts), texts
    assert any(":rotating_light: *Drill: Payment outage*" in t and "60× real time" in t for t in texts)

    # plan time runs 60× real time: 5 real seconds are 5 minutes of the plan; the cues come on that clock
    stack.advance(seconds=7)
    cues = [t for t in stack.texts(channel.id) if ":mega:" in t]
    assert cues[0].startswith("[DRILL] :mega: *Alert* (T+0m): Monitoring alert")
    assert cues[1].startswith("[DRILL] :mega: *Complaint* (T+5m): Complaint: a customer's QR payment")
    assert CARD not in cues[1] and "card ****0123 was charged twice" in cues[1]  # masked

    stack.join(channel.id, TECH, LEGAL)
    stack.driver.slash(TECH, channel.id, "assign tech me")  # T+7m: on time (10m)
    stack.driver.slash(LEAD, channel.id, f"assign pr <@{LEGAL}>")
    stack.advance(seconds=28)  # T+35m
    stack.driver.slash(LEAD, channel.id, "notice initial")  # late (30m)
    stack.advance(seconds=5)  # T+40m
    click_button(stack.driver, LEGAL, channel.id, preview(stack, channel.id).ts, "Approve")  # on time (45m)
    click_button(stack.driver, LEAD, channel.id, preview(stack, channel.id).ts, "Publish")  # answered in time (1h)
    published = stack.texts(channel.id)[-1]
    assert published.startswith(f"[DRILL] :loudspeaker: <@{LEAD}> published the *initial* notice:")
    assert "Status page: drill: shown in this channel only, sent to no one" in published

    # the scenario's last expectation (resolved, 2h) falls due at 2 real minutes: the scorecard is posted
    stack.advance(seconds=85)
    scorecard = next(t for t in stack.texts(channel.id) if "Drill scorecard" in t)
    assert scorecard.splitlines()[:8] == [
        "[DRILL] :clipboard: *Drill scorecard: Payment outage* (speed 60×): 4 on time, 1 late, 2 missed.",
        f":white_check_mark: Role taken: Tech support: <@{TECH}> at T+7m (limit 10m), on time",
        f":white_check_mark: Lead acknowledges (Incident lead): <@{LEAD}> at T+0m (limit 15m), on time",
        f":warning: Customer notice drafted (Customer comms): <@{LEAD}> at T+35m (limit 30m), late",
        f":white_check_mark: Customer notice approved (PR): <@{LEGAL}> at T+40m (limit 45m), on time",
        ":x: Progress update posted (Incident lead): missed (limit 1h 0m)",
        f":white_check_mark: Customers answered (notice published or solution given) (Customer comms): <@{LEAD}> "
        "at T+40m (limit 1h 0m), on time",
        ":x: Incident resolved (Incident lead): missed (limit 2h 0m)",
    ]

    # the missed status update paged the drill's people at plan-time intervals, never the leadership group
    pages = [t for t in stack.dm_texts(LEAD) if "Page for #1" in t]
    assert pages and pages[0].startswith("[DRILL] :rotating_light: *Page for #1*: Status update missed")
    assert "If nobody acknowledges within 15m" in pages[0]
    assert stack.dm_texts(ADMIN) == []

    # nothing reached a customer target, the status page or the broadcast; the KPIs did not move
    assert hooks.received == [] and smtp.inbox.messages == []
    assert stack.texts("announcements") == []
    assert b'"incidents": []' in _get(stack, "/status.json").replace(b'"incidents":[]', b'"incidents": []')
    assert stack.bot.services.reports.kpi_text() == kpis_before

    # stopping resolves it (its review works as for real incidents); the scorecard is not posted twice
    stack.driver.slash(LEAD, channel.id, "drill stop")
    assert stack.ephemeral_texts(LEAD)[-1] == "Drill #1 is over; its scorecard was posted in the channel already."
    assert sum("Drill scorecard" in t for t in stack.texts(channel.id)) == 1
    with stack.bot.services.db() as s:
        assert s.scalar(select(Incident.status).where(Incident.id == 1)) == "resolved"

    # a real incident's notice, in the same test, reaches every target
    real = stack.open("outage sev3 手机银行转账失败，客户卡号6222021234567890123被重复扣款").id
    assert not stack.sandbox.channels[real].name.startswith("drill-")
    stack.driver.slash(LEAD, real, "notice initial")
    click_button(stack.driver, LEAD, real, preview(stack, real).ts, "Publish")
    assert {r.path for r in hooks.received} == {"/social", "/hotline"}
    assert len(smtp.inbox.messages) == 1 and len(stack.texts("announcements")) == 1
    assert b'"number": 2' in _get(stack, "/status.json").replace(b'"number":2', b'"number": 2')


def _get(stack: Stack, path: str) -> bytes:
    import urllib.request

    with urllib.request.urlopen(stack.http.url + path, timeout=10) as response:
        return bytes(response.read())


@pytest.mark.playbook({"locale: zh-CN": "locale: zh-CN"})  # the shipped language: the channel speaks Chinese
def test_drill_input_is_checked_and_stop_ends_a_drill_with_its_scorecard_in_the_channel_language(stack: Stack) -> None:
    general = stack.sandbox.channel_by_name("general")
    assert general is not None

    def told(text: str, user: str = REPORTER, where: str = general.id) -> str:
        stack.driver.slash(user, where, text)
        return stack.ephemeral_texts(user)[-1]

    assert told("drill fire-drill") == (
        "There is no drill scenario `fire-drill`. Scenarios: `payment-outage` (Payment outage), `mass-complaint` "
        "(Mass complaints), `data-leak` (Customer data leak). Example: `/incident drill payment-outage 60`."
    )
    assert told("drill payment-outage fast").startswith("`fast` is not a speed: give how many times faster")
    assert told("drill payment-outage 0").startswith("`0` is not a speed")
    assert told("drill").startswith("Say which scenario and, if you like, how fast:")
    assert told("drill stop") == (
        "`/incident drill stop` ends a drill: type it in the drill's channel (its name starts with drill-)."
    )
    with stack.bot.services.db() as s:
        assert s.scalar(select(Incident.id)) is None  # nothing was opened

    stack.driver.slash(REPORTER, general.id, "演练 data-leak 600")  # the Chinese alias, ten hours of plan a minute
    channel = stack.incident_channel(1)
    assert channel.name.startswith("drill-inc-20261124-1-")
    card = stack.sandbox.channel_messages(channel.id)[0]
    assert card.blocks[0]["text"]["text"] == "[演练] #1 疑似客户信息泄露"
    assert all(t.startswith("[演练]") for t in stack.texts(channel.id))

    stack.advance(seconds=3)  # 30 minutes of plan: the cues at 0m and 15m, not the one at 45m
    cues = [t for t in stack.texts(channel.id) if ":mega:" in t]
    assert cues == [
        "[演练] :mega: *监控告警*（T+0分钟）：安全监控：异常账户批量导出客户数据。",
        "[演练] :mega: *客户投诉*（T+15分钟）：客户投诉收到冒充本行的诈骗短信，内容含其身份信息。",
    ]
    assert told("drill stop", OUTSIDER, channel.id).startswith("Only ")
    assert told("drill stop", REPORTER, channel.id) == "Drill #1 stopped; the scorecard is in the channel."
    scorecard = next(t for t in stack.texts(channel.id) if "演练评分表" in t)
    assert (
        scorecard.splitlines()[0]
        == "[演练] :clipboard: *演练评分表：客户信息泄露*（速度 600 倍）：按时 2 项，超时 0 项，未完成 5 项。"
    )
    assert f":white_check_mark: 组长确认（事件组长）：<@{REPORTER}> 于 T+0分钟 完成（时限 5分钟），按时" in scorecard
    assert (
        f":white_check_mark: 事件已解决（事件组长）：<@{REPORTER}> 于 T+30分钟 完成（时限 6小时0分钟），按时"
        in scorecard
    )
    assert ":x: 认领角色：法律合规：未完成（时限 15分钟）" in scorecard

    # the drill's review works as for a real incident, and its timeline tells the cues
    stack.driver.slash(REPORTER, channel.id, "review post")
    assert stack.texts(channel.id)[-1] == "[演练] 事件 #1 的复盘草稿"
    stack.driver.slash(REPORTER, channel.id, "timeline")
    assert "— drill cue: 安全监控：异常账户批量导出客户数据。" in stack.ephemeral_texts(REPORTER)[-1]

    stack.advance(seconds=60)  # a stopped drill injects nothing more, and its scorecard is not posted again
    assert len([t for t in stack.texts(channel.id) if ":mega:" in t]) == 2
    assert sum("演练评分表" in t for t in stack.texts(channel.id)) == 1

    # the weekly report lists the drill (and only there: the figures leave it out)
    report = stack.bot.services.reports
    start, end, _label = report.period()
    with use_locale("zh-CN"):  # as the weekly report is posted: in the channel's language
        listed = report.drills_text(start, end)
    assert listed.splitlines() == [
        "*已开展演练*：1 次",
        "• #1 客户信息泄露（信息安全事件），600 倍速 — 开始于 2026-11-24 10:00 北京时间",
    ]


def test_a_quarter_without_a_drill_of_a_kind_reminds_the_plans_owner_once(stack: Stack) -> None:
    stack.bot.sweeper.sweep()  # the bot starts watching in 2026 Q4: that quarter began before, it is not judged
    stack.clock.set(datetime(2027, 1, 1, 0, 5, tzinfo=UTC))
    stack.bot.sweeper.sweep()
    assert not [t for t in stack.dm_texts(LEAD) if ":calendar:" in t]

    general = stack.sandbox.channel_by_name("general")
    assert general is not None
    stack.clock.set(datetime(2027, 2, 1, 2, 0, tzinfo=UTC))
    stack.driver.slash(TECH, general.id, "drill payment-outage 6000")  # an outage drill in 2027 Q1
    stack.driver.slash(TECH, stack.incident_channel(1).id, "drill stop")

    stack.clock.set(datetime(2027, 3, 31, 16, 5, tzinfo=UTC))  # 00:05 on 1 April in Shanghai: Q1 is over
    stack.bot.sweeper.sweep()
    stack.bot.sweeper.sweep()
    reminders = [t for t in stack.dm_texts(LEAD) if ":calendar:" in t]
    assert reminders == [
        ":calendar: No drill rehearsed Traffic surge, Security incident in 2027Q1; the plan asks for one every "
        "quarter. Start one with `/incident drill <scenario>`. Scenarios: `payment-outage` (Payment outage), "
        "`mass-complaint` (Mass complaints), `data-leak` (Customer data leak)."
    ]


def test_a_scenario_naming_an_unknown_role_or_kind_is_a_config_error_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = playbook_text(
        **{
            "{action: role_taken, role: tech_support, within: 10m}": "{action: role_taken, role: techie, within: 10m}",
            "kind: security\n      severity: sev1": "kind: breach\n      severity: sev1",
            "{action: update, role: lead, within: 1h}": "{action: posted, role: lead, within: 1h}",
            "{action: role_taken, role: marketing, within: 20m}": "{action: role_taken, role: finance, within: 20m}",
        }
    )
    with pytest.raises(ConfigError) as raised:
        load_playbook_text(text)
    problems = "\n".join(raised.value.problems)
    assert "drills.scenarios.payment-outage.expect.0.role (line " in problems and "unknown role 'techie'" in problems
    assert "drills.scenarios.data-leak.kind (line " in problems and "unknown kind 'breach'" in problems
    assert "drills.scenarios.payment-outage.expect.4.action (line " in problems
    assert "drills.scenarios.mass-complaint.expect.1.role (line " in problems
    assert "'finance' is not one of the surge kind's roles" in problems
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    assert main(["check-config", str(path)]) == 2
    assert "drills.scenarios.payment-outage.expect.0.role" in capsys.readouterr().err

    assert main(["check-config", str(ROOT / "config.yaml")]) == 0  # the shipped scenarios load; nobody is reminded
    assert "  ! drills.owners: nobody is reminded when a quarter passes without a drill" in capsys.readouterr().out
