"""Slash-command ack latency at a steady 20 commands/s, against a bare bolt app measured in the same run
(target: p99 ≤ 1.5× the bare app's).

A realistic mix: every tenth command opens an incident (whose Slack work then runs in the background),
the rest are updates, severity changes and status look-ups inside open incidents.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient

from bench.common import PEOPLE, bench_stack, percentile, summary
from bot.sandbox.driver import Reply, SlackDriver
from bot.slack.web import HttpServer


def bare_bolt(secret: str, api_url: str) -> HttpServer:
    """The baseline: a bolt app that only acks /incident, verified and served the same way (waitress)."""
    app = App(
        signing_secret=secret,
        client=WebClient(token="xoxb-sandbox-token", base_url=api_url),
        token_verification_enabled=False,
        logger=logging.getLogger("bare-bolt"),
    )

    @app.command("/incident")
    def ack_only(ack: Any) -> None:
        ack("ok")

    handler = SlackRequestHandler(app, path="/slack/events")
    return HttpServer(handler).start()


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
    args = parser.parse_args()
    with bench_stack() as stack:
        general = stack.sandbox.channel_by_name("general")
        assert general is not None
        stack.driver.slash(PEOPLE[0], general.id, "open outage sev2 Warm-up incident")
        channels = [c.id for c in stack.sandbox.channels.values() if c.name.startswith("inc-")]
        stack.driver.slash(PEOPLE[0], channels[0], f"assign lead <@{PEOPLE[0]}>")

        bare = bare_bolt(stack.driver.signing_secret, stack.sandbox.api_url)
        bare_driver = SlackDriver(stack.sandbox, bare.url, stack.driver.signing_secret)
        try:
            baseline, bare_failures = measure(
                lambda n: bare_driver.slash(PEOPLE[0], general.id, f"status {n}", wait=False), args.rate, args.seconds
            )
        finally:
            bare.stop()

        def bot_command(n: int) -> Reply:
            if n % 10 == 0:
                return stack.driver.slash(PEOPLE[0], general.id, f"open complaint sev3 Bench complaint {n}", wait=False)
            text = (f"update progress note {n}", "status", "sev 2" if n % 2 else "sev 3")[n % 3]
            return stack.driver.slash(PEOPLE[0], channels[0], text, wait=False)

        latencies, failures = measure(bot_command, args.rate, args.seconds)
        stack.bot.executor.wait_idle(120)
        label = f"at {args.rate:g} commands/s over {args.seconds:g} s"
        print(summary(f"bare bolt ack latency {label}", baseline))
        print(summary(f"incident-desk ack latency {label}", latencies))
        ratio = percentile(latencies, 99) / percentile(baseline, 99)
        print(f"p99 ratio incident-desk / bare bolt: {ratio:.2f}x (target ≤ 1.5x)")
        print(f"non-200 answers: {failures} (bare bolt: {bare_failures})")


if __name__ == "__main__":
    main()
