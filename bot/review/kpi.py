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
- complaint records (their own section, whether or not a complaint opened an incident): the complaints
  received in the period; first response from registration (`received_at`) to the complaint system's
  `first_response` event; each deadline met on time, missed (done late counts here, and is listed) or pending;
  satisfied as above, over the complaints' satisfaction scores. Read directly by received_at indexes (deadlines
  and events carry their complaint's), not from the rollup.

Why histograms: the database returns, per measure, counts per (kind, severity, category, minute), a few
thousand rows, and the roll-ups and percentiles are computed here (exact percentiles in SQL sorted a million
rows eight times: 6.5 s). Durations are summed as whole microseconds, so a sum is the same integer however it
is split. The incident's first response and customer rating are copied onto its row, and the incident's
opening time onto its deadlines, so only the acknowledgements need a join.

Why a rollup: those rows, per UTC month, are kept in `kpi_cells` / `kpi_deadline_cells`, so a year reads a
few thousand rows per month instead of a million incidents (2.3 s -> well under 1 s on PostgreSQL). They stay
exact: triggers (migration 0010) mark a month stale whenever a row that counts changes (a deadline met late,
an incident reopened, a drill flag set), a stale month is queried directly, and the scheduler recomputes
stale months that have ended (`refresh_rollup`). The edges of a period that are not whole months are
queried directly too.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from bot.core.clock import utc
from bot.core.i18n import _
from bot.core.render import Renderer
from store.complaint_records import ComplaintKpiRows, complaint_kpi_rows
from store.models import KpiMonth

log = logging.getLogger(__name__)

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
class ComplaintFigures:
    """Complaint records received in the period (seed 000's worked case), apart from the incidents: every
    complaint counts here whether or not it opened an incident."""

    received: int = 0
    by_channel: list[tuple[str, int]] = field(default_factory=list)
    by_category: list[tuple[str, int]] = field(default_factory=list)
    first_response: Stats = Stats()  # registration to the first response, in whole minutes for the median
    # key, met on time, missed (late or not done), of those done late, still pending
    deadlines: list[tuple[str, int, int, int, int]] = field(default_factory=list)
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
    complaints: ComplaintFigures = field(default_factory=ComplaintFigures)

    def group(self, dimension: str, value: str = "all") -> Group | None:
        return next((g for g in self.groups if g.dimension == dimension and g.value == value), None)


class Histogram:
    """Counts per whole minute, and the exact sum of microseconds (for the mean)."""

    def __init__(self) -> None:
        self.minutes: Counter[int] = Counter()
        self.n = 0
        self.total = 0

    def add(self, minute: int, n: int, total: int) -> None:
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
        return Stats(self.n, self.total / self.n / 1e6, self.rank(0.5), self.rank(0.9))


def _seconds(dialect: str, end: str, start: str) -> str:
    if dialect == "postgresql":
        return f"date_part('epoch', {end} - {start})"
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


def _micros(seconds: str) -> str:
    """Whole microseconds, so sums are exact integers whichever way they are added up (by month, or at once)."""
    return f"CAST(ROUND(({seconds}) * 1000000.0) AS BIGINT)"


def slot_of(moment: datetime) -> str:
    """The 15 minutes (UTC) a moment falls in, as the triggers mark them stale: `YYYY-MM-DD HH:MM`."""
    u = utc(moment)
    return f"{u:%Y-%m-%d %H:}{u.minute // 15 * 15:02d}"


