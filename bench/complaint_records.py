"""What complaint records cost: recording a complaint with its four deadlines (one transaction) at a paced
200 per second and in a burst of 10,000, and the KPI report's complaint section over many complaints, on
SQLite and on PostgreSQL. In-process (the service the intake API calls), so the figures are the store's share
of the API's latency, not the HTTP front's.

Run: `python -m bench.complaint_records [--rate 200] [--seconds 10] [--burst 10000] [--kpi 100000]
[--stores sqlite postgresql] [--baseline]` (`--baseline`: the same paced load without deadlines first).
"""

from __future__ import annotations

import argparse
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from sqlalchemy import Engine, text

from bench.common import ROOT, summary
from bench.kpi import at, database, numbers
from bot.core.clock import FixedClock
from bot.core.config import load_playbook
from bot.deadlines.service import Deadlines
from bot.intake.records import ComplaintRecords
from bot.intake.service import ComplaintIntake, parse_complaint
from store.complaint_records import complaint_kpi_rows
from store.db import make_engine, make_session_factory, upgrade

CARD = "6222021234567890123"


def body(i: int, prefix: str) -> dict[str, object]:
    return {
        "external_id": f"{prefix}-{i}",
        "received_at": "2026-11-28T09:30:00+08:00",
        "contact_channel": ("phone", "email", "online_chat", "branch", "app")[i % 5],
        "category": ("technical", "service", "policy", "financial")[i % 4],
        "product": "借记卡",
        "summary": f"客户卡号{CARD}被重复扣款",
        "customer_ref": f"卡号{CARD}",
    }


def services(engine: Engine) -> tuple[ComplaintIntake, ComplaintRecords]:
    playbook = load_playbook(ROOT / "config.yaml")
    db = make_session_factory(engine)
    clock = FixedClock(datetime(2026, 11, 28, 2, 0, tzinfo=UTC))
    records = ComplaintRecords(db, clock, playbook, Deadlines(playbook))
    return ComplaintIntake(db, clock, playbook, after_record=(records.add_deadlines,)), records


def paced(intake: ComplaintIntake, rate: int, seconds: int, workers: int = 8, prefix: str = "paced") -> list[float]:
    """`rate` complaints a second for `seconds`, each started on its schedule; the latency of each."""
    latencies: list[float] = []
    lock = threading.Lock()

    def one(i: int, due: float) -> None:
        time.sleep(max(0.0, due - time.perf_counter()))
        started = time.perf_counter()
        intake.record(parse_complaint(body(i, prefix)))
        with lock:
            latencies.append(time.perf_counter() - max(started, due))

    start = time.perf_counter() + 0.1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i in range(rate * seconds):
            pool.submit(one, i, start + i / rate)
    return latencies


def burst(intake: ComplaintIntake, n: int, workers: int = 8) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda i: intake.record(parse_complaint(body(i, "burst"))), range(n)))
    return time.perf_counter() - started


def generate(engine: Engine, n: int) -> None:
    """`n` complaints over 2025 with their deadlines and events, in SQL."""
    d = engine.dialect.name
    received = "((n * 37) % 525600)"
    statements = [
        f"""INSERT INTO complaints (id, external_id, fingerprint, received_at, contact_channel, category, product,
                summary, customer_ref, created_at)
            SELECT n, 'gen-' || n, 'x', {at(d, received)},
                CASE n % 5 WHEN 0 THEN 'phone' WHEN 1 THEN 'email' WHEN 2 THEN 'online_chat' WHEN 3 THEN 'branch'
                    ELSE 'app' END,
                CASE n % 4 WHEN 0 THEN 'technical' WHEN 1 THEN 'service' WHEN 2 THEN 'policy' ELSE 'financial' END,
                'p', 's', 'r', {at(d, received)}
            FROM {numbers(d)}""",
        f"""INSERT INTO complaint_deadlines (complaint_id, key, received_at, clock, start_at, due_at, state, met_at)
            SELECT n, CASE k WHEN 1 THEN 'first_response' WHEN 2 THEN 'investigation' ELSE 'solution' END,
                {at(d, received)}, 'calendar', {at(d, received)},
                {at(d, received + " + CASE WHEN k = 1 THEN 1440 ELSE 2880 END")},
                CASE WHEN (n * k) % 10 < 8 THEN 'met' ELSE 'missed' END,
                {at(d, received + " + (n * k * 7) % 2000")}
            FROM {numbers(d)} CROSS JOIN (SELECT 1 AS k UNION ALL SELECT 2 UNION ALL SELECT 3) ks""",
        f"""INSERT INTO complaint_events (complaint_id, type, received_at, at, score, recorded_at)
            SELECT n, CASE k WHEN 1 THEN 'first_response' WHEN 2 THEN 'closed' ELSE 'satisfaction' END,
                {at(d, received)},
                {at(d, received + " + k * (n % 1440)")}, CASE WHEN k = 3 THEN 1 + n % 5 END,
                {at(d, received + " + k * (n % 1440)")}
            FROM {numbers(d)} CROSS JOIN (SELECT 1 AS k UNION ALL SELECT 2 UNION ALL SELECT 3) ks""",
    ]
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement), {"n": n})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE" if d == "postgresql" else "ANALYZE"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--burst", type=int, default=10_000)
    parser.add_argument("--kpi", type=int, default=100_000)
    parser.add_argument("--stores", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--baseline", action="store_true", help="also record without deadlines, for comparison")
    args = parser.parse_args()
    for store in args.stores:
        with database(store) as url:
            engine = make_engine(url)
            upgrade(engine)
            intake, _records = services(engine)
            if args.baseline:  # the same load without the deadlines, on the same database: their share
                hooks, intake.after_record = intake.after_record, ()
                latencies = paced(intake, args.rate, args.seconds, prefix="bare")
                print(summary(f"{store}: record without deadlines at {args.rate}/s for {args.seconds}s", latencies))
                intake.after_record = hooks
            latencies = paced(intake, args.rate, args.seconds)
            print(summary(f"{store}: record with deadlines at {args.rate}/s for {args.seconds}s", latencies))
            took = burst(intake, args.burst)
            with engine.connect() as conn:
                complaints = conn.execute(text("SELECT COUNT(*) FROM complaints")).scalar()
                deadlines = conn.execute(text("SELECT COUNT(*) FROM complaint_deadlines")).scalar()
            print(
                f"{store}: burst of {args.burst} in {took:.1f} s ({args.burst / took:.0f}/s); "
                f"{complaints} complaints, {deadlines} deadlines recorded"
            )
            engine.dispose()
        with database(store) as url:
            engine = make_engine(url)
            upgrade(engine)
            generate(engine, args.kpi)
            db = make_session_factory(engine)
            for label, (start, end) in {
                "a month": (datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC)),
                "the year": (datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)),
            }.items():
                took = float("inf")
                for _ in range(3):  # the best of three: a cold first read measures the cache, not the query
                    with db() as s:
                        started = time.perf_counter()
                        rows = complaint_kpi_rows(s, start, end, 4)
                        took = min(took, time.perf_counter() - started)
                received = sum(n for *_, n in rows.by_channel_category)
                print(
                    f"{store}: complaint KPIs over {label} ({received} of {args.kpi} complaints): {took * 1000:.0f} ms"
                )
            engine.dispose()


if __name__ == "__main__":
    main()
