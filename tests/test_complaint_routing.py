"""Complaint routing through real HTTP: which complaints open an incident (keywords, clusters), that a retry or
a burst of one cluster opens ONE, and what people do with the rest: `/incident complaints` and Escalate."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.clock import FixedClock
from bot.core.config import Playbook, Settings, playbook_warnings
from bot.sandbox.server import SlackSandbox
from bot.slack.ids import ActionId
from bot.slack.web import HttpServer, make_wsgi
from store.models import Complaint, Incident
from tests.conftest import COMMS, LEAD, REPORTER, TECH, Stack, running_stack, test_playbook
from tests.test_intake import BODY, CARD, TOKEN, post

NO_LEAD = "aliases: [commander, ic, 组长, 指挥长]\n    default_owners: []"  # the lead role as shipped: nobody
KEYWORD_SUMMARY = f"客户卡号{CARD}被重复扣款，已联系媒体"


@pytest.fixture
def routed(
    sandbox: SlackSandbox, general: str, playbook: Playbook, sqlite_url: str, clock: FixedClock
) -> Iterator[tuple[Stack, str]]:
    with serving(sandbox, playbook, sqlite_url, clock) as running:
        yield running


def serving(sandbox: SlackSandbox, playbook: Playbook, db_url: str, clock: FixedClock) -> Any:
    """The running bot with the intake API on."""
    from contextlib import contextmanager

    @contextmanager
    def run() -> Iterator[tuple[Stack, str]]:
        token = Settings.from_env({"INCIDENT_DESK_INTAKE_TOKEN": TOKEN}).intake_token
        with running_stack(sandbox, playbook, db_url, clock) as stack:
            server = HttpServer(make_wsgi(stack.bot, intake_token=token)).start()
            try:
                yield stack, server.url
            finally:
                stack.bot.services.routing.background.wait_idle()
                server.stop()

    return run()


def complaint(n: int, **fields: Any) -> dict[str, Any]:
    return {**BODY, "external_id": f"CMS-{n:06d}", "summary": f"第{n}位客户：转账一直失败", **fields}


def settle(stack: Stack) -> None:
    """Wait for the background set-up the intake handed off (no sleeping: the executor says when it is idle)."""
    assert stack.bot.services.routing.background.wait_idle()


def incidents(stack: Stack) -> list[Incident]:
    with Session(stack.engine) as s:
        return list(s.scalars(select(Incident).order_by(Incident.id)))


def complaints(stack: Stack) -> dict[int, tuple[int | None, str | None]]:
    with Session(stack.engine) as s:
        return {c.id: (c.incident_id, c.routed) for c in s.scalars(select(Complaint))}


def test_a_keyword_complaint_opens_a_masked_incident_and_a_retry_opens_nothing(routed: tuple[Stack, str]) -> None:
    stack, url = routed
    body = complaint(1, summary=KEYWORD_SUMMARY)
    answer, shown = post(url, body)
    assert answer.status == 201, answer.text
    assert shown["routed"] == "opened"
    assert shown["incident"]["number"] == 1 and shown["incident"]["channel"].startswith("inc-")
    assert CARD not in answer.text
    settle(stack)
    (incident,) = incidents(stack)
    assert incident.reporter_id == stack.sandbox.bot_user_id  # the complaint system reported it, as the bot
    assert incident.kind == "complaint" and incident.severity == "sev2" and incident.category == "financial"
    assert incident.customer_ref == body["customer_ref"]  # raw in the store only
    assert CARD not in incident.title and incident.title.endswith("已联系媒体")
    channel = stack.incident_channel(1)
    assert CARD[-4:] not in channel.name and channel.name == shown["incident"]["channel"]
    assert LEAD in channel.members and stack.sandbox.bot_user_id in channel.members
    texts = stack.texts(channel.id)
    assert texts and all(CARD not in t for t in texts)
    # someone SEES it: a line in the intake channel, with the channel's link and who leads
    intake = stack.sandbox.channel_by_name("incident-intake")
    assert intake is not None
    (said,) = stack.texts(intake.id)
    assert f"<#{channel.id}>" in said and "#1" in said and f"<@{LEAD}>" in said and "media_or_regulator" in said
    # the complaint system retries: the same answer, nothing new opened or posted
    calls = len(stack.sandbox.calls)
    again, shown_again = post(url, body)
    settle(stack)
    assert (again.status, shown_again) == (200, shown)
    assert len(incidents(stack)) == 1 and len(stack.sandbox.calls) == calls


@pytest.mark.playbook({NO_LEAD: NO_LEAD, "  leads: []": f"  leads: [{COMMS}]"})
def test_a_cluster_opens_one_incident_and_later_complaints_join_it(routed: tuple[Stack, str]) -> None:
    """Led by the playbook's intake lead (the lead role has no default owner here)."""
    stack, url = routed
    for n in range(1, 5):  # the shipped rule: 5 complaints of one category within 30 minutes
        answer, shown = post(url, complaint(n))
        assert (answer.status, shown["routed"]) == (201, "recorded")
        assert "incident" not in shown
        stack.clock.advance(timedelta(minutes=5))
    _, shown_other = post(url, complaint(90, category="服务态度"))  # another category: its own cluster
    assert shown_other["routed"] == "recorded"
    unknown, shown_unknown = post(url, complaint(91, category="未曾配置的类别", severity=None))
    assert (unknown.status, shown_unknown["routed"]) == (201, "recorded")  # unmapped: recorded, never a 422
    _, shown_fifth = post(url, complaint(5))
    assert shown_fifth["routed"] == "opened" and shown_fifth["incident"]["number"] == 1
    settle(stack)
    (incident,) = incidents(stack)
    assert incident.title.startswith("5 complaints about payments")
    assert COMMS in stack.incident_channel(1).members
    intake = stack.sandbox.channel_by_name("incident-intake")
    assert intake is not None and COMMS in intake.members  # the bot created it, with the intake leads in it
    assert f"<@{COMMS}>" in stack.texts(intake.id)[0]
    linked = complaints(stack)
    waiting = [linked[n] for n in (1, 2, 3, 4)]
    assert waiting == [(1, "joined")] * 4 and linked[shown_fifth["number"]] == (1, "opened")
    assert linked[shown_other["number"]] == (None, None)
    _, shown_sixth = post(url, complaint(6, summary=f"卡号{CARD}也被扣了两次"))
    assert shown_sixth["routed"] == "joined" and shown_sixth["incident"]["number"] == 1
    settle(stack)
    channel = stack.incident_channel(1)
    joined = [t for t in stack.texts(channel.id) if f"Complaint #{shown_sixth['number']} " in t]
    assert len(joined) == 1 and "joined this incident" in joined[0] and CARD not in joined[0]
    # a surge of one category does not flood the channel: a line each up to ten, then a count every 25
    for n in range(7, 27):
        post(url, complaint(n))
    settle(stack)
    lines = stack.texts(channel.id)
    assert sum("joined this incident" in t for t in lines) == 5  # complaints 6 … 10 of the incident
    assert sum("25 complaints are with this incident now" in t for t in lines) == 1
    assert len(incidents(stack)) == 1


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_concurrent_complaints_of_one_cluster_open_one_incident(
    db: str, request: pytest.FixtureRequest, sandbox: SlackSandbox, general: str, clock: FixedClock
) -> None:
    db_url = str(request.getfixturevalue("sqlite_url" if db == "sqlite" else "migrated_postgres_url"))
    with serving(sandbox, test_playbook(), db_url, clock) as (stack, url):
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda n: post(url, complaint(n)), range(1, 9)))
        settle(stack)
        assert all(answer.status == 201 for answer, _ in answers)
        routes = sorted(shown["routed"] for _, shown in answers)
        assert routes == ["joined"] * 3 + ["opened"] + ["recorded"] * 4
        assert len(incidents(stack)) == 1
        assert set(complaints(stack).values()) == {(1, "joined"), (1, "opened")}


