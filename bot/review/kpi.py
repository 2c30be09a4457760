"""The plan's KPIs over a period: counts, first-response, acknowledge and resolve times (mean, median,
p90), deadline compliance, satisfaction against its target, hot spots and open action items.

Definitions (the same on both stores; drills are excluded; an incident belongs to the period it was opened in):
- first response: from opening to when the `first_response` deadline was met, on time or late;
- deadlines met: the share met on time; a deadline met after it was due counts as not on time (and is
  listed as met late);
- time to acknowledge: from an escalation's start to its acknowledgement;
- time to resolve: from opening to resolution;
- means are exact; medians and p90 are nearest-rank (the value at rank ceil(p x n)) over durations in whole
  minutes (truncated), which is the precision the report shows;
- satisfied: a customer rating of at least `satisfaction.good_at_least` (default 4 of 5).

Why histograms: the database returns, per measure, counts per (kind, severity, category, minute) — a
parallel hash aggregate, a few thousand rows — and the roll-ups and percentiles are computed here. Exact
percentiles in SQL (percentile_disc over GROUPING SETS) sort a million rows eight times and took 6.5 s at
a million incidents. The incident's first response and customer rating are copied onto its row, and the
incident's opening time onto its deadlines, so only the acknowledgements need a join.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from bot.core.clock import utc
from bot.core.i18n import _
from bot.core.render import Renderer

DIMENSIONS = ("all", "kind", "severity", "category")


@dataclass(frozen=True)
class Stats:
    """Durations in seconds."""

    n: int = 0
    mean: float | None = None
    median: float | None = None
    p90: float | None = None


@dataclass
class Group:
    dimension: str  # all, kind, severity, category
    value: str
    incidents: int = 0
    first_response: Stats = Stats()
    acknowledge: Stats = Stats()
    resolve: Stats = Stats()
    rated: int = 0
    satisfied: int = 0

    @property
    def satisfaction(self) -> float | None:
        return self.satisfied / self.rated if self.rated else None


@dataclass
class Report:
    start: datetime
    end: datetime
    groups: list[Group] = field(default_factory=list)
    # key, met on time, not on time (missed, or met late); a late first response is still a first response
    deadlines: list[tuple[str, int, int]] = field(default_factory=list)
    met_late: dict[str, int] = field(default_factory=dict)  # key -> met, but after the deadline
    hot_spots: list[tuple[str, int]] = field(default_factory=list)
    open_actions: int = 0
    satisfaction_target: float = 0.9
    good_at_least: int = 4

    def group(self, dimension: str, value: str = "all") -> Group | None:
        return next((g for g in self.groups if g.dimension == dimension and g.value == value), None)


class Histogram:
    """Counts per whole minute, and the exact sum of seconds (for the mean)."""

    def __init__(self) -> None:
        self.minutes: Counter[int] = Counter()
        self.n = 0
        self.total = 0.0

    def add(self, minute: int, n: int, total: float) -> None:
        self.minutes[minute] += n
        self.n += n
        self.total += total

    def rank(self, p: float) -> float | None:
        if not self.n:
            return None
        wanted, seen = max(math.ceil(p * self.n), 1), 0
        for minute in sorted(self.minutes):
            seen += self.minutes[minute]
            if seen >= wanted:
                return minute * 60.0
        return None

    def stats(self) -> Stats:
        if not self.n:
            return Stats()
        return Stats(self.n, self.total / self.n, self.rank(0.5), self.rank(0.9))


def _seconds(dialect: str, end: str, start: str) -> str:
    if dialect == "postgresql":
        return f"date_part('epoch', {end} - {start})"
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


class KpiQuery:
    def __init__(self, session: Session, start: datetime, end: datetime, good_at_least: int = 4) -> None:
        self.s = session
        self.dialect = session.get_bind().dialect.name
        self.start, self.end = start, end
        self.params: dict[str, Any] = {"start": start, "end": end, "false": False, "good": good_at_least}
        if self.dialect == "sqlite":  # compared as text there, so in the form SQLAlchemy stores
            for key in ("start", "end"):
                self.params[key] = utc(self.params[key]).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
        self.good = good_at_least

    def run(self, target: float) -> Report:
        if self.dialect == "postgresql":
            self.s.execute(text("SET LOCAL jit = off"))  # compiling these plans costs more than running them
        report = Report(self.start, self.end, satisfaction_target=target, good_at_least=self.good)
        report.groups = self._groups()
        category = sorted(
            ((g.value, g.incidents) for g in report.groups if g.dimension == "category" and g.value != "-"),
            key=lambda kv: (-kv[1], kv[0]),
        )
        report.hot_spots = category[:5]
        report.deadlines, report.met_late, report.open_actions = self._deadlines()
        return report

    def _minute(self, seconds: str) -> str:
        if self.dialect == "postgresql":
            return f"FLOOR(({seconds}) / 60)"
        return f"CAST(({seconds}) / 60.0 + 0.000001 AS INTEGER)"  # julianday arithmetic is off by microseconds

    def _histogram(self, seconds: str, source: str, where: str = "", extra: str = "") -> list[Any]:
        """Counts and summed seconds per (kind, severity, category, whole minute of the measure)."""
        sql = f"""
            SELECT i.kind AS kind, i.severity AS severity, COALESCE(i.category, '-') AS category,
                   {self._minute(seconds)} AS minute, COUNT(*) AS n, SUM({seconds}) AS total {extra}
            FROM {source}
            WHERE i.is_drill = :false AND i.created_at >= :start AND i.created_at < :end {where}
            GROUP BY 1, 2, 3, 4
        """
        return list(self.s.execute(text(sql), self.params))

    def _groups(self) -> list[Group]:
        """Three aggregate queries: incidents (counts, resolve times, ratings), first responses, acks.
        The first two read only the incidents table (its KPI copies), through one index on PostgreSQL."""
        d = self.dialect
        resolve = self._histogram(
            _seconds(d, "i.resolved_at", "i.created_at"),
            "incidents i",
            extra=", SUM(CASE WHEN i.satisfaction_score IS NOT NULL THEN 1 ELSE 0 END) AS rated"
            ", SUM(CASE WHEN i.satisfaction_score >= :good THEN 1 ELSE 0 END) AS satisfied",
        )
        first = self._histogram(
            _seconds(d, "i.first_response_at", "i.created_at"), "incidents i", "AND i.first_response_at IS NOT NULL"
        )
        ack = self._histogram(
            _seconds(d, "e.acked_at", "e.started_at"),
            "escalations e JOIN incidents i ON i.id = e.incident_id",
            "AND e.acked_at IS NOT NULL",
        )
        counts: Counter[tuple[str, str]] = Counter()
        rated: Counter[tuple[str, str]] = Counter()
        satisfied: Counter[tuple[str, str]] = Counter()
        for row in resolve:
            for key in _keys(row):
                counts[key] += int(row.n)
                rated[key] += int(row.rated or 0)
                satisfied[key] += int(row.satisfied or 0)
        measures: dict[str, dict[tuple[str, str], Histogram]] = {"resolve": {}, "first": {}, "ack": {}}
        for name, rows in (("resolve", resolve), ("first", first), ("ack", ack)):
            for row in rows:
                if row.minute is None:
                    continue  # not resolved (yet)
                for key in _keys(row):
                    measures[name].setdefault(key, Histogram()).add(int(row.minute), int(row.n), float(row.total))
        empty = Histogram()
        groups = {
            key: Group(
                *key,
                incidents=counts[key],
                first_response=measures["first"].get(key, empty).stats(),
                acknowledge=measures["ack"].get(key, empty).stats(),
                resolve=measures["resolve"].get(key, empty).stats(),
                rated=rated[key],
                satisfied=satisfied[key],
            )
            for key in set(counts) | {k for m in measures.values() for k in m}
        }
        return _ordered(groups)

    def _deadlines(self) -> tuple[list[tuple[str, int, int]], dict[str, int], int]:
        """Met on time and not (missed, or met late) per deadline type, and open action items: deadlines only
        (they carry their incident's opening time), no join."""
        sql = """
            SELECT CASE WHEN d.key LIKE 'action-%' THEN 'action items' ELSE d.key END AS k,
                   CASE WHEN d.state = 'met' AND d.closed_at > d.due_at THEN 'late' ELSE d.state END AS state,
                   COUNT(*) AS n
            FROM deadlines d
            WHERE d.incident_is_drill = :false AND d.incident_created_at >= :start AND d.incident_created_at < :end
            GROUP BY 1, 2
        """
        tally: dict[str, Counter[str]] = {}
        for row in self.s.execute(text(sql), self.params):
            tally.setdefault(row.k, Counter())[row.state] += int(row.n)
        compliance = sorted(
            (k, c["met"], c["missed"] + c["late"]) for k, c in tally.items() if c["met"] or c["missed"] or c["late"]
        )
        late = {k: c["late"] for k, c in tally.items() if c["late"]}
        return compliance, late, tally.get("action items", Counter())["pending"]


def _keys(row: Any) -> Iterable[tuple[str, str]]:
    return (("all", "all"), ("kind", row.kind), ("severity", row.severity), ("category", row.category))


def _ordered(groups: dict[tuple[str, str], Group]) -> list[Group]:
    return sorted(groups.values(), key=lambda g: (DIMENSIONS.index(g.dimension), g.value))


def kpi_report(
    session: Session, start: datetime, end: datetime, *, good_at_least: int = 4, target: float = 0.9
) -> Report:
    return KpiQuery(session, start, end, good_at_least).run(target)


# ---- output -------------------------------------------------------------------------------------------------


def hours(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 3600:
        minutes = f"{seconds / 60:.0f}"
        return _("{minutes}m", minutes=minutes)
    in_hours = f"{seconds / 3600:.1f}"
    return _("{hours}h", hours=in_hours)


def percent(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.0f}%"


def _figures(g: Group) -> dict[str, Any]:
    """A group's figures, formatted for the template."""
    return {
        "value": g.value,
        "incidents": g.incidents,
        "fr_mean": hours(g.first_response.mean),
        "fr_median": hours(g.first_response.median),
        "responded": g.first_response.n,
        "ack_median": hours(g.acknowledge.median),
        "ack_p90": hours(g.acknowledge.p90),
        "res_mean": hours(g.resolve.mean),
        "res_median": hours(g.resolve.median),
        "res_p90": hours(g.resolve.p90),
        "satisfied": percent(g.satisfaction),
    }


def as_text(report: Report, period: str, renderer: Renderer | None = None) -> str:
    """Slack mrkdwn that reads well in a terminal too (templates/slack/kpi.j2), in the current language."""
    total = report.group("all") or Group("all", "all")
    sat = total.satisfaction
    by = [(d, [_figures(g) for g in report.groups if g.dimension == d]) for d in DIMENSIONS[1:]]
    return (renderer or Renderer()).render(
        "slack/kpi.j2",
        period=period,
        total=_figures(total),
        satisfaction=percent(sat),
        good_at_least=report.good_at_least,
        rated=total.rated,
        target=percent(report.satisfaction_target),
        verdict="" if sat is None else ("met" if sat >= report.satisfaction_target else "below"),
        deadlines=[
            {
                "key": key,
                "share": percent(met / (met + missed) if met + missed else None),
                "met": met,
                "total": met + missed,
                "late": report.met_late.get(key, 0),
            }
            for key, met, missed in report.deadlines
        ],
        hot_spots=report.hot_spots,
        open_actions=report.open_actions,
        by=[(d, rows) for d, rows in by if rows],
    )


CSV_FIELDS = (
    "dimension",
    "value",
    "incidents",
    "first_response_n",
    "first_response_mean_s",
    "first_response_median_s",
    "first_response_p90_s",
    "acknowledge_n",
    "acknowledge_mean_s",
    "acknowledge_median_s",
    "acknowledge_p90_s",
    "resolve_n",
    "resolve_mean_s",
    "resolve_median_s",
    "resolve_p90_s",
    "rated",
    "satisfied",
    "satisfaction_share",
    "deadlines_met",
    "deadlines_missed",
    "deadlines_met_late",
)


def as_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_FIELDS)

    def cells(s: Stats) -> list[Any]:
        return [s.n, *("" if v is None else round(v, 1) for v in (s.mean, s.median, s.p90))]

    for g in report.groups:
        share = "" if g.satisfaction is None else round(g.satisfaction, 4)
        writer.writerow(
            [
                g.dimension,
                g.value,
                g.incidents,
                *cells(g.first_response),
                *cells(g.acknowledge),
                *cells(g.resolve),
                g.rated,
                g.satisfied,
                share,
                "",
                "",
                "",
            ]
        )
    blank = [""] * (len(CSV_FIELDS) - 5)
    for key, met, missed in report.deadlines:
        writer.writerow(["deadline", key, *blank, met, missed, report.met_late.get(key, 0)])
    return out.getvalue()
