"""The HTTP front's public side: the status page's links come from INCIDENT_DESK_PUBLIC_URL (or are
relative), never from a forged Host header, and no cache may keep a copy to serve without asking; in
Socket Mode a side server on $PORT serves /healthz and the status page but refuses Slack events."""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.cli import build_runtime
from bot.core.config import ConfigError, Settings
from bot.sandbox.driver import sign
from bot.sandbox.server import SlackSandbox
from bot.slack.web import HttpServer, make_wsgi
from tests.conftest import ROOT, SIGNING_SECRET, TECH, Stack, test_playbook
from tests.test_status_page import publish

PUBLIC = "https://status.example-bank.cn"
FORGED = {"Host": "evil.example", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "gopher"}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    text: str


def fetch(
    url: str, path: str, headers: dict[str, str] | None = None, *, method: str = "GET", data: bytes | None = None
) -> Answer:
    """A request with exactly the headers given (http.client lets a test forge Host)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        conn.request(method, path, body=data, headers=headers or {})
        response = conn.getresponse()
        headers_in = {name.lower(): value for name, value in response.getheaders()}
        return Answer(response.status, headers_in, response.read().decode())
    finally:
        conn.close()


def links(text: str) -> list[str]:
    return re.findall(r'(?:href|src)="([^"]*)"', text) + re.findall(r"<id>([^<]*)</id>", text)


@pytest.fixture
def public_front(stack: Stack) -> Iterator[HttpServer]:
    """The same bot behind a front configured with its public address."""
    server = HttpServer(make_wsgi(stack.bot, public_url=PUBLIC + "/")).start()
    yield server
    server.stop()


def test_links_come_from_the_public_url_whatever_the_host_header_says(stack: Stack, public_front: HttpServer) -> None:
    outage = stack.open("outage sev3 Transfers delayed").id
    publish(stack, outage, TECH, "initial status_page")
    for path in ("/status", "/status?lang=en", "/status/feed.atom"):
        text = fetch(public_front.url, path, FORGED).text
        assert "evil.example" not in text and "gopher" not in text
        found = links(text)
        assert found, path
        assert all(link.startswith(PUBLIC + "/status") for link in found), (path, found)
    feed = fetch(public_front.url, "/status/feed.atom", FORGED).text
    assert f'<link href="{PUBLIC}/status/feed.atom" rel="self" />' in feed
    assert f"<id>{PUBLIC}/status#notice-" in feed


def test_without_a_public_url_links_are_relative_and_the_host_header_is_ignored(stack: Stack) -> None:
    outage = stack.open("outage sev3 Transfers delayed").id
    publish(stack, outage, TECH, "initial status_page")
    page = fetch(stack.http.url, "/status", FORGED).text
    feed = fetch(stack.http.url, "/status/feed.atom", FORGED).text
    for text in (page, feed):
        assert "evil.example" not in text
    assert all(link.startswith("/status") for link in links(page)), links(page)
    assert '<link href="/status/feed.atom" rel="self" />' in feed
    # an Atom id must be an absolute IRI: without an address, a stable URN stands in
    assert re.findall(r"<id>([^<]*)</id>", feed)[:2] == [
        "urn:incident-desk:status",
        "urn:incident-desk:status#notice-1",
    ]


def test_the_status_page_may_not_be_kept_by_a_cache_and_revalidates_cheaply(stack: Stack) -> None:
    for path in ("/status", "/status.json", "/status/feed.atom"):
        first = fetch(stack.http.url, path, FORGED)
        assert first.status == 200
        assert first.headers["cache-control"] == "no-cache"
        etag = first.headers["etag"]
        assert etag
        again = fetch(stack.http.url, path, {"If-None-Match": etag})
        assert (again.status, again.text) == (304, "")
    stack.open("outage sev3 Transfers delayed")
    publish(stack, stack.incident_channel(1).id, TECH, "initial status_page")
    changed = fetch(stack.http.url, "/status.json", {"If-None-Match": etag})
    assert changed.status == 200 and json.loads(changed.text)["status"] == "degraded"


@pytest.mark.parametrize("value", ["status.example-bank.cn", "ftp://status.example-bank.cn", "https://x.cn/?a=1"])
def test_a_public_url_that_is_not_a_base_url_is_refused_with_its_name(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"INCIDENT_DESK_PUBLIC_URL": value})
    assert caught.value.problems[0].startswith(f"INCIDENT_DESK_PUBLIC_URL: {value!r} is not a base URL")
    assert Settings.from_env({"INCIDENT_DESK_PUBLIC_URL": PUBLIC + "/"}).public_url == PUBLIC


def test_socket_mode_serves_health_and_the_status_page_but_no_slack_events(
    sandbox: SlackSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `incident-desk run` builds with SLACK_APP_TOKEN set, without connecting to Slack."""
    monkeypatch.chdir(ROOT)  # the playbook's templates are found from the working directory, as in `run`
    settings = Settings(
        bot_token=sandbox.bot_token,
        app_token="xapp-1-A0000000000-0000000000000-test",
        signing_secret=SIGNING_SECRET,  # even when one is set, the side server takes no events
        slack_api_url=sandbox.api_url,
        database_url=f"sqlite:///{tmp_path / 'socket.db'}",
        port=0,
        public_url=PUBLIC,
    )
    runtime = build_runtime(settings, test_playbook(), host="127.0.0.1")
    assert runtime.socket is not None
    runtime.http.start()
    try:
        health = fetch(runtime.http.url, "/healthz")
        assert (health.status, json.loads(health.text)) == (200, {"ok": True, "database": "ok"})
        status = fetch(runtime.http.url, "/status?lang=en")
        assert status.status == 200 and "Example Bank service status" in status.text
        assert f'href="{PUBLIC}/status/feed.atom"' in status.text
        assert fetch(runtime.http.url, "/status.json").status == 200

        form = urllib.parse.urlencode({"command": "/incident", "text": "help", "user_id": "U1"}).encode()
        ts = int(time.time())
        signed = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": sign(SIGNING_SECRET, form, ts),
        }
        refused = fetch(runtime.http.url, "/slack/events", signed, method="POST", data=form)
        assert refused.status == 404
        assert [name for name, _ in sandbox.calls if name != "auth.test"] == []
    finally:
        runtime.socket.close()
        runtime.http.stop()
        runtime.bot.executor.shutdown(wait=True)
        runtime.bot.sweeper.close()
        runtime.engine.dispose()
