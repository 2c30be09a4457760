"""A page is never lost: what the sweeper decides is written before it is sent, so a sender killed
mid-send, or a Slack that refuses, leaves work that is finished later — once, never twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.core.clock import FixedClock
from bot.incidents.service import IncidentCreate
from bot.notices.outbox import LEASE
from bot.sandbox.server import SlackSandbox
from bot.services import Services
from bot.slack.gateway import SlackGateway, make_web_client
from store.db import make_engine, make_session_factory, upgrade
from store.models import Escalation, OutboxMessage
from tests.conftest import ADMIN, LEAD, REPORTER, ROOT, Stack, test_playbook
from tests.test_leader import wait_for

OPENED = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
LEADERSHIP = {
    "- {name: Leadership group, names: {zh-CN: 预案领导小组}, leadership: true, ack_timeout: 1h}": (
        f"- {{name: Leadership group, names: {{zh-CN: 预案领导小组}}, leadership: true, "
        f"users: [{ADMIN}], ack_timeout: 1h}}"
    )
}


def pages(sandbox: SlackSandbox, user: str) -> list[str]:
    return [m.text for m in sandbox.dm_messages(user) if "Page for #" in m.text]


@pytest.mark.playbook(LEADERSHIP)
def test_a_page_slack_refuses_is_retried_then_told_and_the_next_level_is_paged_at_once(stack: Stack) -> None:
    channel = stack.open("outage sev1 核心系统中断，客户电话13812345678无法转账")
    stack.sandbox.users[LEAD]["deleted"] = True  # the lead's account was just deactivated: no DM can reach him
    stack.bot.sweeper.sweep()
    assert pages(stack.sandbox, LEAD) == []

    stack.advance(seconds=29)
    with stack.bot.services.db() as s:
        row = s.scalars(
            select(OutboxMessage).where(OutboxMessage.user_id == LEAD, OutboxMessage.escalation_id.is_not(None))
        ).one()
        assert (row.state, row.attempts, row.error) == ("pending", 1, "user_disabled")
    assert pages(stack.sandbox, ADMIN) == []  # still this level's turn

    stack.advance(minutes=4)  # tried again after 30 s, 1 min and 2 min: then given up
    with stack.bot.services.db() as s:
        row = s.scalars(
            select(OutboxMessage).where(OutboxMessage.user_id == LEAD, OutboxMessage.escalation_id.is_not(None))
        ).one()
        assert (row.state, row.attempts) == ("failed", 4)
        chain = s.scalars(select(Escalation)).one()
        assert chain.level == 3  # the team-lead level (the same person) was skipped; leadership paged
    texts = stack.texts(channel.id)
    assert (
        f":warning: The page to <@{LEAD}> could not be delivered (`user_disabled`, after several tries). "
        "Paging the next level now." in texts
    )
    assert texts[-1].startswith(f":pager: Paging <@{ADMIN}> (*Leadership group*)")
    assert [t.split(" — ")[0] for t in pages(stack.sandbox, ADMIN)] == [
        ":rotating_light: *Page for #1*: SEV1 service outage opened"
    ]
    # well before the owner level's 15-minute timeout would have moved it on
    assert stack.clock.now() - OPENED < timedelta(minutes=5)


@pytest.fixture
def worker(sandbox: SlackSandbox, tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    """A scheduler process over a SQLite file, with its clock in a file the test writes."""
    db_url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(make_engine(db_url))
    clock_file, status = tmp_path / "clock", tmp_path / "worker.status"
    clock_file.write_text(OPENED.isoformat())
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.scheduler_worker", db_url, sandbox.api_url, str(clock_file), str(status)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield db_url, clock_file, proc
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.mark.parametrize("slack_took_it", [True, False], ids=["slack-took-it", "lost-on-the-way"])
def test_a_page_in_flight_when_the_scheduler_is_killed_arrives_exactly_once(
    sandbox: SlackSandbox, worker: tuple[str, Path, subprocess.Popen[bytes]], slack_took_it: bool
) -> None:
    db_url, _clock_file, proc = worker
    engine = make_engine(db_url)
    services = Services.build(
        test_playbook(),
        make_session_factory(engine),
        SlackGateway(make_web_client(sandbox.bot_token, sandbox.api_url), sleep=lambda _s: None),
        FixedClock(OPENED),
    )
    hold = sandbox.hold("chat.postMessage", then="process" if slack_took_it else "drop")
    services.incidents.open_incident(
        IncidentCreate(kind="outage", severity="sev1", title="核心系统中断"), reporter=REPORTER
    )
    assert wait_for(hold.reached.is_set)  # the worker decided the page and is sending it: kill it now
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    hold.release()
    assert wait_for(hold.passed.is_set)
    assert wait_for(lambda: len(pages(sandbox, LEAD)) == (1 if slack_took_it else 0))
    sandbox.holds.clear()

    restarted = services.sweeper  # built with the services, never swept: as in a restarted process
    services.clock.set(OPENED + timedelta(minutes=1))  # type: ignore[attr-defined]
    restarted.sweep()
    assert len(pages(sandbox, LEAD)) == (1 if slack_took_it else 0)  # still leased to the dead sender

    services.clock.set(OPENED + timedelta(minutes=2))  # type: ignore[attr-defined]
    restarted.sweep()
    assert [t.split(" — ")[0] for t in pages(sandbox, LEAD)] == [
        ":rotating_light: *Page for #1*: SEV1 service outage opened"
    ]
    with services.db() as s:
        row = s.scalars(
            select(OutboxMessage).where(OutboxMessage.user_id == LEAD, OutboxMessage.escalation_id.is_not(None))
        ).one()
        assert row.state == "sent"
    restarted.close()
    engine.dispose()


def test_a_refused_announcement_is_retried_and_what_follows_waits_for_it(stack: Stack) -> None:
    """One incident's steps run in order: a refused post holds back the next until its retry goes out."""
    channel = stack.open("complaint sev2 客户卡号6222021234567890123被重复扣款")
    posted = len(stack.texts(channel.id))
    stack.sandbox.fail("chat.postMessage", error="msg_too_long", times=1)
    stack.driver.slash(LEAD, channel.id, "update 已联系清算中心")
    assert stack.ephemeral_texts(LEAD)[-1] == (
        "Saved, but Slack refused to update the channel (`msg_too_long`). `/incident repair 1` retries."
    )
    stack.driver.slash(LEAD, channel.id, "update 已为客户退款")
    assert len(stack.texts(channel.id)) == posted  # the second waits behind the first

    stack.advance(seconds=15)  # the sweep takes the retry that fell due, then what waited behind it
    updates = [t for t in stack.texts(channel.id) if t.startswith(":mega: *Update*")]
    assert updates == [
        f":mega: *Update* from <@{LEAD}>: 已联系清算中心",
        f":mega: *Update* from <@{LEAD}>: 已为客户退款",
    ]


