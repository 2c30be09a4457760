"""How long the KPI report takes over 100,000 and 1,000,000 incidents (with their deadlines, timeline rows,
escalations and ratings) on SQLite and on PostgreSQL.

History is generated in SQL (generate_series / a recursive CTE) so loading a million incidents takes
seconds, not hours. Run: `python -m bench.kpi [--sizes 100000 1000000] [--stores sqlite postgresql]`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, text

from bench.common import database
from bot.review.kpi import kpi_report, refresh_rollup
from store.db import make_engine, make_session_factory, upgrade

YEAR_MINUTES = 365 * 24 * 60
WHOLE = (datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
MONTH = (datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC))  # UTC: mostly queried directly
SHANGHAI = ZoneInfo("Asia/Shanghai")  # the playbook's timezone: its days and months
LOCAL_YEAR = (datetime(2025, 1, 1, tzinfo=SHANGHAI), datetime(2026, 1, 1, tzinfo=SHANGHAI))


def numbers(dialect: str) -> str:
    """A row source `g(n)` of 1..:n."""
    if dialect == "postgresql":
        return "generate_series(1, :n) AS g(n)"
    return "(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < :n) SELECT n FROM s) AS g"


def at(dialect: str, minutes: str) -> str:
    """2025-01-01 UTC plus `minutes`, stored the way SQLAlchemy stores it on each backend."""
    if dialect == "postgresql":
        return f"(timestamptz '2025-01-01 00:00:00+00' + ({minutes}) * interval '1 minute')"
    return f"(strftime('%Y-%m-%d %H:%M:%S', '2025-01-01 00:00:00', '+' || ({minutes}) || ' minutes') || '.000000')"


def generate(engine: Engine, n: int) -> None:
    d = engine.dialect.name
    created = f"((n * 37) % {YEAR_MINUTES})"
    resolved = f"{created} + 30 + (n * 13) % 3000"
    statements = [
        f"""INSERT INTO incidents (id, kind, severity, category, title, status, is_drill, playbook_version, reporter_id,
                topic_set, members_invited, welcome_posted, created_at, updated_at, resolved_at, closed_at)
            SELECT n,
                CASE n % 4 WHEN 1 THEN 'outage' WHEN 2 THEN 'surge' ELSE 'complaint' END,
                'sev' || (1 + n % 4),
                CASE WHEN n % 4 IN (0, 3) THEN CASE (n / 4) % 4 WHEN 0 THEN 'technical' WHEN 1 THEN 'service'
                     WHEN 2 THEN 'policy' ELSE 'financial' END END,
                'bench ' || n,
                CASE WHEN n % 10 = 0 THEN 'investigating' ELSE 'closed' END,
                CASE WHEN n % 50 = 0 THEN TRUE ELSE FALSE END,
                'bench', 'UBENCH', TRUE, TRUE, TRUE,
                {at(d, created)}, {at(d, created)},
                CASE WHEN n % 10 = 0 THEN NULL ELSE {at(d, resolved)} END,
                CASE WHEN n % 10 = 0 THEN NULL ELSE {at(d, resolved + " + 60")} END
            FROM {numbers(d)}""",
        f"""INSERT INTO deadlines (incident_id, key, name, owner_role, start_at, due_at, state, cadence, clock,
                escalate, on_resolve, reminders_done, snoozes, closed_at, incident_created_at, incident_is_drill)
            SELECT n, CASE k WHEN 1 THEN 'first_response' WHEN 2 THEN 'investigation' ELSE 'status_update' END,
                'bench deadline', 'lead', {at(d, created)}, {at(d, created + " + 1440")},
                CASE WHEN (n * k) % 20 < 17 THEN 'met' WHEN (n * k) % 20 < 19 THEN 'missed' ELSE 'cancelled' END,
                FALSE, 'calendar', TRUE, 'keep', 0, 0,
                {at(d, created + " + (n * k * 7) % 1440")}, {at(d, created)},
                CASE WHEN n % 50 = 0 THEN TRUE ELSE FALSE END
            FROM {numbers(d)} CROSS JOIN (SELECT 1 AS k UNION ALL SELECT 2 UNION ALL SELECT 3) ks""",
        f"""INSERT INTO timeline_events (incident_id, at, event, actor_id, text, data)
            SELECT n, {at(d, created + " + e")}, CASE e WHEN 0 THEN 'opened' WHEN 1 THEN 'update' WHEN 2 THEN 'resolved'
                ELSE 'closed' END, 'UBENCH', 'bench', '{{}}'
            FROM {numbers(d)} CROSS JOIN (SELECT 0 AS e UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3) es""",
        f"""INSERT INTO escalations (incident_id, reason, levels, level, state, started_at, acked_at)
            SELECT n, 'bench', '[]', 1, CASE WHEN n % 5 = 0 THEN 'exhausted' ELSE 'acknowledged' END, {at(d, created)},
                CASE WHEN n % 5 = 0 THEN NULL ELSE {at(d, created + " + (n % 45)")} END
            FROM {numbers(d)} WHERE n % 3 = 0""",
        f"""INSERT INTO satisfaction_ratings (incident_id, source, rater_id, score, comment, at)
            SELECT n, 'customer', 'customer', 1 + (n * 7) % 5, '', {at(d, resolved)}
            FROM {numbers(d)} WHERE n % 2 = 0 AND n % 10 <> 0""",
        # the KPI copies the app keeps on the incident row
        """UPDATE incidents SET
            first_response_at = (SELECT d.closed_at FROM deadlines d WHERE d.incident_id = incidents.id
                AND d.key = 'first_response' AND d.state = 'met'),
            satisfaction_score = (SELECT r.score FROM satisfaction_ratings r WHERE r.incident_id = incidents.id
                AND r.source = 'customer')""",
    ]
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement), {"n": n})
        if d == "postgresql":
            conn.execute(text("SELECT setval('incidents_id_seq', :n)"), {"n": n})
    # fresh statistics and visibility maps, as autovacuum keeps them in production
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE" if d == "postgresql" else "ANALYZE"))


def measure(store: str, n: int, runs: int, direct: bool = False) -> None:
    with database(store) as url:
        engine = make_engine(url)
        upgrade(engine)
        started = time.perf_counter()
        generate(engine, n)
        load = time.perf_counter() - started
        sessions = make_session_factory(engine)
        started = time.perf_counter()
        # as the scheduler does, in the playbook's timezone
        months = refresh_rollup(sessions, WHOLE[1] + timedelta(days=1), zone=SHANGHAI, limit=100)
        figures = [f"rollup of {len(months)} months computed in {time.perf_counter() - started:.1f} s"]
        periods = [("year (Shanghai days)", LOCAL_YEAR, True), ("UTC year", WHOLE, True), ("one month", MONTH, True)]
        if direct:
            periods.append(("year, every record queried", LOCAL_YEAR, False))
        for label, (start, end), rollup in periods:
            seconds = []
            for _ in range(runs):
                with sessions() as s:
                    t0 = time.perf_counter()
                    report = kpi_report(s, start, end, zone=SHANGHAI, rollup=rollup)
                    seconds.append(time.perf_counter() - t0)
            total = report.group("all")
            figures.append(
                f"{label}: median {statistics.median(seconds):.2f} s, best {min(seconds):.2f} s "
                f"({total.incidents if total else 0:,} incidents counted)"
            )
        engine.dispose()
    print(f"KPI report, {store}, {n:,} incidents (loaded in {load:.0f} s): " + "; ".join(figures), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--stores", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--direct", action="store_true", help="also time the report querying every record")
    args = parser.parse_args()
    for n in args.sizes:
        for store in args.stores:
            measure(store, n, args.runs, args.direct)


if __name__ == "__main__":
    main()