def test_the_complaint_list_flags_high_priority_and_filters(routed: tuple[Stack, str]) -> None:
    stack, url = routed
    general = stack.sandbox.channel_by_name("general")
    assert general is not None
    for n in range(1, 13):  # each its own category: no cluster forms
        post(url, complaint(n, category=f"其他{n}", contact_channel="email" if n == 3 else "phone"))
    post(url, complaint(13, category="其他13", amount="60000.00", summary=f"大额{CARD}未到账"))
    stack.driver.slash(REPORTER, general.id, "complaints")
    listed = stack.sandbox.ephemerals_for(REPORTER)[-1]
    text = json.dumps(listed.blocks, ensure_ascii=False)
    assert "#13" in text and "#4" in text and "#2" not in text  # newest first, ten shown
    assert "3 more" in text and CARD not in text
    high = [b for b in listed.blocks if "#13" in json.dumps(b)]
    assert "high priority" in json.dumps(high[0]) and "high priority" not in json.dumps(listed.blocks[2])
    buttons = [b["accessory"] for b in listed.blocks if b.get("accessory")]
    assert len(buttons) == 10 and buttons[0]["action_id"] == ActionId.ESCALATE_COMPLAINT
    stack.driver.slash(REPORTER, general.id, "complaints high")
    only_high = json.dumps(stack.sandbox.ephemerals_for(REPORTER)[-1].blocks)
    assert "#13" in only_high and "#12" not in only_high
    stack.driver.slash(REPORTER, general.id, "投诉列表 channel:email")
    email = json.dumps(stack.sandbox.ephemerals_for(REPORTER)[-1].blocks)
    assert "*#3*" in email and "*#4*" not in email
    stack.driver.slash(REPORTER, general.id, "complaints category:其他5 today")
    assert "*#5*" in json.dumps(stack.sandbox.ephemerals_for(REPORTER)[-1].blocks, ensure_ascii=False)
    stack.driver.slash(REPORTER, general.id, "complaints 7")
    assert "*#7*" in json.dumps(stack.sandbox.ephemerals_for(REPORTER)[-1].blocks)
    stack.driver.slash(REPORTER, general.id, "complaints urgent")
    refused = stack.ephemeral_texts(REPORTER)[-1]
    assert "`urgent`" in refused and "category:" in refused


