"""KPIs on a generated history whose answers the test computes itself, on SQLite and PostgreSQL; the
report from Slack and from the command line."""

from __future__ import annotations

import csv
import io
import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from bot.cli import main
from bot.review.kpi import kpi_report
from store.db import make_engine, make_session_factory, upgrade
from store.models import Deadline, Escalation, Incident, SatisfactionRating
from tests.conftest import LEAD, Stack

START = datetime(2026, 11, 2, tzinfo=UTC)
END = datetime(2026, 11, 16, tzinfo=UTC)
KINDS = ("complaint", "outage", "surge")
CATEGORIES = ("technical", "service", "policy", "financial")


@dataclass
class Truth:
    """What the generator made, in plain lists, for incidents inside [START, END) and not drills."""

    incidents: list[dict[str, object]] = field(default_factory=list)
    acks: list[tuple[dict[str, object], float]] = field(default_factory=list)
    deadline_states: dict[str, list[str]] = field(default_factory=dict)
    open_actions: int = 0


def generate(session: Session, n: int, seed: int = 7, start: datetime = START, end: datetime = END) -> Truth:
    rng = random.Random(seed)
    truth = Truth()
    for i in range(n):
        created = START - timedelta(days=2) + timedelta(minutes=rng.randrange(0, 18 * 24 * 60))
        kind = rng.choice(KINDS)
        category = rng.choice(CATEGORIES) if kind == "complaint" else None
        drill = rng.random() < 0.05
        resolved = created + duration(rng, 600, 300_000) if rng.random() < 0.8 else None
        incident = Incident(
            kind=kind,
            severity=f"sev{rng.randint(1, 4)}",
            category=category,
            title=f"generated {i}",
            status="resolved" if resolved else "investigating",
            is_drill=drill,
            playbook_version="test",
            reporter_id="UGEN",
            created_at=created,
            updated_at=created,
            resolved_at=resolved,
        )
        session.add(incident)
        session.flush()
        counted = not drill and start <= created < end
        facts: dict[str, object] = {
            "kind": kind,
            "severity": incident.severity,
            "category": category or "-",
            "first_response": None,
            "resolve": None,
            "score": None,
        }
        if resolved:
            facts["resolve"] = (resolved - created).total_seconds()
        states = []
        if kind == "complaint":
            state = rng.choice(("met", "met", "met", "missed", "pending"))
            closed = created + duration(rng, 300, 120_000) if state == "met" else None
            session.add(_deadline(incident, "first_response", state, created, closed))
            late = closed is not None and closed > created + timedelta(hours=24)  # met, but after the deadline
            states.append(("first_response", "late" if late else state))
            if state == "met":
                assert closed is not None
                facts["first_response"] = (closed - created).total_seconds()
                incident.first_response_at = closed  # as the app keeps it when the deadline is met
        if resolved and rng.random() < 0.6:
            score = rng.randint(1, 5)
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
            facts["score"] = score
            incident.satisfaction_score = score  # as the app keeps it when the rating is recorded
            if rng.random() < 0.5:  # a participant's own rating is not the customer's
                session.add(
                    SatisfactionRating(
                        incident_id=incident.id, source="internal", rater_id="UX", score=1, comment="", at=resolved
                    )
                )
        for _ in range(rng.randint(0, 2)):
            started = created + timedelta(minutes=rng.randrange(0, 60))
            acked = started + timedelta(seconds=rng.randrange(30, 7200)) if rng.random() < 0.7 else None
            session.add(
                Escalation(
                    incident_id=incident.id,
                    reason="test",
                    levels=[],
                    level=1,
                    state="acknowledged" if acked else "exhausted",
                    started_at=started,
                    acked_at=acked,
                )
            )
            if acked and counted:
                truth.acks.append((facts, (acked - started).total_seconds()))
        for j in range(rng.randint(0, 2)):
            state = rng.choice(("pending", "met", "missed"))
            session.add(_deadline(incident, f"action-{j + 1}", state, created, created if state == "met" else None))
            states.append(("action items", state))
            if counted and state == "pending":
                truth.open_actions += 1
        if counted:
            truth.incidents.append(facts)
            for key, state in states:
                truth.deadline_states.setdefault(key, []).append(state)
    session.commit()
    return truth


def duration(rng: random.Random, low: int, high: int) -> timedelta:
    """Seconds, or now and then an exact number of minutes (the boundary of the minute truncation)."""
    seconds = rng.randrange(low, high)
    return timedelta(seconds=seconds - seconds % 60 if rng.random() < 0.3 else seconds)


def _deadline(incident: Incident, key: str, state: str, start: datetime, closed: datetime | None) -> Deadline:
    return Deadline(
        incident_id=incident.id,
        key=key,
        name=key,
        owner_role="lead",
        start_at=start,
        due_at=start + timedelta(hours=24),
        state=state,
        closed_at=closed or (start + timedelta(hours=24) if state == "missed" else None),
        incident_created_at=incident.created_at,
        incident_is_drill=incident.is_drill,
    )


