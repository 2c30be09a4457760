"""KPI reports on demand (`/incident report`, `incident-desk report`) and the weekly report with its chart,
posted on the playbook's cron by the scheduler (claimed in `report_runs`, so it posts once)."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.core.clock import Clock, utc
from bot.core.config import Playbook
from bot.core.i18n import _, current_locale, use_locale
from bot.core.render import Renderer
from bot.core.text import safe_text
from bot.review.charts import weekly_chart
from bot.review.kpi import Report, as_text, kpi_report
from bot.slack.gateway import SlackCallError, SlackGateway
from store import queries
from store.drills import list_drills

log = logging.getLogger(__name__)

WEEKLY = "weekly"
DEFAULT_DAYS = 30


def period(days: tuple[date, ...], tz: ZoneInfo, now: datetime) -> tuple[datetime, datetime, str]:
    """Local days, both included, as a UTC [start, end) range; by default the last 30 days."""
    today = utc(now).astimezone(tz).date()
    first = days[0] if days else today - timedelta(days=DEFAULT_DAYS - 1)
    last = days[1] if len(days) > 1 else today
    start = datetime.combine(first, datetime.min.time(), tz)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tz)
    return utc(start), utc(end), f"{first.isoformat()} – {last.isoformat()}"


class ReportService:
    def __init__(
        self, playbook: Playbook, db: sessionmaker[Session], slack: SlackGateway, clock: Clock, renderer: Renderer
    ) -> None:
        self.playbook, self.db, self.slack, self.clock, self.renderer = playbook, db, slack, clock, renderer
        self.tz = renderer.tz

    # ---- on demand ----------------------------------------------------------------------------------------

    def period(self, days: tuple[date, ...] = ()) -> tuple[datetime, datetime, str]:
        return period(days, self.tz, self.clock.now())

    def report(self, start: datetime, end: datetime) -> Report:
        spec = self.playbook.satisfaction
        with self.db() as s:
            return kpi_report(s, start, end, good_at_least=spec.good_at_least, target=spec.target, zone=self.tz)

    def kpi_text(self, days: tuple[date, ...] = ()) -> str:
        start, end, label = self.period(days)
        return as_text(self.report(start, end), label, self.renderer)

    # ---- the weekly report --------------------------------------------------------------------------------

    def next_fire(self, after: datetime) -> datetime:
        trigger = CronTrigger.from_crontab(self.playbook.weekly_report.cron, timezone=self.tz)
        fire = trigger.get_next_fire_time(None, utc(after) + timedelta(seconds=1))
        assert fire is not None
        return utc(fire)

    def run_weekly(self, now: datetime) -> bool:
        """Called by every sweep: plan the first run, or claim and post the one that fell due."""
        if not self.playbook.weekly_report.channel:
            return False
        plan: datetime | None = None
        claimed = False
        with self.db.begin() as s:
            pending = queries.get_pending_report_run(s, WEEKLY)
            if pending is None:
                plan = self.next_fire(now)
            elif utc(pending.due_at) <= now:
                due, run_id = utc(pending.due_at), pending.id
                claimed = queries.claim_report_run(s, run_id, at=now)  # else another process took it
                plan = self.next_fire(max(now, due)) if claimed else None  # a run missed while down is not repeated
        if plan is not None:
            self._plan(plan)
        if not claimed:
            return False
        outcome = self.post_weekly(due)
        with self.db.begin() as s:
            run = queries.get_report_run(s, run_id)
            if run is not None:
                run.outcome = outcome
        return True

    def _plan(self, due: datetime) -> None:
        """Its own transaction: the unique (kind, due_at) makes a second process's plan a no-op."""
        try:
            with self.db.begin() as s:
                queries.add_report_run(s, kind=WEEKLY, due_at=due)
        except IntegrityError:
            pass

    def post_weekly(self, due: datetime) -> str:
        """The seven local days before the run's day, as text and a chart, in the configured channel."""
        last = utc(due).astimezone(self.tz).date() - timedelta(days=1)
        first = last - timedelta(days=6)
        start, end, label = self.period((first, last))
        report = self.report(start, end)
        name = (self.playbook.weekly_report.channel or "").lstrip("#")
        try:
            found = self.slack.find_channel(name)
            if found is None:
                log.warning("weekly report: no channel #%s", name)
                return f"no channel #{name}"
            channel = str(found["id"])
            with use_locale(self.playbook.locale):  # posted in a channel (bot.core.i18n)
                heading = ":bar_chart: " + _("Weekly incident report")
                drills = self.drills_text(start, end)
                self.slack.post(channel, heading + "\n" + as_text(report, label, self.renderer) + "\n" + drills)
                file_title = _("Incidents {period}", period=label)
            # the chart's font has neither dashes nor Chinese: its own title stays English
            chart_title = f"Incidents {first.isoformat()} to {last.isoformat()}"
            png = weekly_chart(self.daily_counts(start, end), report, title=chart_title)
            self.slack.upload(channel, f"incidents-{first.isoformat()}.png", png, title=file_title)
        except SlackCallError as exc:
            log.warning("weekly report: Slack refused it: %s", exc.error)
            return f"failed: {exc.error}"
        return "posted"

    def drills_text(self, start: datetime, end: datetime) -> str:
        """The drills run in the period (kept out of the figures above, listed on their own), current language."""
        with self.db() as s:
            drills = list_drills(s, start, end)
        if not drills:
            return _("*Drills run*: none")
        lines = [_("*Drills run*: {n}", n=len(drills))]
        for incident, drill in drills:
            spec = self.playbook.drills.scenarios.get(drill.scenario)
            name = spec.name_in(current_locale()) if spec else drill.scenario
            lines.append(
                _(
                    "• #{number} {scenario} ({kind}), {speed}× — opened {at}",
                    number=incident.id,
                    scenario=safe_text(name),
                    kind=self.playbook.kinds[incident.kind].name_in(current_locale())
                    if incident.kind in self.playbook.kinds
                    else incident.kind,
                    speed=f"{drill.speed:g}",
                    at=self.renderer.local_time(incident.created_at),
                )
            )
        return "\n".join(lines)

    def daily_counts(self, start: datetime, end: datetime) -> dict[date, Counter[str]]:
        """Incidents opened per local day, by severity (drills excluded)."""
        days: dict[date, Counter[str]] = {}
        day = utc(start).astimezone(self.tz).date()
        while datetime.combine(day, datetime.min.time(), self.tz) < end:
            days[day] = Counter()
            day += timedelta(days=1)
        with self.db() as s:
            for created, severity in queries.list_opened(s, start, end):
                local = utc(created).astimezone(self.tz).date()
                if local in days:
                    days[local][severity] += 1
        return days
