"""100,000 pending deadlines: time to schedule, start-up reconcile, resident memory, and how late
reminders arrive when 1,000 fall due at the same moment (targets: reconcile ≤ 5 s, RSS ≤ 300 MB,
p99 lateness ≤ 1 s).

The database is loaded in bulk (the per-incident open path is measured by bench/open_ready.py); the
bot then starts as it would after a restart, and the real APScheduler timer fires the reminders.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import psutil
from sqlalchemy import insert

from bench.common import ROOT, percentile
from bot.core.clock import SystemClock
from bot.core.config import load_playbook
from bot.deadlines.service import next_action
from bot.services import Services
from bot.slack.gateway import SlackGateway, make_web_client
from store.db import make_engine, make_session_factory, upgrade
from store.models import Deadline, Incident, RoleAssignment

OWNERS = [f"UBENCH{n:05d}" for n in range(200)]  # a realistic spread: 200 people own the deadlines


def load(engine_url: str, total: int, due_now: int, fire_at: datetime, playbook_offsets: tuple[str, ...]) -> float:
    """Insert `total` pending deadlines on total/4 incidents; `due_now` of them remind at `fire_at`."""
    engine = make_engine(engine_url)
    upgrade(engine)
    now = datetime.now(UTC)
    per_incident = 4
    incidents = total // per_incident
    started = time.perf_counter()
    with engine.begin() as conn:
        for chunk in range(0, incidents, 5000):
            ids = range(chunk + 1, min(incidents, chunk + 5000) + 1)
            conn.execute(
                insert(Incident),
                [
                    {
                        "id": i,
                        "kind": "complaint",
                        "severity": "sev3",
                        "title": f"Bench case {i}",
                        "status": "investigating",
                        "is_drill": False,
                        "playbook_version": "bench",
                        "reporter_id": OWNERS[0],
                        "created_at": now,
                        "updated_at": now,
                        "topic_set": True,
                        "members_invited": True,
                        "welcome_posted": True,
                    }
                    for i in ids
                ],
            )
            conn.execute(
                insert(RoleAssignment),
                [
                    {"incident_id": i, "role": "customer_comms", "user_id": OWNERS[i % len(OWNERS)], "assigned_at": now}
                    for i in ids
                ],
            )
            rows = []
            for i in ids:
                for k in range(per_incident):
                    n = (i - 1) * per_incident + k
                    if n < due_now:  # 50 % of the time allowed is exactly `fire_at`
                        start, due = fire_at - timedelta(hours=1), fire_at + timedelta(hours=1)
                    else:
                        start, due = now, now + timedelta(hours=24 + n % 48)
                    d = Deadline(start_at=start, due_at=due, state="pending", reminders_done=0, snoozed_until=None)
                    rows.append(
                        {
                            "incident_id": i,
                            "key": f"d{k}",
                            "name": f"Deadline {k}",
                            "owner_role": "customer_comms",
                            "start_at": start,
                            "due_at": due,
                            "state": "pending",
                            "cadence": False,
                            "escalate": True,
                            "on_resolve": "keep",
                            "reminders_done": 0,
                            "snoozes": 0,
                            "next_action_at": next_action(d, playbook_offsets),
                        }
                    )
            conn.execute(insert(Deadline), rows)
    engine.dispose()
    return time.perf_counter() - started


def post(base: str, path: str, payload: object) -> dict[str, object]:
    request = urllib.request.Request(base + path, data=json.dumps(payload).encode())
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.load(response))


def run_round(args: argparse.Namespace, api_url: str, fault_rate: float, tmp: str) -> dict[str, float]:
    """Load, start as after a restart, let `args.due` reminders fall due at once; returns the figures."""
    base = api_url.removesuffix("api/")
    playbook = load_playbook(ROOT / "config.yaml")
    post(base, "_sandbox/reset", {})
    post(base, "_sandbox/chaos", {"rate": 0.0})

    def received() -> list[dict[str, object]]:
        with urllib.request.urlopen(base + "_sandbox/messages", timeout=30) as response:
            return list(json.load(response)["messages"])

    url = args.database or f"sqlite:///{tmp}/deadlines-{int(fault_rate * 100)}.db"
    fire_at = datetime.now(UTC) + timedelta(seconds=args.lead_seconds + 30)
    took = load(url, args.deadlines, args.due, fire_at, playbook.reminders.offsets)
    rss_before = psutil.Process(os.getpid()).memory_info().rss
    started = time.perf_counter()
    engine = make_engine(url)
    upgrade(engine)
    services = Services.build(
        playbook,
        make_session_factory(engine),
        SlackGateway(make_web_client("xoxb-sandbox-token", api_url)),
        SystemClock(),
        send_workers=16,
        timer_interval=timedelta(seconds=30),
    )
    sweeper = services.sweeper
    sweeper.sweep()  # reconcile: anything due while we were down
    scheduler = services.scheduler
    scheduler.start()
    scheduler.poke()
    reconcile = time.perf_counter() - started
    rss = psutil.Process(os.getpid()).memory_info().rss
    post(base, "_sandbox/chaos", {"rate": fault_rate, "seed": 20261128})

    wait = (fire_at - datetime.now(UTC)).total_seconds()
    time.sleep(max(0.0, wait))  # the benchmark waits for real time: it measures the real timer

    def reminders() -> list[dict[str, object]]:
        """Messages carrying reminders (a digest DM carries one line per reminder)."""
        return [m for m in received() if is_reminder(str(m["text"]))]

    def lines(messages: list[dict[str, object]]) -> list[float]:
        """Each reminder line's arrival (a message counted once, however often a retry posted it)."""
        first = {str(m["key"]): m for m in reversed(messages)}
        return [
            float(m["received"])  # type: ignore[arg-type]
            for m in first.values()
            for line in str(m["text"]).splitlines()
            if is_reminder(line)
        ]

    deadline = time.time() + 120
    while time.time() < deadline and len(lines(reminders())) < args.due:
        time.sleep(0.2)
    counts = post(base, "_sandbox/chaos", {"rate": 0.0}).get("counts")
    got = reminders()
    lateness = [at - fire_at.timestamp() for at in lines(got)]
    scheduler.stop()
    sweeper.close()
    engine.dispose()
    return {
        "load": took,
        "reconcile": reconcile,
        "rss": rss / 2**20,
        "grew": (rss - rss_before) / 2**20,
        "sent": len(lateness),
        "duplicates": len(got) - len({m["key"] for m in got}),
        "p50": percentile(lateness, 50),
        "p99": percentile(lateness, 99),
        "max": max(lateness) if lateness else float("nan"),
        "faults": float(sum(int(str(v)) for v in dict(counts).values())) if isinstance(counts, dict) else 0.0,
    }