def rank(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(p * len(ordered)) - 1]


def expect_stats(values: list[float], stats: object) -> None:
    """Means exact; median and p90 nearest-rank over whole minutes (the report's stated precision)."""
    assert stats.n == len(values)  # type: ignore[attr-defined]
    if values:
        minutes = [math.floor(v / 60) * 60.0 for v in values]
        assert stats.mean == pytest.approx(sum(values) / len(values), rel=1e-6)  # type: ignore[attr-defined]
        assert stats.median == rank(minutes, 0.5)  # type: ignore[attr-defined]
        assert stats.p90 == rank(minutes, 0.9)  # type: ignore[attr-defined]


def test_kpis_match_what_the_generated_history_says(any_db_url: str) -> None:
    engine = make_engine(any_db_url)
    upgrade(engine)
    db = make_session_factory(engine)
    with db() as s:
        truth = generate(s, 400)
    with db() as s:
        report = kpi_report(s, START, END, good_at_least=4, target=0.9)
    engine.dispose()

    groups = {("all", "all"): truth.incidents}
    for dimension in ("kind", "severity", "category"):
        for facts in truth.incidents:
            groups.setdefault((dimension, str(facts[dimension])), []).append(facts)
    assert {(g.dimension, g.value) for g in report.groups} == set(groups)
    for (dimension, value), members in groups.items():
        group = report.group(dimension, value)
        assert group is not None and group.incidents == len(members), (dimension, value)
        expect_stats(
            [float(f["first_response"]) for f in members if f["first_response"] is not None],  # type: ignore[arg-type]
            group.first_response,
        )
        expect_stats([float(f["resolve"]) for f in members if f["resolve"] is not None], group.resolve)  # type: ignore[arg-type]
        scores = [int(f["score"]) for f in members if f["score"] is not None]  # type: ignore[call-overload]
        assert (group.rated, group.satisfied) == (len(scores), sum(1 for x in scores if x >= 4))
        member_ids = {id(f) for f in members}
        expect_stats([secs for facts, secs in truth.acks if id(facts) in member_ids], group.acknowledge)

    assert report.deadlines == sorted(  # met on time; not on time = missed or met late
        (key, states.count("met"), states.count("missed") + states.count("late"))
        for key, states in truth.deadline_states.items()
    )
    assert report.met_late == {
        key: states.count("late") for key, states in truth.deadline_states.items() if "late" in states
    }
    categories: dict[str, int] = {}
    for facts in truth.incidents:
        if facts["category"] != "-":
            categories[str(facts["category"])] = categories.get(str(facts["category"]), 0) + 1
    assert report.hot_spots == sorted(categories.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    assert report.open_actions == truth.open_actions


def test_the_report_command_answers_only_the_asker(stack: Stack) -> None:
    channel = stack.open("complaint sev2 cat:technical Card payments failing").id
    stack.driver.slash(LEAD, channel, "done first_response")
    stack.driver.slash(LEAD, channel, "report 2026-11-01 2026-11-30")  # acked at once, answered after
    reply = stack.sandbox.ephemerals_for(LEAD)[-1]
    assert reply.text.startswith("*Incident KPIs, 2026-11-01 – 2026-11-30*: 1 incident, drills excluded")
    assert "First response: mean 0m, median 0m (target ≤ 24h; 1 responded)" in reply.text
    assert "Hot spots: technical (1)" in reply.text
    bad = stack.driver.slash(LEAD, channel, "report yesterday")
    assert bad.text.startswith("`yesterday` is not a date. Use `/incident report 2026-11-01 2026-11-30`")


def test_the_cli_report_writes_text_and_csv(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path}/kpi.db"
    engine = make_engine(url)
    upgrade(engine)
    shanghai = ZoneInfo("Asia/Shanghai")  # the playbook's timezone: report dates are local days
    with make_session_factory(engine)() as s:
        truth = generate(
            s, 60, start=datetime(2026, 11, 2, tzinfo=shanghai), end=datetime(2026, 11, 16, tzinfo=shanghai)
        )
    engine.dispose()
    assert main(["report", "--database", url, "--from", "2026-11-02", "--to", "2026-11-15", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    total = next(r for r in rows if r["dimension"] == "all")
    assert int(total["incidents"]) == len(truth.incidents)
    assert {r["value"] for r in rows if r["dimension"] == "deadline"} == set(truth.deadline_states)
    assert main(["report", "--database", url, "--from", "2026-11-02", "--to", "2026-11-15", "--lang", "en"]) == 0
    n = len(truth.incidents)
    assert capsys.readouterr().out.startswith(
        f"*Incident KPIs, 2026-11-02 – 2026-11-15*: {n} incident{'' if n == 1 else 's'}, drills excluded"
    )
    assert main(["report", "--database", url, "--from", "02/11/2026"]) == 2
    assert "--from: '02/11/2026' is not a date; use YYYY-MM-DD" in capsys.readouterr().err
