"""Crash tests: the bot runs as a real process (tests/bot_worker.py), is killed with SIGKILL at a chosen
point, and is started again on the same SQLite file. Whatever it had committed is finished after the
restart — once: one channel, one card, one plan, one final summary — and the reporter who was left
waiting is told."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.sandbox.driver import SlackDriver, click_button
from bot.sandbox.server import SlackSandbox
from store.db import make_engine, make_session_factory
from store.models import Incident, Notice, NoticeDelivery, OutboxMessage
from tests.conftest import ADMIN, COMMS, LEAD, REPORTER, ROOT, SIGNING_SECRET
from tests.notice_targets import WebhookReceiver
from tests.test_leader import wait_for

OPENED = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
COMPLAINT = "open complaint sev2 客户卡号6222021234567890123被重复扣款，电话13812345678"


class BotProcess:
    """Starts, kills and restarts the bot process over one database and one clock file."""

    def __init__(self, sandbox: SlackSandbox, tmp_path: Path) -> None:
        self.sandbox = sandbox
        self.env: dict[str, str] = {}
        self.db_url = f"sqlite:///{tmp_path / 'store.db'}"
        self.clock_file = tmp_path / "clock"
        self.port_file = tmp_path / "port"
        self.proc: subprocess.Popen[bytes] | None = None
        self.driver: SlackDriver | None = None
        self.set_clock(OPENED)

    def set_clock(self, at: datetime) -> None:
        self.clock_file.write_text(at.isoformat())

    def start(self) -> SlackDriver:
        self.port_file.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.bot_worker",
                self.db_url,
                self.sandbox.api_url,
                str(self.clock_file),
                str(self.port_file),
            ],
            cwd=ROOT,
            env={**os.environ, **self.env, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert wait_for(lambda: self.port_file.exists() and self.port_file.read_text().startswith("http"))
        self.driver = SlackDriver(self.sandbox, self.port_file.read_text(), SIGNING_SECRET)
        return self.driver

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill()

    def effects(self) -> list[tuple[str, str]]:
        engine = make_engine(self.db_url)
        try:
            with make_session_factory(engine)() as s:
                rows = s.scalars(
                    select(OutboxMessage).where(OutboxMessage.effect != "message").order_by(OutboxMessage.id)
                )
                return [(row.key, row.state) for row in rows]
        finally:
            engine.dispose()

    def notice_state(self, notice_id: int = 1) -> tuple[str, list[str]]:
        engine = make_engine(self.db_url)
        try:
            with make_session_factory(engine)() as s:
                notice = s.get(Notice, notice_id)
                assert notice is not None
                deliveries = s.scalars(select(NoticeDelivery).where(NoticeDelivery.notice_id == notice_id))
                return notice.state, [f"{d.channel}: {d.outcome}" for d in deliveries]
        finally:
            engine.dispose()

    def incident(self, number: int = 1) -> Incident:
        engine = make_engine(self.db_url)
        try:
            with make_session_factory(engine)() as s:
                incident = s.get(Incident, number)
                assert incident is not None
                s.expunge(incident)
                return incident
        finally:
            engine.dispose()


@pytest.fixture
def bot_process(sandbox: SlackSandbox, tmp_path: Path) -> Iterator[BotProcess]:
    process = BotProcess(sandbox, tmp_path)
    try:
        yield process
    finally:
        process.stop()


def incident_channels(sandbox: SlackSandbox) -> list[str]:
    return [c.id for c in sandbox.channels.values() if c.name.startswith("inc-")]


def all_done(process: BotProcess) -> bool:
    return all(state == "sent" for _key, state in process.effects())


@pytest.mark.parametrize("slack_took_it", [True, False], ids=["slack-took-the-card", "card-lost-on-the-way"])
def test_killed_while_posting_the_card_the_restart_finishes_the_set_up_once_and_tells_the_reporter(
    sandbox: SlackSandbox, general: str, bot_process: BotProcess, slack_took_it: bool
) -> None:
    channel = kill_while_posting_the_card(sandbox, general, bot_process, slack_took_it)

    bot_process.set_clock(OPENED + timedelta(minutes=1))  # the dead process's lease on the card has run out
    bot_process.start()
    assert wait_for(lambda: any("is set up now" in m.text for m in sandbox.dm_messages(REPORTER)))

    [told] = [m.text for m in sandbox.dm_messages(REPORTER) if "#1" in m.text]
    assert told.startswith(":white_check_mark: Incident *#1* is set up now in <#")
    assert_set_up_once(sandbox, bot_process, channel)


@pytest.mark.parametrize("slack_took_it", [True, False], ids=["slack-took-the-card", "card-lost-on-the-way"])
def test_repair_after_a_crash_mid_open_posts_no_second_card(
    sandbox: SlackSandbox, general: str, bot_process: BotProcess, slack_took_it: bool
) -> None:
    channel = kill_while_posting_the_card(sandbox, general, bot_process, slack_took_it)
    driver = bot_process.start()  # at once: the dead process's lease still runs, so start-up leaves the card
    assert len(sandbox.channel_messages(channel)) == (1 if slack_took_it else 0)

    bot_process.set_clock(OPENED + timedelta(minutes=1))
    driver.slash(REPORTER, general, "repair 1", wait=False)
    assert wait_for(
        lambda: any(
            e.text.startswith(":rotating_light: Opened incident *#1*") for e in sandbox.ephemerals_for(REPORTER)
        )
    )
    assert_set_up_once(sandbox, bot_process, channel)


def kill_while_posting_the_card(
    sandbox: SlackSandbox, general: str, bot_process: BotProcess, slack_took_it: bool
) -> str:
    driver = bot_process.start()
    hold = sandbox.hold("chat.postMessage", then="process" if slack_took_it else "drop")
    driver.slash(REPORTER, general, COMPLAINT, wait=False)
    assert wait_for(hold.reached.is_set)  # the channel exists, the topic is set, people are in: the card is going
    bot_process.kill()
    hold.release()
    assert wait_for(hold.passed.is_set)
    sandbox.holds.clear()
    [channel] = incident_channels(sandbox)
    assert len(sandbox.channel_messages(channel)) == (1 if slack_took_it else 0)
    assert not any("#1" in text for text in (m.text for m in sandbox.dm_messages(REPORTER)))
    return channel


def assert_set_up_once(sandbox: SlackSandbox, bot_process: BotProcess, channel: str) -> None:
    assert incident_channels(sandbox) == [channel]
    assert len(sandbox.calls_to("conversations.create")) == 1
    texts = [m.text for m in sandbox.channel_messages(channel)]
    assert len(texts) == 2  # the card and the plan, once each
    assert texts[0].startswith("#1 SEV2")
    assert "How we handle this complaint" in texts[1]
    assert "6222021234567890123" not in "".join(texts)
    assert REPORTER in sandbox.channels[channel].members and LEAD in sandbox.channels[channel].members
    incident = bot_process.incident()
    assert incident.card_ts == sandbox.channel_messages(channel)[0].ts
    assert incident.welcome_posted and incident.members_invited and incident.topic_set
    assert all_done(bot_process)


@pytest.mark.parametrize("slack_took_it", [True, False], ids=["slack-archived-it", "archive-lost-on-the-way"])
def test_killed_right_after_close_the_restart_posts_the_final_summary_once_and_archives(
    sandbox: SlackSandbox, general: str, bot_process: BotProcess, slack_took_it: bool
) -> None:
    driver = bot_process.start()
    driver.slash(REPORTER, general, COMPLAINT, wait=False)
    assert wait_for(
        lambda: bool(incident_channels(sandbox)) and len(sandbox.channel_messages(incident_channels(sandbox)[0])) >= 2
    )
    [channel] = incident_channels(sandbox)
    sandbox.channels[channel].members.append(ADMIN)
    driver.slash(LEAD, channel, "resolve 已为客户退回重复扣款", wait=False)
    assert wait_for(lambda: any("record their rating" in m.text for m in sandbox.channel_messages(channel)))

    hold = sandbox.hold("conversations.archive", then="process" if slack_took_it else "drop")
    driver.slash(ADMIN, channel, "close", wait=False)
    assert wait_for(hold.reached.is_set)  # closed, announced, summary posted: the archive is on its way
    bot_process.kill()
    hold.release()
    assert wait_for(hold.passed.is_set)
    sandbox.holds.clear()
    assert sandbox.channels[channel].is_archived == slack_took_it

    bot_process.set_clock(OPENED + timedelta(minutes=1))
    bot_process.start()
    assert wait_for(lambda: all_done(bot_process))

    assert sandbox.channels[channel].is_archived
    texts = [m.text for m in sandbox.channel_messages(channel)]
    assert len([t for t in texts if t.startswith(":checkered_flag: *Final summary of #1*")]) == 1
    assert texts[-1].startswith(":checkered_flag: *Final summary of #1*")  # and nothing after it
    assert len([t for t in texts if "record their rating" in t]) == 1
    assert bot_process.incident().status == "closed"


def test_killed_while_a_notice_is_publishing_the_restart_finishes_it_under_the_same_key(
    sandbox: SlackSandbox, general: str, bot_process: BotProcess
) -> None:
    hotline = WebhookReceiver()
    bot_process.env = {"HOTLINE_WEBHOOK_URL": hotline.url("/hotline"), "INCIDENT_DESK_WEBHOOK_SECRET": "s3cret"}
    try:
        driver = bot_process.start()
        driver.slash(REPORTER, general, COMPLAINT.replace("sev2", "sev3"), wait=False)
        assert wait_for(lambda: bool(incident_channels(sandbox)))
        [channel] = incident_channels(sandbox)
        assert wait_for(lambda: len(sandbox.channel_messages(channel)) >= 2)
        sandbox.channels[channel].members.append(COMMS)
        driver.slash(COMMS, channel, "assign comms me", wait=False)
        assert wait_for(lambda: any("comms" in m.text.lower() for m in sandbox.channel_messages(channel)[2:]))
        driver.slash(COMMS, channel, "notice initial hotline", wait=False)
        assert wait_for(
            lambda: any(m.text.startswith("Customer notice for #1") for m in sandbox.channel_messages(channel))
        )
        preview = next(m for m in sandbox.channel_messages(channel) if m.text.startswith("Customer notice for #1"))

        hotline.held["/hotline"] = threading.Event()
        click_button(driver, COMMS, channel, preview.ts, "Publish")
        assert wait_for(hotline.arrived.is_set)  # the script is at the hotline system, its answer not yet back
        bot_process.kill()
        hotline.held.pop("/hotline").set()
        assert bot_process.notice_state() == ("publishing", [])

        bot_process.set_clock(OPENED + timedelta(minutes=1))
        bot_process.start()
        assert wait_for(lambda: bot_process.notice_state()[0] == "published")

        assert bot_process.notice_state() == ("published", ["hotline: delivered"])
        sent = hotline.to("/hotline")
        keys = {r.headers.get("Idempotency-Key") for r in sent}
        assert keys == {"notice:1:hotline"}  # sent again after the crash, under the same key: taken once
        assert len({r.body for r in sent}) == 1  # the very same script, not a second one
        told = [m.text for m in sandbox.channel_messages(channel) if "published the *initial* notice" in m.text]
        assert told == [
            f":loudspeaker: <@{COMMS}> published the *initial* notice:\n:white_check_mark: Hotline script: http 200"
        ]
        assert all_done(bot_process)
    finally:
        hotline.close()
