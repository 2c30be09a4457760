"""The plan's KPIs over a period: counts, first-response, acknowledge and resolve times (mean, median,
p90), deadline compliance, satisfaction against its target, hot spots and open action items.

Definitions (the same on both stores; drills are excluded; an incident belongs to the period it was opened in):
- first response: from opening to when the `first_response` deadline was met;
- time to acknowledge: from an escalation's start to its acknowledgement;
- time to resolve: from opening to resolution;
- percentiles are nearest-rank (the value at rank ceil(p x n)), which PostgreSQL's percentile_disc computes;
- satisfied: a customer rating of at least `satisfaction.good_at_least` (default 4 of 5).

PostgreSQL aggregates in one pass per measure with GROUPING SETS; SQLite returns the per-incident values
and Python aggregates them with the same definitions.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from bot.clock import utc

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
    deadlines: list[tuple[str, int, int]] = field(default_factory=list)  # key, met, missed
    hot_spots: list[tuple[str, int]] = field(default_factory=list)
    open_actions: int = 0
    satisfaction_target: float = 0.9
    good_at_least: int = 4

    def group(self, dimension: str, value: str = "all") -> Group | None:
        return next((g for g in self.groups if g.dimension == dimension and g.value == value), None)


def nearest_rank(values: Sequence[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(p * len(ordered)), 1) - 1]


def stats(values: Sequence[float]) -> Stats:
    if not values:
        return Stats()
    return Stats(len(values), sum(values) / len(values), nearest_rank(values, 0.5), nearest_rank(values, 0.9))


def _seconds(dialect: str, end: str, start: str) -> str:
    if dialect == "postgresql":
        return f"EXTRACT(EPOCH FROM ({end} - {start}))"
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


def _incident_measures_sql(dialect: str) -> str:
    """One row per incident of the period: its groups and measures (NULL where it has none)."""
    return f"""
        SELECT i.kind AS kind, i.severity AS severity, COALESCE(i.category, '-') AS category,
               {_seconds(dialect, "fr.closed_at", "i.created_at")} AS first_response,
               {_seconds(dialect, "i.resolved_at", "i.created_at")} AS resolve,
               r.score AS score
        FROM incidents i
        LEFT JOIN deadlines fr ON fr.incident_id = i.id AND fr.key = 'first_response' AND fr.state = 'met'
        LEFT JOIN satisfaction_ratings r ON r.incident_id = i.id AND r.source = 'customer'
        WHERE i.is_drill = :false AND i.created_at >= :start AND i.created_at < :end
    """


def _ack_sql(dialect: str) -> str:
    return f"""
        SELECT i.kind AS kind, i.severity AS severity, COALESCE(i.category, '-') AS category,
               {_seconds(dialect, "e.acked_at", "e.started_at")} AS ack
        FROM escalations e JOIN incidents i ON i.id = e.incident_id
        WHERE e.acked_at IS NOT NULL AND i.is_drill = :false AND i.created_at >= :start AND i.created_at < :end
    """


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
        report = Report(self.start, self.end, satisfaction_target=target, good_at_least=self.good)
        report.groups = self._groups_postgres() if self.dialect == "postgresql" else self._groups_python()
        report.deadlines = self._deadlines()
        report.hot_spots = self._hot_spots()
        report.open_actions = self._open_actions()
        return report

    # ---- PostgreSQL: aggregate in the database -------------------------------------------------------------

    def _grouped(self, inner: str, measures: str) -> list[Any]:
        sql = f"""
            SELECT GROUPING(kind) AS gk, GROUPING(severity) AS gs, GROUPING(category) AS gc,
                   kind, severity, category, {measures}
            FROM ({inner}) m
            GROUP BY GROUPING SETS ((), (kind), (severity), (category))
        """
        return list(self.s.execute(text(sql), self.params))

    @staticmethod
    def _key(row: Any) -> tuple[str, str]:
        if not row.gk:
            return "kind", row.kind
        if not row.gs:
            return "severity", row.severity
        if not row.gc:
            return "category", row.category
        return "all", "all"

    @staticmethod
    def _pg_stats(prefix: str) -> str:
        return (
            f"count({prefix}) AS {prefix}_n, avg({prefix}) AS {prefix}_mean, "
            f"percentile_disc(0.5) WITHIN GROUP (ORDER BY {prefix}) AS {prefix}_median, "
            f"percentile_disc(0.9) WITHIN GROUP (ORDER BY {prefix}) AS {prefix}_p90"
        )

    @staticmethod
    def _row_stats(row: Any, prefix: str) -> Stats:
        n = int(getattr(row, f"{prefix}_n") or 0)
        if not n:
            return Stats()
        values = [getattr(row, f"{prefix}_{k}") for k in ("mean", "median", "p90")]
        return Stats(n, *(float(v) for v in values))

    def _groups_postgres(self) -> list[Group]:
        groups: dict[tuple[str, str], Group] = {}
        measures = (
            f"count(*) AS incidents, {self._pg_stats('first_response')}, {self._pg_stats('resolve')}, "
            "count(score) AS rated, count(*) FILTER (WHERE score >= :good) AS satisfied"
        )
        for row in self._grouped(_incident_measures_sql(self.dialect), measures):
            key = self._key(row)
            groups[key] = Group(
                *key,
                incidents=int(row.incidents),
                first_response=self._row_stats(row, "first_response"),
                resolve=self._row_stats(row, "resolve"),
                rated=int(row.rated),
                satisfied=int(row.satisfied),
            )
        for row in self._grouped(_ack_sql(self.dialect), self._pg_stats("ack")):
            key = self._key(row)
            groups.setdefault(key, Group(*key)).acknowledge = self._row_stats(row, "ack")
        return _ordered(groups)

    # ---- SQLite: per-incident values, aggregated here --------------------------------------------------------

    def _groups_python(self) -> list[Group]:
        values: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        counts: Counter[tuple[str, str]] = Counter()
        for row in self.s.execute(text(_incident_measures_sql(self.dialect)), self.params):
            for key in _keys(row):
                counts[key] += 1
                bucket = values[key]
                if row.first_response is not None:
                    bucket["first_response"].append(float(row.first_response))
                if row.resolve is not None:
                    bucket["resolve"].append(float(row.resolve))
                if row.score is not None:
                    bucket["score"].append(float(row.score))
        for row in self.s.execute(text(_ack_sql(self.dialect)), self.params):
            for key in _keys(row):
                values[key]["ack"].append(float(row.ack))
        groups = {}
        for key in set(counts) | set(values):
            bucket = values[key]
            groups[key] = Group(
                *key,
                incidents=counts[key],
                first_response=stats(bucket["first_response"]),
                acknowledge=stats(bucket["ack"]),
                resolve=stats(bucket["resolve"]),
                rated=len(bucket["score"]),
                satisfied=sum(1 for s in bucket["score"] if s >= self.good),
            )
        return _ordered(groups)

    # ---- the same SQL on both ------------------------------------------------------------------------------

    def _deadlines(self) -> list[tuple[str, int, int]]:
        sql = """
            SELECT CASE WHEN d.key LIKE 'action-%' THEN 'action items' ELSE d.key END AS k,
                   SUM(CASE WHEN d.state = 'met' THEN 1 ELSE 0 END) AS met,
                   SUM(CASE WHEN d.state = 'missed' THEN 1 ELSE 0 END) AS missed
            FROM deadlines d JOIN incidents i ON i.id = d.incident_id
            WHERE i.is_drill = :false AND i.created_at >= :start AND i.created_at < :end
              AND d.state IN ('met', 'missed')
            GROUP BY 1 ORDER BY 1
        """
        return [(r.k, int(r.met), int(r.missed)) for r in self.s.execute(text(sql), self.params)]

    def _hot_spots(self) -> list[tuple[str, int]]:
        sql = """
            SELECT i.category AS category, COUNT(*) AS n FROM incidents i
            WHERE i.is_drill = :false AND i.created_at >= :start AND i.created_at < :end AND i.category IS NOT NULL
            GROUP BY i.category ORDER BY n DESC, i.category LIMIT 5
        """
        return [(r.category, int(r.n)) for r in self.s.execute(text(sql), self.params)]

    def _open_actions(self) -> int:
        sql = """
            SELECT COUNT(*) FROM deadlines d JOIN incidents i ON i.id = d.incident_id
            WHERE d.key LIKE 'action-%' AND d.state = 'pending' AND i.is_drill = :false
              AND i.created_at >= :start AND i.created_at < :end
        """
        return int(self.s.execute(text(sql), self.params).scalar() or 0)


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
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def percent(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.0f}%"


def as_text(report: Report, period: str) -> str:
    """Plain text that reads well in Slack (mrkdwn) and in a terminal."""
    total = report.group("all") or Group("all", "all")
    lines = [f"*Incident KPIs, {period}*: {total.incidents} incident(s), drills excluded"]
    fr, sat = total.first_response, total.satisfaction
    lines.append(
        f"First response: mean {hours(fr.mean)}, median {hours(fr.median)} (target ≤ 24h; {fr.n} responded) · "
        f"time to acknowledge: median {hours(total.acknowledge.median)}, p90 {hours(total.acknowledge.p90)} · "
        f"time to resolve: mean {hours(total.resolve.mean)}, median {hours(total.resolve.median)}, "
        f"p90 {hours(total.resolve.p90)}"
    )
    verdict = (
        ""
        if sat is None
        else (" :white_check_mark:" if sat >= report.satisfaction_target else " :warning: below target")
    )
    lines.append(
        f"Satisfaction: {percent(sat)} rated {report.good_at_least}+ of 5 ({total.rated} rated; "
        f"target {percent(report.satisfaction_target)}){verdict}"
    )
    if report.deadlines:
        lines.append(
            "Deadlines met: "
            + ", ".join(
                f"{key} {percent(met / (met + missed) if met + missed else None)} ({met}/{met + missed})"
                for key, met, missed in report.deadlines
            )
        )
    if report.hot_spots:
        lines.append("Hot spots: " + ", ".join(f"{category} ({n})" for category, n in report.hot_spots))
    lines.append(f"Open action items: {report.open_actions}")
    for dimension in DIMENSIONS[1:]:
        rows = [g for g in report.groups if g.dimension == dimension]
        if not rows:
            continue
        lines.append(f"\n*By {dimension}*")
        lines += [
            f"• {g.value}: {g.incidents} · first response {hours(g.first_response.mean)}/"
            f"{hours(g.first_response.median)} (mean/median) · ack {hours(g.acknowledge.median)} · "
            f"resolve {hours(g.resolve.median)}/{hours(g.resolve.p90)} (median/p90) · "
            f"satisfied {percent(g.satisfaction)}"
            for g in rows
        ]
    return "\n".join(lines)


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
            ]
        )
    blank = [""] * (len(CSV_FIELDS) - 4)
    for key, met, missed in report.deadlines:
        writer.writerow(["deadline", key, *blank, met, missed])
    return out.getvalue()
