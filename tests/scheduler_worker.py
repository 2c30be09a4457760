"""A scheduler process for the two-process test: sweeps only while it holds the leader lock.

Its clock is read from a file the test writes, so the test moves time for every process at once.
Run: python -m tests.scheduler_worker DB_URL SLACK_API_URL CLOCK_FILE STATUS_FILE
"""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime
from pathlib import Path

from bot.deadlines.scheduler import LeaderLock
from bot.services import Services
from bot.slack.gateway import SlackGateway, make_web_client
from store.db import make_engine, make_session_factory
from tests.conftest import test_playbook


class FileClock:
    def __init__(self, path: Path) -> None:
        self.path = path

    def now(self) -> datetime:
        return datetime.fromisoformat(self.path.read_text().strip())

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def main() -> None:
    db_url, api_url, clock_file, status_file = sys.argv[1:5]
    engine = make_engine(db_url)
    services = Services.build(
        test_playbook(),
        make_session_factory(engine),
        SlackGateway(make_web_client("xoxb-sandbox-token", api_url)),
        FileClock(Path(clock_file)),
    )
    sweeper, leader = services.sweeper, LeaderLock(engine)
    status = Path(status_file)
    tell(status, "standby")
    while True:
        if leader.acquire():
            if status.read_text() != "leader":
                tell(status, "leader")
            sweeper.sweep()
        time.sleep(0.05)  # the worker's polling interval


def tell(status: Path, word: str) -> None:
    """Write the status file whole (a rename): the test never reads it half-written, i.e. empty."""
    partial = status.with_name(status.name + ".partial")
    partial.write_text(word)
    os.replace(partial, status)


if __name__ == "__main__":
    main()
