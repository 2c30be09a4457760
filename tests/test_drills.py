"""Drills (issue 13): a scenario played on its own clock, scored, and kept away from customers and figures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from bot.sandbox.driver import click_button
from bot.sandbox.server import Message
from store.models import Drill, Incident
from tests.conftest import LEAD, LEGAL, TECH, Stack
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
