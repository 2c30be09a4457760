"""Two scheduler processes on one PostgreSQL database: only one sends; kill it and the other takes over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.core.clock import FixedClock
from bot.incidents.service import IncidentCreate
from bot.sandbox.server import SlackSandbox
from bot.services import Services
from bot.slack.gateway import SlackGateway, make_web_client
from store.db import make_engine, make_session_factory, upgrade
from tests.conftest import REPORTER, ROOT, test_playbook

pytestmark = pytest.mark.postgres
OPENED = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Wait for other processes to act (they run on their own), bounded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.fixture
def workers(
    postgres_url: str, sandbox: SlackSandbox, tmp_path: Path
) -> Iterator[tuple[list[subprocess.Popen[bytes]], list[Path], Path]]:
    clock_file = tmp_path / "clock"
    clock_file.write_text(OPENED.isoformat())
    statuses = [tmp_path / f"worker{i}.status" for i in range(2)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = []
    for status in statuses:
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.scheduler_worker",
                    postgres_url,
                    sandbox.api_url,
                    str(clock_file),
                    str(status),
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    try:
        yield procs, statuses, clock_file
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=10)


def test_only_one_process_sends_and_the_other_takes_over(
    postgres_url: str, sandbox: SlackSandbox, workers: tuple[list[subprocess.Popen[bytes]], list[Path], Path]
) -> None:
    engine = make_engine(postgres_url)
    upgrade(engine)
    services = Services.build(
        test_playbook(),
        make_session_factory(engine),
        SlackGateway(make_web_client(sandbox.bot_token, sandbox.api_url)),
        FixedClock(OPENED),
    )
    for n in range(3):
        services.incidents.open_incident(IncidentCreate(kind="complaint", title=f"Case {n}"), reporter=REPORTER)
    procs, statuses, clock_file = workers
    assert wait_for(lambda: all(p.exists() for p in statuses))
    assert wait_for(lambda: sorted(p.read_text() for p in statuses) == ["leader", "standby"])

    def reminders() -> list[str]:
        """Every reminder line delivered, whether alone or in a digest DM."""
        return [line for m in sandbox.messages for line in m.text.splitlines() if ":alarm_clock: Reminder" in line]

    clock_file.write_text((OPENED + timedelta(hours=12)).isoformat())
    assert wait_for(lambda: len(reminders()) == 3)  # three first-response reminders, DM'd to the lead
    time.sleep(0.5)  # give a misbehaving second process the chance to send duplicates
    assert len(reminders()) == 3

    leader = next(i for i, p in enumerate(statuses) if p.read_text() == "leader")
    procs[leader].send_signal(signal.SIGKILL)
    procs[leader].wait(timeout=10)
    started = time.monotonic()
    standby = statuses[1 - leader]
    assert wait_for(lambda: standby.read_text() == "leader", timeout=10)
    took_over = time.monotonic() - started

    clock_file.write_text((OPENED + timedelta(hours=24)).isoformat())  # the 48 h deadlines' 50 % reminders
    assert wait_for(lambda: len(reminders()) == 9)  # + investigation and solution for each case
    time.sleep(0.5)
    texts = reminders()
    assert len(texts) == len(set(texts)) == 9  # one per deadline and case: nothing sent twice
    assert took_over < 10
    engine.dispose()
