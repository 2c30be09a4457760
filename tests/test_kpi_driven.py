"""The KPI figures from a history made by driving the bot (signed commands and clicks over simulated days),
not by writing the figures' columns: each figure is checked against what the test did and when."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.review.kpi import kpi_report
from store.models import Incident
from tests.conftest import COMMS, LEAD, REPORTER, Stack
from tests.test_kpi import expect_stats

HOUR = 3600.0


def opened(stack: Stack, text: str) -> tuple[str, datetime]:
    channel = stack.open(text, user=REPORTER).id
    stack.join(channel, COMMS)
    return channel, stack.clock.now()


def test_the_kpis_of_a_driven_history_match_what_happened(stack: Stack) -> None:
    start = stack.clock.now()
    # 1: a complaint answered on time (2 h), resolved after 5 h, the customer rates it 5
    one, _ = opened(stack, "complaint sev3 cat:technical 客户卡号6222021234567890123网银登录失败")
    stack.driver.slash(COMMS, one, "assign comms me")
    stack.advance(hours=2)
    stack.driver.slash(COMMS, one, "done first_response")
    stack.advance(hours=3)
    stack.driver.slash(LEAD, one, "resolve 已重置登录")
    stack.driver.slash(COMMS, one, "satisfaction 5 满意")

    # 2: a complaint answered late (after 30 h, the 24 h deadline missed), resolved after 31 h, rated 2
    two, _ = opened(stack, "complaint sev3 cat:financial 手续费重复扣收，电话13812345678")
    stack.driver.slash(COMMS, two, "assign comms me")
    stack.advance(hours=30)
    stack.driver.slash(COMMS, two, "done first_response")
    stack.advance(hours=1)
    stack.driver.slash(LEAD, two, "resolve 已退回手续费")
    stack.driver.slash(COMMS, two, "satisfaction 2 太慢")

    # 3: a SEV1 outage: the lead is paged on opening and acknowledges after 3 minutes; resolved after 1 h
    three, _ = opened(stack, "outage sev1 核心系统转账中断")
    stack.advance(minutes=3)
    stack.driver.slash(LEAD, three, "ack")
    stack.advance(minutes=57)
    stack.driver.slash(LEAD, three, "resolve 已切换备用线路")

    # 4: an outage still open
    opened(stack, "outage sev3 对账文件延迟")
    end = stack.clock.now() + timedelta(minutes=1)

    with stack.bot.services.db() as s:
        assert s.query(Incident).count() == 4
        report = kpi_report(s, start, end, good_at_least=4, target=0.9)
    total = report.group("all")
    assert total is not None and total.incidents == 4
    expect_stats([2 * HOUR, 30 * HOUR], total.first_response)  # the late response counts too
    expect_stats([5 * HOUR, 31 * HOUR, 1 * HOUR], total.resolve)
    expect_stats([180.0], total.acknowledge)
    assert (total.rated, total.satisfied) == (2, 1)
    assert dict((key, (met, late)) for key, met, late in report.deadlines)["first_response"] == (1, 1)
    assert report.met_late == {"first_response": 1}
    complaint, outage = report.group("kind", "complaint"), report.group("kind", "outage")
    assert complaint is not None and outage is not None
    assert (complaint.incidents, outage.incidents) == (2, 2)
    assert report.hot_spots == [("financial", 1), ("technical", 1)]

    reply = stack.driver.slash(LEAD, three, f"report {start:%Y-%m-%d} {end:%Y-%m-%d}")
    assert reply.status == 200
    text = stack.ephemeral_texts(LEAD)[-1]
    assert text.startswith(f"*Incident KPIs, {start:%Y-%m-%d} – {end:%Y-%m-%d}*: 4 incidents, drills excluded")
    assert "First response: mean 16.0h, median 2.0h" in text and "(target ≤ 24h; 2 responded)" in text
    assert "Satisfaction: 50% rated 4+ of 5 (2 rated; target 90%) :warning: below target" in text
    assert "first_response 50% (1/2; 1 met late)" in text
