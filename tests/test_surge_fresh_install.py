"""The surge plan on the shipped config.yaml as a new bank installs it (no surge.leaders, no admins): the
proposal is posted in a leadership channel the bot creates with nobody in it, so nobody is paged and nobody can
decide. check-config and the log say so in those words, instead of leaving a warning line to wait unseen."""

from __future__ import annotations

import json
import logging

import pytest

from bot.core.clock import FixedClock
from bot.core.config import load_playbook_text, playbook_warnings
from bot.sandbox.server import SlackSandbox
from bot.slack.web import HttpServer, make_wsgi
from tests.conftest import ENGLISH, OUTSIDER, playbook_text, running_stack
from tests.test_surge_watch import TOKEN, body, leadership, post, proposals

LINE = {"    - {count: 100, window: 10m}": "    - {count: 3, window: 10m}"}


def test_check_config_says_nobody_can_decide_until_people_join_the_leadership_channel() -> None:
    warnings = playbook_warnings(load_playbook_text(playbook_text()))
    [surge] = [w for w in warnings if w.startswith("surge.leaders")]
    assert "nobody is paged or can Activate until people join it, then anyone who joins can" in surge


def test_a_proposal_nobody_can_decide_is_logged_as_such(
    sandbox: SlackSandbox, general: str, sqlite_url: str, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    playbook = load_playbook_text(playbook_text(**ENGLISH, **LINE))
    with running_stack(sandbox, playbook, sqlite_url, clock) as stack:
        server = HttpServer(make_wsgi(stack.bot, intake_token=TOKEN)).start()
        try:
            with caplog.at_level(logging.WARNING, logger="bot.surge"):
                for _ in range(3):
                    assert post(server.url, body(stack)) == 201
                [proposal] = proposals(stack)
        finally:
            server.stop()
        room = leadership(stack)
        assert room.members == [stack.bot.services.slack.bot_user_id]  # only the bot: nobody sees it
        assert stack.sandbox.dm_messages(OUTSIDER) == []
    said = [r.getMessage() for r in caplog.records if r.name.startswith("bot.surge")]
    assert any(f"proposal {proposal.id} reaches nobody" in m and "#incident-leadership" in m for m in said), said
    assert json.dumps(said, ensure_ascii=False).count("reaches nobody") == 1
