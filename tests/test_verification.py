"""Only verified requests do anything: a request with a missing, malformed or stale timestamp, a bad
signature, or a replayed one gets 401, and nobody is told anything — no response_url is called (a local
listener stands in for an internal address an attacker names), no Slack call is made, no traceback logged."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from slack_bolt.request import BoltRequest
from sqlalchemy import func, select

from bot.app import create_app
from bot.sandbox.server import PromptHTTPServer
from bot.slack.gateway import make_web_client
from bot.slack.signing import WINDOW_SECONDS, RequestVerifier
from store.db import make_engine, make_session_factory, upgrade
from store.models import Incident, SeenRequest
from tests.conftest import REPORTER, SIGNING_SECRET, Stack, test_playbook


class Listener:
    """An HTTP server on loopback that records whatever reaches it (it must receive nothing)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, bytes]] = []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                listener.received.append((self.path, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST  # noqa: N815 (http.server names the methods)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = PromptHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = self.server.serve_in_thread("listener")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/internal/admin"


@pytest.fixture
def listener() -> Iterator[Listener]:
    own = Listener()
    yield own
    own.server.shutdown()
    own.server.server_close()


def signature(body: bytes, timestamp: str, secret: str = SIGNING_SECRET) -> str:
    """Sign exactly as Slack would, whatever the timestamp text is (so only the timestamp is wrong)."""
    return "v0=" + hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()


def post(stack: Stack, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(
        stack.http.url + "/slack/events",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def slash_body(response_url: str, text: str = "open complaint sev3 客户卡号6222021234567890123被重复扣款") -> bytes:
    return urllib.parse.urlencode(
        {
            "command": "/incident",
            "text": text,
            "user_id": REPORTER,
            "channel_id": "C0000000001",
            "response_url": response_url,
            "trigger_id": "1.2.trigger",
        }
    ).encode()


def click_body(response_url: str) -> bytes:
    """A button click whose action id nobody handles: before the fix its error DMed whoever it named."""
    payload = {
        "type": "block_actions",
        "user": {"id": REPORTER},
        "response_url": response_url,
        "actions": [{"action_id": "no_such_action", "value": "x", "type": "button", "block_id": "b"}],
    }
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


def assert_nothing_happened(
    stack: Stack, listener: Listener, calls_before: int, caplog: pytest.LogCaptureFixture
) -> None:
    stack.bot.executor.wait_idle()
    assert listener.received == []
    assert stack.sandbox.calls[calls_before:] == []
    assert stack.sandbox.ephemerals == [] and stack.sandbox.messages == []
    with stack.bot.services.db() as s:
        assert s.scalar(select(func.count()).select_from(Incident)) == 0
    assert [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []


# int() would take the last four (sign, spaces, underscores) and the next-to-last is over its digit limit
MALFORMED_TIMESTAMPS = ["abc", "", "nan", "1e3", "-1", "9" * 5000, "+{now}", " {now}", "{now} ", "{grouped}"]


@pytest.mark.parametrize("make_body", [slash_body, click_body], ids=["slash", "click"])
@pytest.mark.parametrize(
    "timestamp",
    [*MALFORMED_TIMESTAMPS, None],
    ids=[*(t if len(t) < 20 else "huge" for t in MALFORMED_TIMESTAMPS), "missing"],
)
def test_a_malformed_or_missing_timestamp_is_refused_and_nobody_is_told(
    stack: Stack, listener: Listener, caplog: pytest.LogCaptureFixture, timestamp: str | None, make_body: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    calls_before = len(stack.sandbox.calls)
    body = make_body(listener.url)
    now = str(int(time.time()))
    timestamp = None if timestamp is None else timestamp.format(now=now, grouped=f"{now[:4]}_{now[4:]}")
    headers = {"X-Slack-Signature": signature(body, timestamp or "")}
    if timestamp is not None:
        headers["X-Slack-Request-Timestamp"] = timestamp
    status, _ = post(stack, body, headers)
    assert status == 401
    assert_nothing_happened(stack, listener, calls_before, caplog)


@pytest.mark.parametrize(
    "case", ["bad signature", "other secret", "no signature", "stale", "from the future", "uppercase hex"]
)
def test_a_bad_signature_or_a_stale_timestamp_is_refused_and_nobody_is_told(
    stack: Stack, listener: Listener, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    caplog.set_level(logging.DEBUG)
    calls_before = len(stack.sandbox.calls)
    body = slash_body(listener.url)
    now = str(int(time.time()))
    stale = str(int(time.time()) - WINDOW_SECONDS - 5)
    future = str(int(time.time()) + WINDOW_SECONDS + 5)
    headers = {
        "bad signature": {"X-Slack-Request-Timestamp": now, "X-Slack-Signature": "v0=" + "0" * 64},
        "other secret": {"X-Slack-Request-Timestamp": now, "X-Slack-Signature": signature(body, now, "guessed")},
        "no signature": {"X-Slack-Request-Timestamp": now},
        "stale": {"X-Slack-Request-Timestamp": stale, "X-Slack-Signature": signature(body, stale)},
        "from the future": {"X-Slack-Request-Timestamp": future, "X-Slack-Signature": signature(body, future)},
        "uppercase hex": {"X-Slack-Request-Timestamp": now, "X-Slack-Signature": signature(body, now).upper()},
    }[case]
    status, _ = post(stack, body, headers)
    assert status == 401
    assert_nothing_happened(stack, listener, calls_before, caplog)


def test_a_replayed_request_is_refused_within_the_window(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    general = stack.sandbox.channel_by_name("general")
    assert general is not None
    body = slash_body(stack.sandbox.response_url(general.id, REPORTER), "open outage sev3 Transfers delayed")
    now = str(int(time.time()))
    headers = {"X-Slack-Request-Timestamp": now, "X-Slack-Signature": signature(body, now)}

    first, _ = post(stack, body, headers)
    stack.bot.executor.wait_idle()
    calls_after_first = len(stack.sandbox.calls)
    replay, _ = post(stack, body, headers)
    stack.bot.executor.wait_idle()

    assert (first, replay) == (200, 401)
    assert stack.sandbox.calls[calls_after_first:] == []
    assert [c.name for c in stack.sandbox.channels.values() if c.name.startswith("inc-")] == [
        "inc-20261124-1-transfers-delayed"
    ]
    assert [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []


@pytest.mark.postgres
def test_a_replay_sent_to_another_replica_is_refused_too(postgres_url: str) -> None:
    """Two replicas share the database: the signature's row refuses the second, whichever replica gets it.
    (SQLite runs one process, so its guard is in memory.)"""
    engine = make_engine(postgres_url)
    upgrade(engine)
    db = make_session_factory(engine)
    first, second = RequestVerifier(SIGNING_SECRET, db), RequestVerifier(SIGNING_SECRET, db)
    body = slash_body("https://hooks.slack.com/commands/T1/2/3")
    now = str(int(time.time()))
    headers = {"x-slack-request-timestamp": now, "x-slack-signature": signature(body, now)}
    try:
        assert first.check(headers, body) is None
        refusal = second.check(headers, body)
        assert refusal is not None and (refusal.status, refusal.reason) == (401, "replayed signature")
        fresh = str(int(now) + 1)
        assert (
            second.check({"x-slack-request-timestamp": fresh, "x-slack-signature": signature(body, fresh)}, body)
            is None
        )
    finally:
        engine.dispose()


def test_the_replay_guard_forgets_signatures_once_they_are_stale(any_db_url: str) -> None:
    """Bounded memory: the guard (a table, or memory on SQLite) holds only signatures that could be replayed."""
    engine = make_engine(any_db_url)
    upgrade(engine)
    db = make_session_factory(engine)
    clock = [1_764_300_000.0]
    verifier = RequestVerifier(SIGNING_SECRET, db, now=lambda: clock[0])
    body = b"payload=%7B%7D"

    def count() -> int:
        return verifier.remembered()

    for offset in range(3):
        ts = str(int(clock[0]) + offset)
        assert verifier.check({"x-slack-request-timestamp": ts, "x-slack-signature": signature(body, ts)}, body) is None
    assert count() == 3
    old = str(int(clock[0]))
    clock[0] += WINDOW_SECONDS + 60
    ts = str(int(clock[0]))
    assert verifier.check({"x-slack-request-timestamp": ts, "x-slack-signature": signature(body, ts)}, body) is None
    assert count() == 1  # the three old ones are gone; replaying one is stale anyway
    with db() as s:  # on SQLite nothing is written per request; elsewhere the table is the guard
        assert int(s.scalar(select(func.count()).select_from(SeenRequest)) or 0) == (
            0 if any_db_url.startswith("sqlite") else 1
        )
    refusal = verifier.check({"x-slack-request-timestamp": old, "x-slack-signature": signature(body, old)}, body)
    assert refusal is not None and refusal.reason == "stale timestamp"
    engine.dispose()


def test_the_error_handler_never_acts_on_an_unverified_body(
    sandbox: Any, sqlite_url: str, listener: Listener, caplog: pytest.LogCaptureFixture
) -> None:
    """Even without the HTTP front (bolt driven through its own dispatch), a request that fails inside
    bolt's verification reaches the error handler, which refuses it without telling anyone."""
    caplog.set_level(logging.DEBUG)
    engine = make_engine(sqlite_url)
    upgrade(engine)
    bot = create_app(
        test_playbook(),
        make_session_factory(engine),
        client=make_web_client(sandbox.bot_token, sandbox.api_url),
        signing_secret=SIGNING_SECRET,
    )
    calls_before = len(sandbox.calls)
    try:
        for make_body in (slash_body, click_body):
            body = make_body(listener.url)
            request = BoltRequest(
                body=body.decode(),
                headers={
                    "content-type": "application/x-www-form-urlencoded",
                    "x-slack-request-timestamp": "abc",
                    "x-slack-signature": signature(body, "abc"),
                },
            )
            response = bot.app.dispatch(request)
            bot.executor.wait_idle()
            assert response.status == 401
        assert listener.received == []
        assert sandbox.calls[calls_before:] == []
        assert [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []
    finally:
        bot.executor.shutdown(wait=True)
        bot.sweeper.close()
        engine.dispose()