def test_repair_finishes_a_closed_incident_whose_archive_slack_refused(stack: Stack) -> None:
    channel = stack.open("complaint sev2 客户电话13812345678无法转账")
    stack.driver.slash(LEAD, channel.id, "resolve 已恢复")
    stack.driver.slash(LEAD, channel.id, "review done")
    stack.sandbox.fail("conversations.archive", error="restricted_action", times=1)
    stack.driver.slash(LEAD, channel.id, "close")
    assert stack.ephemeral_texts(LEAD)[-1] == (
        "Saved, but Slack refused to update the channel (`restricted_action`). `/incident repair 1` retries."
    )
    assert not stack.incident_channel(1).is_archived
    general = stack.sandbox.channel_by_name("general")
    assert general is not None

    stack.driver.slash(LEAD, general.id, "repair 1")  # a closed incident is repaired too

    assert stack.ephemeral_texts(LEAD)[-1] == "#1 is closed; unfinished steps done: 1."
    assert stack.incident_channel(1).is_archived
    summaries = [t for t in stack.texts(channel.id) if t.startswith(":checkered_flag: *Final summary of #1*")]
    assert len(summaries) == 1
    stack.driver.slash(LEAD, general.id, "repair 1")
    assert stack.ephemeral_texts(LEAD)[-1] == "#1 is closed; nothing was left to do."


def test_a_step_slack_keeps_refusing_is_given_up_after_its_bound_and_the_rest_go_out(stack: Stack) -> None:
    channel = stack.open("complaint sev3 客户卡号6222021234567890123被重复扣款")
    stack.sandbox.fail("chat.postMessage", error="msg_too_long", times=5)
    stack.driver.slash(LEAD, channel.id, "update 第一条")
    stack.driver.slash(LEAD, channel.id, "update 第二条")
    stack.advance(minutes=4)  # tried again after 15 s, 30 s, 1 min and 2 min: five refusals in all
    with stack.bot.services.db() as s:
        first = s.scalars(select(OutboxMessage).where(OutboxMessage.effect == "post")).all()[0]
        assert (first.state, first.attempts, first.error) == ("failed", 5, "msg_too_long")
    updates = [t for t in stack.texts(channel.id) if t.startswith(":mega: *Update*")]
    assert updates == [f":mega: *Update* from <@{LEAD}>: 第二条"]  # the first is recorded as failed, not lost
    stack.driver.slash(LEAD, channel.id, "repair")  # repair runs it again
    assert [t for t in stack.texts(channel.id) if t.startswith(":mega: *Update*")][-1].endswith("第一条")


def test_a_sweep_leaves_a_fresh_effect_to_the_request_that_wrote_it_and_takes_it_once_the_lease_passed(
    stack: Stack,
) -> None:
    """A sweep racing the request that just wrote an effect would run the reporter's set-up in the sweep's thread
    (and the request would tell the reporter nothing). It waits one lease; start-up, with no request left alive,
    does not wait."""
    channel = stack.open("complaint sev3 客户卡号6222021234567890123被重复扣款").id
    services = stack.bot.services
    with services.db.begin() as s:
        services.outbox.add(s, 1, "test:fresh-post", "post", text="written by a request still running")
    now = services.clock.now()
    assert services.outbox.resume(now, grace=LEASE) == 0  # the sweep leaves it to its request
    assert "written by a request still running" not in stack.texts(channel)
    assert services.outbox.resume(now + LEASE + timedelta(seconds=1), grace=LEASE) == 1  # its request died
    assert stack.texts(channel).count("written by a request still running") == 1
    with services.db.begin() as s:
        services.outbox.add(s, 1, "test:at-start-up", "post", text="left by a crash")
    assert services.outbox.resume(now) == 1  # start-up: nobody else is left to run it
    assert stack.texts(channel).count("left by a crash") == 1