def test_escalate_by_command_and_by_button_opens_one_incident_each(routed: tuple[Stack, str]) -> None:
    stack, url = routed
    general = stack.sandbox.channel_by_name("general")
    assert general is not None
    for n in (1, 2):
        post(url, complaint(n, category=f"其他{n}", summary=f"卡号{CARD}客户要求退款"))
    stack.driver.slash(TECH, general.id, "escalate 1 sev2")
    (incident,) = incidents(stack)
    assert (incident.reporter_id, incident.severity) == (TECH, "sev2")
    channel = stack.incident_channel(1)
    assert TECH in channel.members
    assert any(f"<#{channel.id}>" in t for t in stack.ephemeral_texts(TECH))
    stack.driver.slash(TECH, general.id, "升级 1")
    assert any("already with incident #1" in t for t in stack.ephemeral_texts(TECH))
    stack.driver.slash(TECH, general.id, "escalate 99")
    assert any("no complaint #99" in t for t in stack.ephemeral_texts(TECH))
    # twenty clicks on one complaint's button open one incident
    with ThreadPoolExecutor(max_workers=10) as pool:
        replies = list(
            pool.map(
                lambda _: stack.driver.click(REPORTER, general.id, "1.0", ActionId.ESCALATE_COMPLAINT, "2", wait=False),
                range(20),
            )
        )
    stack.bot.executor.wait_idle()
    assert all(reply.status == 200 for reply in replies)
    assert len(incidents(stack)) == 2 and incidents(stack)[1].reporter_id == REPORTER
    assert complaints(stack) == {1: (1, "escalated"), 2: (2, "escalated")}
    told = stack.ephemeral_texts(REPORTER)
    assert sum("already with incident #2" in t or "being escalated" in t for t in told) == 19


def test_check_config_warns_when_nobody_would_lead_intake_incidents() -> None:
    shipped = test_playbook({NO_LEAD: NO_LEAD})
    assert any(w.startswith("intake.leads: nobody leads") for w in playbook_warnings(shipped))
    assert not any(w.startswith("intake.leads") for w in playbook_warnings(test_playbook()))
    with_leads = test_playbook({NO_LEAD: NO_LEAD, "  leads: []": "  leads: [U0LEAD2]"})
    assert not any(w.startswith("intake.leads") for w in playbook_warnings(with_leads))
