"""The KPI rollup gives the same report as querying every record, on SQLite and PostgreSQL: over whole months,
over periods that cut months (local days in Shanghai), and after incidents change once they were counted (a
deadline met late, an incident reopened, a drill flag set afterwards, a page acknowledged, a bulk update)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.review.kpi import KpiQuery, Month, kpi_report, refresh_rollup
from store.db import make_engine, make_session_factory, upgrade
from store.models import Deadline, Escalation, Incident, KpiCell, KpiMonth, KpiStale, SatisfactionRating
from tests.conftest import LEAD, Stack

FIRST = datetime(2026, 1, 1, tzinfo=UTC)
MONTHS = ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06"]
SHANGHAI = ZoneInfo("Asia/Shanghai")
PERIODS = [
    (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC)),  # whole months
    (datetime(2026, 1, 1, tzinfo=SHANGHAI), datetime(2026, 7, 1, tzinfo=SHANGHAI)),  # local days: cut months
    (datetime(2026, 2, 10, 7, 30, tzinfo=UTC), datetime(2026, 5, 20, 13, 0, tzinfo=UTC)),
    (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 15, tzinfo=UTC)),  # no whole month
]


def generate(session: Session, n: int, seed: int = 11) -> None:
    """Incidents over six months with first responses (some late), action items, pages and ratings."""
    rng = random.Random(seed)
    for i in range(n):
        created = FIRST + timedelta(seconds=rng.randrange(0, 181 * 24 * 3600))
        kind = rng.choice(("complaint", "outage", "surge"))
        resolved = created + timedelta(seconds=rng.randrange(600, 300_000)) if rng.random() < 0.8 else None
        score = rng.randint(1, 5) if resolved and rng.random() < 0.6 else None
        incident = Incident(
            kind=kind,
            severity=f"sev{rng.randint(1, 4)}",
            category=rng.choice(("technical", "service", "policy")) if kind == "complaint" else None,
            title=f"客户卡号6222021234567890123被重复扣款 {i}",
            status="resolved" if resolved else "investigating",
            is_drill=rng.random() < 0.05,
            playbook_version="test",
            reporter_id="UGEN",
            created_at=created,
            updated_at=created,
            resolved_at=resolved,
            satisfaction_score=score,
        )
        session.add(incident)
        session.flush()
        if score is not None:
            session.add(
                SatisfactionRating(
                    incident_id=incident.id,
                    source="customer",
                    rater_id="customer",
                    score=score,
                    comment="",
                    at=resolved,
                )
            )
        keys = ["first_response"] + [f"action-{j + 1}" for j in range(rng.randint(0, 2))]
        for key in keys:
            state = rng.choice(("met", "met", "missed", "pending"))
            closed = created + timedelta(seconds=rng.randrange(300, 120_000)) if state == "met" else None
            if key == "first_response" and closed is not None:
                incident.first_response_at = closed
            session.add(_deadline(incident, key, state, closed))
        for _ in range(rng.randint(0, 2)):
            started = created + timedelta(minutes=rng.randrange(0, 60))
            acked = started + timedelta(seconds=rng.randrange(30, 7200)) if rng.random() < 0.7 else None
            session.add(
                Escalation(
                    incident_id=incident.id,
                    reason="test",
                    levels=[],
                    level=1,
                    state="acknowledged" if acked else "active",
                    started_at=started,
                    acked_at=acked,
                )
            )
    session.commit()


def _deadline(incident: Incident, key: str, state: str, closed: datetime | None) -> Deadline:
    return Deadline(
        incident_id=incident.id,
        key=key,
        name=key,
        owner_role="lead",
        start_at=incident.created_at,
        due_at=incident.created_at + timedelta(hours=24),
        state=state,
        closed_at=closed,
        incident_created_at=incident.created_at,
        incident_is_drill=incident.is_drill,
    )


def stale(db: sessionmaker[Session], zone: tzinfo = UTC) -> set[str]:
    """The months (of `zone`) with a stale slot."""
    with db() as s:
        slots = s.scalars(select(KpiStale.slot)).all()
    return {Month.of(datetime.strptime(slot, "%Y-%m-%d %H:%M").replace(tzinfo=UTC), zone).key for slot in slots}


def assert_rollup_is_exact(db: sessionmaker[Session], zone: tzinfo = UTC) -> None:
    for start, end in PERIODS:
        with db() as s:
            fast = kpi_report(s, start, end, zone=zone)
        with db() as s:
            direct = kpi_report(s, start, end, rollup=False)
        assert fast == direct, (start, end)


def held(db: sessionmaker[Session], start: datetime, end: datetime, zone: tzinfo) -> list[str]:
    """The months the report of [start, end) reads from the rollup."""
    with db() as s:
        return [m.key for m in KpiQuery(s, start, end, zone=zone)._rolled_up_months()]


def test_the_rollup_reports_what_every_record_says(any_db_url: str) -> None:
    engine = make_engine(any_db_url)
    upgrade(engine)
    db = make_session_factory(engine)
    with db() as s:
        generate(s, 500)
    assert stale(db) == set(MONTHS)  # every month with new records waits for its computation
    assert_rollup_is_exact(db)

    # the scheduler computes months that ended, never the current one
    assert refresh_rollup(db, datetime(2026, 6, 20, tzinfo=UTC), limit=12) == MONTHS[:-1]
    assert stale(db) == {"2026-06"}
    assert refresh_rollup(db, datetime(2026, 7, 2, tzinfo=UTC), limit=12) == ["2026-06"]
    assert stale(db) == set()
    assert held(db, *PERIODS[0], UTC) == MONTHS
    assert held(db, *PERIODS[1], UTC) == MONTHS[:-1]  # Shanghai's June ends at 16:00 UTC on the 30th
    assert held(db, *PERIODS[1], SHANGHAI) == []  # months of another zone are not these months
    assert_rollup_is_exact(db)
    with db() as s:
        before = kpi_report(s, *PERIODS[0])
        total = before.group("all")
        assert total is not None
        assert total.incidents == s.scalar(select(func.count()).select_from(Incident).where(~Incident.is_drill))
        feb = s.scalars(
            select(Incident)
            .where(Incident.created_at >= datetime(2026, 2, 1, tzinfo=UTC))
            .where(Incident.created_at < datetime(2026, 3, 1, tzinfo=UTC))
            .where(Incident.is_drill.is_(False))
            .order_by(Incident.id)
        ).all()
        # changes after the months were counted
        pending = s.scalars(
            select(Deadline).where(Deadline.state == "pending", Deadline.key == "first_response")
        ).first()
        assert pending is not None
        pending.state, pending.closed_at = "met", pending.due_at + timedelta(hours=5)  # met late
        reopened = next(i for i in feb if i.resolved_at is not None)
        reopened.resolved_at, reopened.status = None, "investigating"
        feb[-1].is_drill = True  # found to be a drill
        page = s.scalars(select(Escalation).where(Escalation.acked_at.is_(None))).first()
        assert page is not None
        page.acked_at, page.state = page.started_at + timedelta(minutes=4), "acknowledged"
        paged = s.get(Incident, page.incident_id)
        assert pending.incident_created_at is not None and paged is not None
        changed = {f"{pending.incident_created_at.astimezone(UTC):%Y-%m}", "2026-02", f"{paged.created_at:%Y-%m}"}
        s.commit()
    assert stale(db) == changed
    with db() as s:  # a bulk update, as a hand-made fix would be, is seen too
        s.execute(
            update(Incident)
            .where(Incident.created_at >= datetime(2026, 4, 1, tzinfo=UTC))
            .where(Incident.created_at < datetime(2026, 4, 3, tzinfo=UTC))
            .values(severity="sev1")
        )
        s.commit()
    assert stale(db) == changed | {"2026-04"}
    assert held(db, *PERIODS[0], UTC) == [m for m in MONTHS if m not in changed | {"2026-04"}]
    assert_rollup_is_exact(db)
    with db() as s:
        after = kpi_report(s, *PERIODS[0])
    assert after != before  # the changes did change the figures, and the report shows them at once

    refresh_rollup(db, datetime(2026, 7, 2, tzinfo=UTC), limit=12)
    assert stale(db) == set()
    assert_rollup_is_exact(db)

    # and the report does read the rollup: a cell changed by hand shows in it
    with db() as s:
        s.execute(update(KpiCell).where(KpiCell.month == "2026-03", KpiCell.measure == "resolve").values(n=0))
        s.commit()
    with db() as s:
        tampered, untouched = kpi_report(s, *PERIODS[0]).group("all"), after.group("all")
        assert tampered is not None and untouched is not None and tampered.incidents < untouched.incidents

    # the playbook's timezone (or rating threshold) changed: the rollup starts again, in Shanghai's months
    assert refresh_rollup(db, datetime(2026, 7, 20, tzinfo=UTC), zone=SHANGHAI, limit=12) == MONTHS
    assert stale(db, SHANGHAI) <= {"2026-07"}  # Shanghai's July (from 16:00 UTC on 30 June) has not ended
    assert held(db, *PERIODS[1], SHANGHAI) == MONTHS
    assert held(db, *PERIODS[0], UTC) == []
    assert_rollup_is_exact(db, SHANGHAI)
    with db() as s:
        assert kpi_report(s, *PERIODS[1], zone=SHANGHAI, good_at_least=3) == kpi_report(
            s, *PERIODS[1], good_at_least=3, rollup=False
        )  # counted with another threshold than the rollup's: queried directly
    engine.dispose()


def test_the_scheduler_keeps_the_playbook_months_and_the_report_reads_them(stack: Stack) -> None:
    channel = stack.open("complaint sev2 cat:technical 客户卡号6222021234567890123被重复扣款").id
    stack.driver.slash(LEAD, channel, "done first_response")
    stack.advance(hours=3)
    stack.driver.slash(LEAD, channel, "resolve 已退款")
    with stack.bot.services.db() as s:
        assert s.scalars(select(KpiMonth)).all() == []  # November has not ended: nothing computed yet
    stack.advance(days=8)  # into December (Shanghai): the next sweep computes November
    with stack.bot.services.db() as s:
        months = s.scalars(select(KpiMonth)).all()
        assert [(m.month, m.zone) for m in months] == [("2026-11", "Asia/Shanghai")]
        assert s.scalars(select(KpiStale)).all() == []
        assert KpiQuery(s, months[0].starts_at, months[0].ends_at, zone=SHANGHAI)._rolled_up_months() != []
    stack.driver.slash(LEAD, channel, "report 2026-11-01 2026-11-30")
    text = stack.ephemeral_texts(LEAD)[-1]
    assert text.startswith("*Incident KPIs, 2026-11-01 – 2026-11-30*: 1 incident, drills excluded")
    assert "time to resolve: mean 3.0h, median 3.0h, p90 3.0h" in text
