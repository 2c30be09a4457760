"""Slash-command ack latency at a steady 20 commands/s, against a bare bolt app measured in the same run
(target: p99 ≤ 1.5× the bare app's).

A realistic mix: every fortieth command opens an incident (whose Slack work then runs in the background; at
the default 20/s for 30 s that is 15 channels, inside Slack's ~20 channel creations a minute, beyond which the
bot queues them), the rest are updates, severity changes and status look-ups inside open incidents.

Slack is another machine: the Slack test server runs in its own process (as in bench.deadlines), so the
bot's background Slack calls are answered outside the bot's interpreter, as they are in production. The bare
app and the bot are served the same way (waitress) from this process, one after the other, by the same
load generator.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import secrets
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient

from bench.common import PEOPLE, ROOT, percentile, summary
from bot.app import Bot, create_app
from bot.core.clock import SystemClock
from bot.core.config import load_playbook
from bot.sandbox.driver import Reply, sign
from bot.slack.gateway import make_web_client
from bot.slack.web import HttpServer, make_wsgi
from store.db import make_engine, make_session_factory, upgrade

TOKEN = "xoxb-sandbox-token"


def admin(base: str, path: str, data: Any) -> dict[str, Any]:
    """A call to the Slack test server's own admin endpoints (seeding, response URLs)."""
    request = urllib.request.Request(
        base + path, data=json.dumps(data).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        result: dict[str, Any] = json.loads(response.read())
    return result


@contextmanager
def slack_process() -> Iterator[str]:
    """The Slack test server in its own process; yields its base URL (…/api/ is the Web API)."""
    proc = subprocess.Popen([sys.executable, "-m", "bot.sandbox"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        yield proc.stdout.readline().strip().removesuffix("api/")
    finally:
        proc.kill()
        proc.wait()


class Sender:
    """Signed slash commands, as Slack sends them, to one app."""

    def __init__(self, url: str, secret: str, base: str, channels: dict[str, str]) -> None:
        self.url, self.secret, self.base, self.channels = url.rstrip("/") + "/slack/events", secret, base, channels
        self.serial = itertools.count(1)
        self.response_urls = {
            c: admin(base, "_sandbox/response_url", {"channel": c, "user": PEOPLE[0]})["url"] for c in channels.values()
        }

    def slash(self, channel: str, text: str) -> Reply:
        form = {
            "token": "legacy-unused",
            "team_id": "TSANDBOX01",
            "channel_id": channel,
            "channel_name": "bench",
            "user_id": PEOPLE[0],
            "user_name": "bench.user0",
            "command": "/incident",
            "text": text,
            "api_app_id": "ASANDBOX01",
            "response_url": self.response_urls[channel],
            "trigger_id": f"{next(self.serial)}.{int(time.time())}.trigger",  # each body differs, as Slack's do
        }
        body = urllib.parse.urlencode(form).encode()
        ts = int(time.time())
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": sign(self.secret, body, ts),
        }
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return Reply(response.status, response.read().decode(), time.perf_counter() - started)
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, exc.read().decode(), time.perf_counter() - started)


def bare_bolt(secret: str, api_url: str) -> HttpServer:
    """The baseline: a bolt app that only acks /incident, verified and served the same way (waitress)."""
    app = App(
        signing_secret=secret,
        client=WebClient(token=TOKEN, base_url=api_url),
        token_verification_enabled=False,
        logger=logging.getLogger("bare-bolt"),
    )

    @app.command("/incident")
    def ack_only(ack: Any) -> None:
        ack("ok")

    handler = SlackRequestHandler(app, path="/slack/events")
    return HttpServer(handler).start()


@contextmanager
def incident_desk(api_url: str, secret: str, tmp: str) -> Iterator[tuple[Bot, HttpServer]]:
    """The bot on the shipped playbook and a fresh SQLite file, talking to the Slack test server over HTTP."""
    engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
    upgrade(engine)
    bot = create_app(
        load_playbook(ROOT / "config.yaml"),
        make_session_factory(engine),
        client=make_web_client(TOKEN, api_url),
        signing_secret=secret,
        clock=SystemClock(),
    )
    http = HttpServer(make_wsgi(bot)).start()
    try:
        yield bot, http
    finally:
        http.stop()
        bot.executor.shutdown(wait=True)
        engine.dispose()


def measure(send: Callable[[int], Reply], rate: float, seconds: float) -> tuple[list[float], int]:
    """Send at a steady rate from a pool (the load generator paces itself); returns latencies, non-200s."""
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()

    def one(n: int) -> None:
        nonlocal failures
        reply = send(n)
        with lock:
            latencies.append(reply.seconds)
            failures += reply.status != 200

    total = int(rate * seconds)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=32) as pool:
        for i in range(total):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)  # pacing the load generator, not waiting for the bot
            pool.submit(one, i)
    return latencies, failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=20.0, help="commands per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to send, for each of the two apps")
    parser.add_argument("--open-every", type=int, default=40, help="every Nth command opens an incident")
    args = parser.parse_args()
    secret = secrets.token_hex(16)
    with slack_process() as base, TemporaryDirectory() as tmp:
        api_url = base + "api/"
        admin(base, "_sandbox/users", [{"id": u, "name": f"bench.user{i}"} for i, u in enumerate(PEOPLE)])
        channels = {
            c["name"]: c["id"]
            for c in admin(base, "_sandbox/channels", [{"name": "general", "members": PEOPLE}])["channels"]
        }

        bare = bare_bolt(secret, api_url)
        try:
            to_bare = Sender(bare.url, secret, base, channels)
            baseline, bare_failures = measure(
                lambda n: to_bare.slash(channels["general"], f"status {n}"), args.rate, args.seconds
            )
        finally:
            bare.stop()

        with incident_desk(api_url, secret, tmp) as (bot, http):
            warm = Sender(http.url, secret, base, channels)
            warm.slash(channels["general"], "open outage sev2 Warm-up incident")
            bot.executor.wait_idle(60)
            channels = {c["name"]: c["id"] for c in admin(base, "_sandbox/channels", [])["channels"]}
            incident = next(cid for name, cid in channels.items() if name.startswith("inc-"))
            to_bot = Sender(http.url, secret, base, channels)
            to_bot.slash(incident, f"assign lead <@{PEOPLE[0]}>")
            bot.executor.wait_idle(60)

            def bot_command(n: int) -> Reply:
                if n % args.open_every == 0:
                    return to_bot.slash(channels["general"], f"open complaint sev3 Bench complaint {n}")
                text = (f"update progress note {n}", "status", "sev 2" if n % 2 else "sev 3")[n % 3]
                return to_bot.slash(incident, text)

            latencies, failures = measure(bot_command, args.rate, args.seconds)
            bot.executor.wait_idle(120)
    label = f"at {args.rate:g} commands/s over {args.seconds:g} s"
    print(summary(f"bare bolt ack latency {label}", baseline))
    print(summary(f"incident-desk ack latency {label}", latencies))
    ratio = percentile(latencies, 99) / percentile(baseline, 99)
    print(f"p99 ratio incident-desk / bare bolt: {ratio:.2f}x (target ≤ 1.5x)")
    print(f"non-200 answers: {failures} (bare bolt: {bare_failures})")


if __name__ == "__main__":
    main()