def is_reminder(text: str) -> bool:
    """A reminder line in either language: a DM speaks its recipient's (their Slack locale, or the playbook's
    when the lookup failed, as it does under injected faults)."""
    return "Reminder" in text or "提醒：" in text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deadlines", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=1_000)
    parser.add_argument("--database", help="a database URL (default: a fresh SQLite file per round)")
    parser.add_argument("--lead-seconds", type=float, default=8.0, help="how far ahead the 1,000 fall due")
    parser.add_argument("--fault-rate", type=float, default=0.2, help="share of Slack calls failing in round two")
    args = parser.parse_args()
    # Slack is another machine: the sandbox runs in its own process so it does not share the bot's GIL
    sandbox_proc = subprocess.Popen([sys.executable, "-m", "bot.sandbox"], stdout=subprocess.PIPE, text=True)
    assert sandbox_proc.stdout is not None
    api_url = sandbox_proc.stdout.readline().strip()
    post(api_url.removesuffix("api/"), "_sandbox/users", [{"id": u, "name": u.lower()} for u in OWNERS])
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rounds = [(0.0, run_round(args, api_url, 0.0, tmp))]
            if not args.database:
                rounds.append((args.fault_rate, run_round(args, api_url, args.fault_rate, tmp)))
    finally:
        sandbox_proc.kill()
    clean = rounds[0][1]
    print(f"scheduled {args.deadlines:,} pending deadlines in {clean['load']:.2f} s (bulk)")
    print(f"start-up reconcile: {clean['reconcile']:.2f} s")
    print(f"resident memory after start-up: {clean['rss']:.0f} MB (the start-up added {clean['grew']:.0f} MB)")
    print(f"{args.due:,} reminders falling due at once:")
    print("  Slack faults       | reminders | duplicate posts | lateness p50 | p99      | max")
    for rate, r in rounds:
        label = f"{rate:.0%} ({r['faults']:.0f} injected)" if rate else "none"
        print(
            f"  {label:<18} | {r['sent']:>9.0f} | {r['duplicates']:>15.0f} | {r['p50'] * 1000:>9.0f} ms "
            f"| {r['p99'] * 1000:>5.0f} ms | {r['max'] * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
