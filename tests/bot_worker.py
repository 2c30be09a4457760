"""The bot as a real process for the crash tests: serves signed Slack requests over HTTP on a free port.

At start-up it resumes unfinished side effects, as `incident-desk run` does (bot/app.py resume_unfinished).
Its clock is read from a file the test writes (tests/scheduler_worker.py FileClock), so a test can let a
dead process's leases run out without sleeping.
Run: python -m tests.bot_worker DB_URL SLACK_API_URL CLOCK_FILE PORT_FILE
"""

from __future__ import annotations

import sys
from pathlib import Path

from bot.app import create_app, resume_unfinished
from bot.slack.gateway import make_web_client
from bot.slack.web import HttpServer, make_wsgi
from store.db import make_engine, make_session_factory, upgrade
from tests.conftest import SIGNING_SECRET, test_playbook
from tests.scheduler_worker import FileClock


def main() -> None:
    db_url, api_url, clock_file, port_file = sys.argv[1:5]
    engine = make_engine(db_url)
    upgrade(engine)
    bot = create_app(
        test_playbook(),
        make_session_factory(engine),
        client=make_web_client("xoxb-sandbox-token", api_url),
        signing_secret=SIGNING_SECRET,
        clock=FileClock(Path(clock_file)),
    )
    resume_unfinished(bot)
    http = HttpServer(make_wsgi(bot), host="127.0.0.1", port=0)
    Path(port_file).write_text(http.url)
    http.serve_forever()


if __name__ == "__main__":
    main()