@dataclass(frozen=True)
class Month:
    """A calendar month in the playbook's timezone, the rollup's unit: its cells hold exactly [start, end)."""

    key: str  # YYYY-MM, local
    start: datetime  # UTC
    end: datetime

    @classmethod
    def of(cls, moment: datetime, zone: tzinfo) -> Month:
        local = moment.astimezone(zone)
        first = datetime(local.year, local.month, 1, tzinfo=zone)
        following = datetime(local.year + local.month // 12, local.month % 12 + 1, 1, tzinfo=zone)
        return cls(f"{local:%Y-%m}", utc(first), utc(following))

    @property
    def aligned(self) -> bool:
        """Whether it starts and ends on the 15-minute slots the staleness is kept in (every zone in use)."""
        return all(t.minute % 15 == 0 and t.second == 0 and t.microsecond == 0 for t in (self.start, self.end))


def months_within(start: datetime, end: datetime, zone: tzinfo = UTC) -> list[Month]:
    """The whole months (of `zone`) inside [start, end)."""
    month = Month.of(start, zone)
    if month.start < utc(start):
        month = Month.of(month.end, zone)
    months = []
    while month.end <= utc(end):
        months.append(month)
        month = Month.of(month.end, zone)
    return months


MEASURES = ("resolve", "first", "ack")


class KpiQuery:
    """The report's figures. Whole months (of `zone`) that the rollup holds and that are not stale come from it
    (`kpi_cells`, `kpi_deadline_cells`: the same queries' rows, per month); the rest of the period is queried
    directly."""

    def __init__(
        self,
        session: Session,
        start: datetime,
        end: datetime,
        good_at_least: int = 4,
        *,
        rollup: bool = True,
        zone: tzinfo = UTC,
    ) -> None:
        self.s = session
        self.dialect = session.get_bind().dialect.name
        self.start, self.end = start, end
        self.good = good_at_least
        self.rollup = rollup
        self.zone = zone

    def _params(self, start: datetime, end: datetime) -> dict[str, Any]:
        params: dict[str, Any] = {"start": start, "end": end, "false": False, "good": self.good}
        if self.dialect == "sqlite":  # compared as text there, so in the form SQLAlchemy stores
            for key in ("start", "end"):
                params[key] = utc(params[key]).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
        return params

    def run(self, target: float) -> Report:
        if self.dialect == "postgresql":
            _tune(self.s)
        report = Report(self.start, self.end, satisfaction_target=target, good_at_least=self.good)
        months = self._rolled_up_months() if self.rollup else []
        ranges = self._direct_ranges(months)
        rows: dict[str, list[Any]] = {m: [] for m in MEASURES}
        deadline_rows: list[Any] = []
        for start, end in ranges:
            params = self._params(start, end)
            for measure in MEASURES:
                rows[measure] += self.s.execute(text(self._measure_sql(measure)), params).all()
            deadline_rows += self.s.execute(text(DEADLINES_SQL), params).all()
        if months:
            keys = [m.key for m in months]
            for measure in MEASURES:
                rows[measure] += self.s.execute(ROLLUP_CELLS_SQL, {"measure": measure, "months": keys}).all()
            deadline_rows += self.s.execute(ROLLUP_DEADLINES_SQL, {"months": keys}).all()
        report.groups = _groups(rows)
        category = sorted(
            ((g.value, g.incidents) for g in report.groups if g.dimension == "category" and g.value != "-"),
            key=lambda kv: (-kv[1], kv[0]),
        )
        report.hot_spots = category[:5]
        report.deadlines, report.met_late, report.open_actions = _deadlines(deadline_rows)
        return report

    def _rolled_up_months(self) -> list[Month]:
        """Whole months of the period that the rollup holds exactly: computed for this timezone and rating
        threshold, and no 15 minutes of them marked stale since."""
        wanted = {m.key: m for m in months_within(self.start, self.end, self.zone) if m.aligned}
        if not wanted:
            return []
        held = self.s.scalars(
            select(KpiMonth).where(
                KpiMonth.month.in_(wanted), KpiMonth.zone == _zone_name(self.zone), KpiMonth.good_at_least == self.good
            )
        )
        months = [
            wanted[row.month]
            for row in held
            if (row.starts_at, row.ends_at) == (wanted[row.month].start, wanted[row.month].end)
        ]
        if not months:
            return []
        stale = list(
            self.s.execute(
                STALE_SQL, {"first": slot_of(min(m.start for m in months)), "last": slot_of(max(m.end for m in months))}
            ).scalars()
        )
        return sorted(
            (m for m in months if not any(slot_of(m.start) <= slot < slot_of(m.end) for slot in stale)),
            key=lambda m: m.start,
        )

    def _direct_ranges(self, months: list[Month]) -> list[tuple[datetime, datetime]]:
        """The parts of [start, end) not covered by `months` (in order), merged where they touch."""
        ranges: list[tuple[datetime, datetime]] = []
        cursor = self.start
        for month in months:
            if cursor < month.start:
                ranges.append((cursor, month.start))
            cursor = month.end
        if cursor < self.end:
            ranges.append((cursor, self.end))
        return ranges

    def _minute(self, seconds: str) -> str:
        if self.dialect == "postgresql":
            return f"FLOOR(({seconds}) / 60)"
        return f"CAST(({seconds}) / 60.0 + 0.000001 AS INTEGER)"  # julianday arithmetic is off by microseconds

    def _measure_sql(self, measure: str) -> str:
        """Counts and summed microseconds per (kind, severity, category, whole minute of the measure); for
        `resolve` also every incident (minute NULL while open) with its customer ratings. Incidents carry
        their first response and rating (KPI copies), so only acknowledgements need a join."""
        d = self.dialect
        source, where, rated, satisfied = "incidents i", "", "0", "0"
        if measure == "resolve":
            seconds = _seconds(d, "i.resolved_at", "i.created_at")
            rated = "SUM(CASE WHEN i.satisfaction_score IS NOT NULL THEN 1 ELSE 0 END)"
            satisfied = "SUM(CASE WHEN i.satisfaction_score >= :good THEN 1 ELSE 0 END)"
        elif measure == "first":
            seconds = _seconds(d, "i.first_response_at", "i.created_at")
            where = "AND i.first_response_at IS NOT NULL"
        else:
            seconds = _seconds(d, "e.acked_at", "e.started_at")
            source, where = "escalations e JOIN incidents i ON i.id = e.incident_id", "AND e.acked_at IS NOT NULL"
        return f"""
            SELECT i.kind AS kind, i.severity AS severity, COALESCE(i.category, '-') AS category,
                   {self._minute(seconds)} AS minute, COUNT(*) AS n, SUM({_micros(seconds)}) AS total,
                   {rated} AS rated, {satisfied} AS satisfied
            FROM {source}
            WHERE i.is_drill = :false AND i.created_at >= :start AND i.created_at < :end {where}
            GROUP BY 1, 2, 3, 4
        """


# Met on time and not (missed, or met late) per deadline type, and open action items: deadlines only (they
# carry their incident's opening time), no join.
DEADLINES_SQL = """
    SELECT CASE WHEN d.key LIKE 'action-%' THEN 'action items' ELSE d.key END AS k,
           CASE WHEN d.state = 'met' AND d.closed_at > d.due_at THEN 'late' ELSE d.state END AS state,
           COUNT(*) AS n
    FROM deadlines d
    WHERE d.incident_is_drill = :false AND d.incident_created_at >= :start AND d.incident_created_at < :end
    GROUP BY 1, 2
"""
STALE_SQL = text("SELECT slot FROM kpi_stale WHERE slot >= :first AND slot < :last")
ROLLUP_CELLS_SQL = text(
    """
    SELECT kind, severity, category, minute, SUM(n) AS n, SUM(total) AS total,
           SUM(rated) AS rated, SUM(satisfied) AS satisfied
    FROM kpi_cells WHERE measure = :measure AND month IN :months
    GROUP BY kind, severity, category, minute
    """
).bindparams(bindparam("months", expanding=True))
ROLLUP_DEADLINES_SQL = text(
    "SELECT key AS k, state, SUM(n) AS n FROM kpi_deadline_cells WHERE month IN :months GROUP BY key, state"
).bindparams(bindparam("months", expanding=True))


def _groups(rows: dict[str, list[Any]]) -> list[Group]:
    """Fold the rows (direct and rolled up alike) into the groups: all, per kind, severity and category."""
    counts: Counter[tuple[str, str]] = Counter()
    rated: Counter[tuple[str, str]] = Counter()
    satisfied: Counter[tuple[str, str]] = Counter()
    for row in rows["resolve"]:
        for key in _keys(row):
            counts[key] += int(row.n)
            rated[key] += int(row.rated or 0)
            satisfied[key] += int(row.satisfied or 0)
    measures: dict[str, dict[tuple[str, str], Histogram]] = {m: {} for m in MEASURES}
    for name in MEASURES:
        for row in rows[name]:
            if row.minute is None:
                continue  # not resolved (yet)
            for key in _keys(row):
                measures[name].setdefault(key, Histogram()).add(int(row.minute), int(row.n), int(row.total))
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


def _deadlines(rows: list[Any]) -> tuple[list[tuple[str, int, int]], dict[str, int], int]:
    tally: dict[str, Counter[str]] = {}
    for row in rows:
        tally.setdefault(row.k, Counter())[row.state] += int(row.n)
    compliance = sorted(
        (k, c["met"], c["missed"] + c["late"]) for k, c in tally.items() if c["met"] or c["missed"] or c["late"]
    )
    late = {k: c["late"] for k, c in tally.items() if c["late"]}
    return compliance, late, tally.get("action items", Counter())["pending"]


def _ranked(counts: Counter[str]) -> list[tuple[str, int]]:
    """Most first, then by name."""
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def complaint_figures(rows: ComplaintKpiRows) -> ComplaintFigures:
    """Fold the complaint rows (store/complaint_records.py) into the report's complaint section."""
    channels: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    for channel, category, n in rows.by_channel_category:
        channels[channel] += n
        categories[category] += n
    first = Histogram()
    for minute, n, total in rows.first_response:
        first.add(minute, n, total)
    tally: dict[str, Counter[str]] = {}
    for key, state, late, n in rows.deadlines:
        tally.setdefault(key, Counter())[state] += n
        if late:
            tally[key]["late"] += n
    return ComplaintFigures(
        received=sum(channels.values()),
        by_channel=_ranked(channels),
        by_category=_ranked(categories),
        first_response=first.stats(),
        deadlines=[(k, c["met"], c["missed"], c["late"], c["pending"]) for k, c in sorted(tally.items())],
        rated=rows.rated,
        satisfied=rows.satisfied,
    )


def refresh_rollup(
    db: sessionmaker[Session], now: datetime, *, zone: tzinfo = UTC, good_at_least: int = 4, limit: int = 3
) -> list[str]:
    """Compute the months (of `zone`) that have ended and hold stale slots, oldest first, at most `limit`: the
    scheduler's job. A rollup kept for another timezone or rating threshold is started again.

    On PostgreSQL the three tables are share-locked meanwhile (a month's queries, a fraction of a second), so
    no change can commit between reading the records and clearing the month's stale slots; a refresh that
    cannot get the lock at once gives way and runs at a later sweep. SQLite has one writer at a time anyway."""
    name = _zone_name(zone)
    with db() as s:
        other = s.execute(
            text("SELECT 1 FROM kpi_months WHERE zone <> :zone OR good_at_least <> :good LIMIT 1"),
            {"zone": name, "good": good_at_least},
        ).first()
        if other is not None:
            _start_again(s)
            s.commit()
        due: list[Month] = []
        after = ""
        while len(due) < limit:  # the earliest stale slot, then the first one past its month: a few index reads
            slot = s.execute(text("SELECT MIN(slot) FROM kpi_stale WHERE slot >= :after"), {"after": after}).scalar()
            if slot is None:
                break
            month = Month.of(datetime.strptime(slot, "%Y-%m-%d %H:%M").replace(tzinfo=UTC), zone)
            if month.end > utc(now) or not month.aligned:  # not ended yet; or a zone off the 15 minutes: direct
                break
            due.append(month)
            after = slot_of(month.end)
    done = []
    for month in due:
        try:
            with db.begin() as s:
                _refresh_month(s, month, name, good_at_least)
        except OperationalError:
            log.info("kpi rollup: %s is busy; computed at a later sweep", month.key)
            break
        done.append(month.key)
    return done


def _zone_name(zone: tzinfo) -> str:
    return str(getattr(zone, "key", None) or zone.tzname(None) or zone)


def _tune(s: Session) -> None:
    """For this transaction only: no JIT (compiling these plans costs more than running them), and memory
    enough to group a month of rows in a hash table (4 MB made PostgreSQL sort them on disk: 0.7 s a month)."""
    s.execute(text("SET LOCAL jit = off"))
    s.execute(text("SET LOCAL work_mem = '64MB'"))


def _slot_sql(dialect: str, column: str) -> str:
    """`slot_of` in SQL, as the triggers of migration 0010 write it."""
    if dialect == "postgresql":
        return f"kpi_slot({column})"
    return f"substr({column}, 1, 14) || printf('%02d', (CAST(substr({column}, 15, 2) AS INTEGER) / 15) * 15)"


def _start_again(s: Session) -> None:
    """Forget every computed month and mark every incident's slot stale, so all are computed again."""
    dialect = s.get_bind().dialect.name
    s.execute(text("DELETE FROM kpi_months"))
    s.execute(text("DELETE FROM kpi_cells"))
    s.execute(text("DELETE FROM kpi_deadline_cells"))
    insert = "INSERT INTO" if dialect == "postgresql" else "INSERT OR IGNORE INTO"
    conflict = " ON CONFLICT DO NOTHING" if dialect == "postgresql" else ""
    s.execute(
        text(f"{insert} kpi_stale (slot) SELECT DISTINCT {_slot_sql(dialect, 'created_at')} FROM incidents{conflict}")
    )


def _refresh_month(s: Session, month: Month, zone: str, good: int) -> None:
    query = KpiQuery(s, month.start, month.end, good, rollup=False)
    if query.dialect == "postgresql":
        s.execute(text("SET LOCAL lock_timeout = '200ms'"))
        s.execute(text("LOCK TABLE incidents, deadlines, escalations IN SHARE MODE"))
        _tune(s)
    params = {**query._params(month.start, month.end), "month": month.key}
    s.execute(
        text("DELETE FROM kpi_stale WHERE slot >= :first AND slot < :last"),
        {"first": slot_of(month.start), "last": slot_of(month.end)},
    )
    s.execute(text("DELETE FROM kpi_months WHERE month = :month"), params)
    s.execute(text("DELETE FROM kpi_cells WHERE month = :month"), params)
    s.execute(text("DELETE FROM kpi_deadline_cells WHERE month = :month"), params)
    for measure in MEASURES:
        s.execute(
            text(
                "INSERT INTO kpi_cells (month, measure, kind, severity, category, minute, n, total, rated, satisfied)"
                f" SELECT :month, :measure, kind, severity, category, minute, n, total, rated, satisfied"
                f" FROM ({query._measure_sql(measure)}) AS cells"
            ),
            {**params, "measure": measure},
        )
    s.execute(
        text(
            "INSERT INTO kpi_deadline_cells (month, key, state, n)"
            f" SELECT :month, k, state, n FROM ({DEADLINES_SQL}) AS c"
        ),
        params,
    )
    s.add(KpiMonth(month=month.key, zone=zone, good_at_least=good, starts_at=month.start, ends_at=month.end))


def _keys(row: Any) -> Iterable[tuple[str, str]]:
    return (("all", "all"), ("kind", row.kind), ("severity", row.severity), ("category", row.category))


def _ordered(groups: dict[tuple[str, str], Group]) -> list[Group]:
    return sorted(groups.values(), key=lambda g: (DIMENSIONS.index(g.dimension), g.value))


def kpi_report(
    session: Session,
    start: datetime,
    end: datetime,
    *,
    good_at_least: int = 4,
    target: float = 0.9,
    zone: tzinfo = UTC,
    rollup: bool = True,
) -> Report:
    """The report over [start, end); whole months of `zone` (the playbook's) come from the rollup, unless
    `rollup=False`, which queries every record (the rollup's own check)."""
    report = KpiQuery(session, start, end, good_at_least, rollup=rollup, zone=zone).run(target)
    report.complaints = complaint_figures(complaint_kpi_rows(session, start, end, good_at_least))
    return report


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


def complaints_text(report: Report, renderer: Renderer) -> str:
    """The complaint records' section (templates/slack/kpi_complaints.j2); empty when none were received."""
    c = report.complaints
    if not c.received:
        return ""
    sat = c.satisfaction
    return renderer.render(
        "slack/kpi_complaints.j2",
        received=c.received,
        by_channel=c.by_channel,
        by_category=c.by_category,
        fr_mean=hours(c.first_response.mean),
        fr_median=hours(c.first_response.median),
        responded=c.first_response.n,
        satisfaction=percent(sat),
        good_at_least=report.good_at_least,
        rated=c.rated,
        target=percent(report.satisfaction_target),
        verdict="" if sat is None else ("met" if sat >= report.satisfaction_target else "below"),
        deadlines=[
            {"key": key, "met": met, "missed": missed, "late": late, "pending": pending}
            for key, met, missed, late, pending in c.deadlines
        ],
    )


def as_text(report: Report, period: str, renderer: Renderer | None = None) -> str:
    """Slack mrkdwn that reads well in a terminal too (templates/slack/kpi.j2), in the current language; the
    complaint records follow as their own section."""
    renderer = renderer or Renderer()
    total = report.group("all") or Group("all", "all")
    sat = total.satisfaction
    by = [(d, [_figures(g) for g in report.groups if g.dimension == d]) for d in DIMENSIONS[1:]]
    return renderer.render(
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
    ) + complaints_text(report, renderer)


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
    # the complaint records: their own dimensions (the count stands in the `incidents` column)
    c = report.complaints
    if c.received:
        share = "" if c.satisfaction is None else round(c.satisfaction, 4)
        rest = [""] * 8
        writer.writerow(["complaints", "all", c.received, *cells(c.first_response), *rest, c.rated, c.satisfied, share])
        writer.writerows(["complaint_channel", v, n] for v, n in c.by_channel)
        writer.writerows(["complaint_category", v, n] for v, n in c.by_category)
        for key, met, missed, late, _pending in c.deadlines:
            writer.writerow(["complaint_deadline", key, *blank, met, missed, late])
    return out.getvalue()
