"""Complaint intake at volume, through real HTTP to `POST /api/v1/complaints`, on SQLite and PostgreSQL.

Sustained: `--rate` complaints a second (default 200) for `--seconds` (default 60) from client threads in
another process (the bot's process keeps its own cores' share): achieved rate, latency p50/p95/p99 (from the
moment each was due to be sent, so a slow server is not hidden by clients waiting for it) and lost (sent −
recorded in the store). Burst: `--burst` complaints (default 10,000) from `--clients` concurrent clients as fast
as they go: the time to record them all, whether all are recorded, and the Slack calls the test server saw per
method — with Slack's published limits enforced (429 + Retry-After): their count, the most in any minute (and
per second in one channel), and the 429s answered (0: the bot paced itself).
The burst runs first, on an empty store, so it is what crosses the surge plan's warning line: the time from the
crossing to the proposal in the leadership channel is printed too.
Run: `python -m bench.intake [--seconds 60] [--rate 200] [--burst 10000] [--stores sqlite postgresql]`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import secrets
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from bench.common import PEOPLE, ROOT, database, percentile
from bot.app import Bot, create_app
from bot.core.clock import SystemClock
from bot.core.config import Playbook, load_playbook
from bot.sandbox.server import SlackSandbox
from bot.slack.gateway import make_web_client
from bot.slack.web import HttpServer, make_wsgi
from store.db import make_engine, make_session_factory, upgrade
from store.volume import count_complaints

TOKEN = "bench-intake-" + secrets.token_hex(8)
PATH = "/api/v1/complaints"
CATEGORIES = ("payments", "cards", "mobile_app", "loans", "deposits")
CHANNELS = ("phone", "email", "online_chat", "branch", "app")


SHANGHAI = timezone(timedelta(hours=8))


def complaint(prefix: str, n: int) -> bytes:
    """One complaint, with a card number glued to Chinese text in the summary (masked in the answer)."""
    body = {
        "external_id": f"{prefix}-{n:06d}",
        "received_at": datetime.now(SHANGHAI).isoformat(),  # now: the surge plan counts by when received
        "contact_channel": CHANNELS[n % len(CHANNELS)],
        "category": CATEGORIES[n % len(CATEGORIES)],
        "product": "借记卡",
        "summary": f"客户卡号6222021234567{n:06d}被重复扣款，第{n}笔",
        "customer_ref": f"卡号6222021234567{n:06d}",
        "severity": "sev4",
        "amount": "88.00",
    }
    return json.dumps(body, ensure_ascii=False).encode()


@dataclass
class Load:
    latencies: list[float]  # seconds, from when each was due to go out to its answer
    service: list[float]  # seconds, from when it was sent to its answer (without the client's own lag)
    answered_at: list[float]  # wall-clock moment of each answer
    statuses: dict[int, int]
    errors: int
    elapsed: float  # first send to last answer


@dataclass(frozen=True)
class Plan:
    """What one client process sends: `count` complaints numbered from `first`, `rate` a second (0: as fast
    as `clients` threads go)."""

    url: str
    token: str
    prefix: str
    first: int
    count: int
    rate: float
    clients: int


def _drive(plan: Plan, out: Any) -> None:
    """Client process: send the plan, put (latencies, statuses, errors, elapsed) on `out`."""
    url, prefix, first, count, rate = plan.url, plan.prefix, plan.first, plan.count, plan.rate
    clients = plan.clients
    parts = urllib.parse.urlsplit(url)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {plan.token}"}
    lock = threading.Lock()
    taken = iter(range(count))
    latencies: list[float] = []
    service: list[float] = []
    answered_at: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    start = time.perf_counter() + 0.2

    def client() -> None:
        nonlocal errors
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
        while True:
            with lock:
                i = next(taken, None)
            if i is None:
                break
            due = start + i / rate if rate else time.perf_counter()
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent = time.perf_counter()
            try:
                conn.request("POST", PATH, body=complaint(prefix, first + i), headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
                with lock:
                    errors += 1
                continue
            answered = time.perf_counter()
            with lock:
                latencies.append(answered - due)
                service.append(answered - sent)
                answered_at.append(time.time())
                statuses[status] = statuses.get(status, 0) + 1
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put((latencies, service, answered_at, statuses, errors, time.perf_counter() - start))


def drive(url: str, prefix: str, count: int, *, rate: float, clients: int, processes: int = 1) -> Load:
    """Send from `processes` client processes (spawned: none shares the bot's interpreter)."""
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    share = count // processes
    procs = []
    for p in range(processes):
        n = share if p < processes - 1 else count - share * (processes - 1)
        plan = Plan(url, TOKEN, prefix, p * share, n, rate / processes, clients // processes)
        procs.append(context.Process(target=_drive, args=(plan, out)))
    for proc in procs:
        proc.start()
    results = [out.get() for _ in procs]
    for proc in procs:
        proc.join()
    load = Load([], [], [], {}, 0, 0.0)
    for latencies, service, answered_at, statuses, errors, elapsed in results:
        load.latencies += latencies
        load.service += service
        load.answered_at += answered_at
        for status, n in statuses.items():
            load.statuses[status] = load.statuses.get(status, 0) + n
        load.errors += errors
        load.elapsed = max(load.elapsed, elapsed)
    return load


@contextmanager
def intake_stack(url: str, threads: int) -> Iterator[tuple[Bot, SlackSandbox, str]]:
    """The shipped playbook's bot with its timer running, the intake API on, and the Slack test server
    enforcing Slack's published limits on real time."""
    sandbox = SlackSandbox(limits=True).start()
    engine = make_engine(url)
    upgrade(engine)
    for i, user in enumerate(PEOPLE):
        sandbox.add_user(user, f"bench.user{i}")
    sandbox.add_channel("general", PEOPLE)
    playbook = load_playbook(ROOT / "config.yaml")
    sandbox.add_channel(leadership_channel(playbook), [*PEOPLE, sandbox.bot_user_id])
    bot = create_app(
        playbook,
        make_session_factory(engine),
        client=make_web_client(sandbox.bot_token, sandbox.api_url),
        signing_secret=secrets.token_hex(16),
        clock=SystemClock(),
    )
    bot.scheduler.start()
    http = HttpServer(make_wsgi(bot, intake_token=TOKEN), threads=threads).start()
    try:
        yield bot, sandbox, http.url
    finally:
        http.stop()
        bot.scheduler.stop()
        bot.executor.shutdown(wait=True)
        sandbox.stop()
        engine.dispose()


def leadership_channel(playbook: Playbook) -> str:
    """Where the surge plan posts its proposal (the default when the playbook has no surge section)."""
    return str(getattr(getattr(playbook, "surge", None), "leadership_channel", "incident-leadership"))


def warning_line(playbook: Playbook) -> int | None:
    """The overall warning line's count (complaints in its window), if the playbook has one."""
    for line in getattr(getattr(playbook, "surge", None), "warning_lines", ()):
        if getattr(line, "category", None) is None and getattr(line, "contact_channel", None) is None:
            return int(line.count)
    return None


def proposal_delay(bot: Bot, sandbox: SlackSandbox, load: Load) -> str:
    """How long after the crossing (the answer that took intake to the overall line) the proposal arrived."""
    line = warning_line(bot.services.playbook)
    channel = sandbox.channel_by_name(leadership_channel(bot.services.playbook))
    if line is None or channel is None or len(load.answered_at) < line:
        return "no overall warning line in the playbook"
    crossing = sorted(load.answered_at)[line - 1]
    posts = [m.received for m in sandbox.channel_messages(channel.id) if m.user == sandbox.bot_user_id]
    if not posts:
        return f"none posted in #{channel.name} (this build has no proposal yet?)"
    return f"posted in #{channel.name} {min(posts) - crossing:.1f} s after the crossing ({line} complaints)"


def recorded(bot: Bot, prefix: str) -> int:
    with bot.services.db() as s:
        return count_complaints(s, prefix)


def ms(values: list[float], p: float) -> str:
    return f"{percentile([v * 1000 for v in values], p):.1f}"


def sustained(store: str, bot: Bot, url: str, args: argparse.Namespace) -> None:
    prefix = f"S{secrets.token_hex(3)}"
    count = int(args.rate * args.seconds)
    load = drive(url, prefix, count, rate=args.rate, clients=args.clients)
    lost = count - recorded(bot, prefix)
    print(
        f"intake sustained, {store}: target {args.rate:g}/s for {args.seconds:g} s — achieved "
        f"{len(load.latencies) / load.elapsed:.0f}/s; latency p50 {ms(load.latencies, 50)} ms, "
        f"p95 {ms(load.latencies, 95)} ms, p99 {ms(load.latencies, 99)} ms, max {ms(load.latencies, 100)} ms "
        f"(sent → answered: p50 {ms(load.service, 50)} ms, p99 {ms(load.service, 99)} ms); "
        f"answers {dict(sorted(load.statuses.items()))}, connection errors {load.errors}; lost {lost}",
        flush=True,
    )


def burst(store: str, bot: Bot, sandbox: SlackSandbox, url: str, args: argparse.Namespace) -> None:
    prefix = f"B{secrets.token_hex(3)}"
    load = drive(url, prefix, args.burst, rate=0, clients=args.clients * 2, processes=2)
    deadline = time.perf_counter() + 30
    stored = recorded(bot, prefix)
    while stored < args.burst and time.perf_counter() < deadline:
        time.sleep(0.2)
        stored = recorded(bot, prefix)
    print(
        f"intake burst, {store}: {args.burst:,} complaints from {args.clients * 2} clients recorded in "
        f"{load.elapsed:.1f} s ({args.burst / load.elapsed:.0f}/s); recorded {stored:,} "
        f"({'all' if stored == args.burst else f'MISSING {args.burst - stored}'}); latency p50 "
        f"{ms(load.latencies, 50)} ms, p99 {ms(load.latencies, 99)} ms; answers {dict(sorted(load.statuses.items()))}",
        flush=True,
    )
    time.sleep(args.settle)  # what the complaints set off in Slack goes out at the bot's pace
    stats = sandbox.call_stats()
    calls = ", ".join(
        f"{method} {int(s['calls'])} (max {int(s['max_per_minute'])}/min"
        + (f", {int(s['max_per_second_one_channel'])}/s in one channel" if method == "chat.postMessage" else "")
        + f", 429 {int(s['throttled'])})"
        for method, s in stats.items()
    )
    print(f"  Slack calls with Slack's limits enforced: {calls or 'none'}", flush=True)
    print(f"  surge warning proposal: {proposal_delay(bot, sandbox, load)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--burst", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=32, help="client threads (the burst uses twice as many)")
    parser.add_argument("--threads", type=int, default=8, help="the bot's HTTP worker threads")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds to let Slack work drain after the burst")
    parser.add_argument("--stores", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    for store in args.stores:
        with database(store) as db_url, intake_stack(db_url, args.threads) as (bot, sandbox, url):
            burst(store, bot, sandbox, url, args)  # first: the warning line is crossed in the burst
            sustained(store, bot, url, args)


if __name__ == "__main__":
    main()
