"""The running surge plan (seed 004: 启动 → 执行 → 监控 → 结束), once a surge incident is open.

The activation (bot/surge, the proposal's Activate) opens the incident and records `surge_activated`; this
service takes over from the record, so it does not matter who opened it or whether this process did:
- start (once, when the channel is set up): each department's duties posted in the channel with its owner,
  the diversion notices drafted for approval, and the live volume chart posted;
- the departments' progress reports are the kind's cadence deadlines (config.yaml `kinds.surge.deadlines`),
  reminded and escalated by the scheduler like any other;
- the chart is posted again every `surge.chart_every` while the incident is being worked on;
- End is suggested (surge channel and leadership channel, with an End button) once volume has stayed below
  every warning line for `surge.end_after`; End is the leadership group's (Leadership.is_leader), resolves the
  incident and posts the summary (bot/surge/summary.py). A surge resolved otherwise gets its summary too.
Everything runs from the sweeper (`run_due`) on the injected clock; each step is claimed in the store first
(surge_runs), so a second sweep or replica never does it twice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot.core.clock import Clock, utc
from bot.core.config import Playbook
from bot.core.errors import BotError, ConflictError, NotFoundError, PermissionDeniedError
from bot.core.i18n import _, current_locale, in_channel_language
from bot.core.render import Renderer
from bot.core.text import safe_text
from bot.incidents.lifecycle import Lifecycle
from bot.incidents.records import load_incident
from bot.notices.outbox import Outbox
from bot.notices.service import NoticeService
from bot.slack.blocks import end_surge_blocks
from bot.slack.gateway import SlackCallError, SlackGateway
from bot.surge import volume
from bot.surge.chart import Threshold, volume_chart
from bot.surge.leadership import Leadership
from bot.surge.summary import Activation, SummaryFacts, activation_of, summary_text
from store import queries
from store import surge_runs as runs
from store.models import Incident
from store.states import ACTIVE

log = logging.getLogger(__name__)

CHART_SPAN = timedelta(hours=6)  # the chart shows at most this much history
CHART_BARS = 120  # and at most this many bars (the bucket grows with the span)
BEFORE = timedelta(hours=1)  # the chart (and the summary's "before") starts this long before the crossing


def window_words(window: timedelta) -> str:
    """A warning line's window as people say it: 10 min, 2 h."""
    minutes = int(window.total_seconds() // 60)
    if minutes % 60 == 0:
        return _("{hours} h", hours=minutes // 60)
    return _("{minutes} min", minutes=minutes)


class SurgePlan:
    def __init__(
        self,
        *,
        playbook: Playbook,
        db: sessionmaker[Session],
        slack: SlackGateway,
        clock: Clock,
        renderer: Renderer,
        outbox: Outbox,
        leadership: Leadership,
        lifecycle: Lifecycle,
        notices: NoticeService,
    ) -> None:
        self.playbook = playbook
        self.spec = playbook.surge
        self.db = db
        self.slack = slack
        self.clock = clock
        self.renderer = renderer
        self.outbox = outbox
        self.leadership = leadership
        self.lifecycle = lifecycle
        self.notices = notices

    # ---- the sweeper's job ------------------------------------------------------------------------------

    def run_due(self, now: datetime) -> None:
        """Start the surges waiting to start, refresh charts, suggest End, sum up the ones resolved."""
        if not self.spec.enabled:
            return
        with self.db() as s:
            to_start = runs.list_surges_to_start(s, self.spec.kind)
            running = runs.list_running_surges(s)
            finished = runs.list_resolved_unended(s)
        for incident_id in to_start:
            self._safely(self.start, incident_id)
        for incident_id in running:
            self._safely(self._refresh_chart, incident_id, now)
            self._safely(self._suggest_end, incident_id, now)
        for incident_id in finished:
            self._safely(self._finish, incident_id, None)

    @staticmethod
    def _safely(step: object, *args: object) -> None:
        try:
            step(*args)  # type: ignore[operator]
        except Exception:  # one surge's trouble must not hold back the others; the next sweep tries again
            log.exception("surge plan: %s%s failed", getattr(step, "__name__", step), args)

    # ---- start ------------------------------------------------------------------------------------------

    def start(self, incident_id: int) -> bool:
        """Post the departments' duties, draft the diversion notices, post the chart; once (False if started)."""
        now = self.clock.now()
        with self.db.begin() as s:
            if not runs.claim_surge_run(s, incident_id, now):
                return False
            incident = load_incident(s, incident_id)
            with in_channel_language(self.playbook):
                text = self.duties_text(incident)
            self.outbox.add(s, incident_id, f"surge:{incident_id}:duties", "post", text=text)
            queries.add_timeline_event(
                s, incident_id, at=now, event="surge_plan_started", actor_id=None, text=incident.title, data={}
            )
            lead = self._lead(incident)
            channel = incident.channel_id
        self.outbox.run(incident_id)
        if channel:
            self._draft_diversion(incident_id, channel, lead)
        self._refresh_chart(incident_id, now)
        return True

    def _lead(self, incident: Incident) -> str | None:
        return next((a.user_id for a in incident.roles if a.role == self.playbook.lead_role and a.user_id), None)

    def department_name(self, role: str) -> str:
        """A department's name in this plan (客户服务部), else its role's, in the current language."""
        kind = self.playbook.kinds[self.spec.kind]
        fallback = self.playbook.role_name(role)
        spec = kind.departments.get(role)
        return spec.name_in(current_locale(), fallback) if spec else fallback

    def duties_text(self, incident: Incident) -> str:
        """One line per department: its name, its owner (or how to name one), its duties on activation."""
        kind = self.playbook.kinds[incident.kind]
        owners = {a.role: a.user_id for a in incident.roles if a.user_id}
        lines = [_("*Surge plan activated: each department's duties* (seed 004, 客户分流预案)")]
        locale = current_locale()
        for role, department in kind.departments.items():
            duties = department.duties.get(locale) or next(iter(department.duties.values()))
            owner = owners.get(role)
            who = f"<@{owner}>" if owner else _("nobody yet: `/incident assign {role} @someone`", role=role)
            lines.append(
                _(
                    "• *{department}* ({who}): {duties}",
                    department=safe_text(self.department_name(role)),
                    who=who,
                    duties=safe_text(duties),
                )
            )
        cadence = [d for d in kind.deadlines if d.cadence]
        if cadence:
            lines.append(
                _(
                    "Each department reports its progress here with `/incident update <text>` every {every}; "
                    "a late report is reminded, then escalated.",
                    every=window_words(cadence[0].duration_for(incident.severity)),
                )
            )
        return "\n".join(lines)

    def _draft_diversion(self, incident_id: int, channel: str, lead: str | None) -> None:
        """The diversion notices, drafted in the lead's name (the activating leader): someone else approves."""
        hint = _("Draft it with `/incident notice diversion`.")
        if lead is None:
            with in_channel_language(self.playbook):
                text = _("No lead yet, so the diversion notice was not drafted.") + " " + hint
            self._post(incident_id, "diversion:none", text)
            return
        try:
            self.notices.draft(channel_id=channel, stage="diversion", actor=lead)
        except BotError as exc:
            log.warning("surge #%s: the diversion notice was not drafted: %s", incident_id, exc.message)
            with in_channel_language(self.playbook):
                text = _("The diversion notice was not drafted: {why}", why=exc.message) + " " + hint
            self._post(incident_id, "diversion:failed", text)

    def _post(self, incident_id: int, key: str, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        """A message in the surge channel, through the incident's ordered outbox (posted once)."""
        with self.db.begin() as s:
            if blocks:
                self.outbox.add(s, incident_id, f"surge:{incident_id}:{key}", "post", text=text, blocks=blocks)
            else:
                self.outbox.add(s, incident_id, f"surge:{incident_id}:{key}", "post", text=text)
        self.outbox.run(incident_id)

    # ---- volume ---------------------------------------------------------------------------------------------

    def arrivals(self, s: Session, start: datetime, end: datetime) -> list[volume.Arrival]:
        return [volume.Arrival(utc(at), c, ch) for at, c, ch in runs.list_complaint_arrivals(s, start, end)]

    def _refresh_chart(self, incident_id: int, now: datetime) -> None:
        """Post the chart if it has never been posted or `chart_every` has passed since (claimed first)."""
        with self.db.begin() as s:
            run = runs.get_surge_run(s, incident_id)
            incident = load_incident(s, incident_id)
            if run is None or incident.status not in ACTIVE or not incident.channel_id:
                return
            last = utc(run.chart_at) if run.chart_at else None
            if last is not None and now - last < self.spec.chart_every:
                return
            if not runs.claim_chart(s, incident_id, last=run.chart_at, now=now):
                return
            activation = activation_of(queries.latest_event(s, incident_id, "surge_activated"), incident)
            start = max(activation.crossed_at - BEFORE, now - CHART_SPAN)
            arrivals = self.arrivals(s, start, now + timedelta(microseconds=1))
            channel, number = incident.channel_id, incident.id
        png, comment = self._chart(number, arrivals, start, now, activation)
        try:
            self.slack.upload(
                channel, f"surge-{number}-{now:%Y%m%d%H%M}.png", png, title=comment[:250], comment=comment
            )
        except SlackCallError as exc:
            log.warning("surge #%s: the chart was refused: %s", number, exc.error)

    def _chart(
        self, number: int, arrivals: list[volume.Arrival], start: datetime, now: datetime, activation: Activation
    ) -> tuple[bytes, str]:
        span = max(now - start, timedelta(minutes=1))
        bucket = timedelta(minutes=max(1, -(-int(span.total_seconds() // 60) // CHART_BARS)))
        times = [a.at for a in arrivals]
        counts = volume.buckets(times, start, now, bucket)
        overall = [line for line in self.spec.warning_lines if line.category is None and line.contact_channel is None]
        thresholds = [
            Threshold(
                f"{line.count} / {int(line.window.total_seconds() // 60)} min",
                line.count * bucket / line.window,
            )
            for line in overall
        ]
        local = utc(start).astimezone(self.renderer.tz)
        marks = [("activated", utc(activation.activated_at).astimezone(self.renderer.tz))]
        # the chart's font has no Chinese: its own words stay English (the comment below speaks the channel's)
        heading = f"Surge #{number}: complaints"
        png = volume_chart(counts, start=local, bucket=bucket, thresholds=thresholds, marks=marks, title=heading)
        with in_channel_language(self.playbook):
            lines = [
                _(
                    ":chart_with_upwards_trend: Complaint volume of #{number} at {time} (refreshed every {every}):",
                    number=number,
                    time=self.renderer.local_time(now, "%H:%M %Z"),
                    every=window_words(self.spec.chart_every),
                )
            ]
            for line in self.spec.warning_lines:
                count = volume.count_at(volume.watched(line, arrivals), now, line.window)
                lines.append(
                    _(
                        "• {what}: {count} in the last {window} (warning line {line})",
                        what=self._line_name(line),
                        count=count,
                        window=window_words(line.window),
                        line=line.count,
                    )
                )
        return png, "\n".join(lines)

    @staticmethod
    def _line_name(line: object) -> str:
        category = getattr(line, "category", None)
        channel = getattr(line, "contact_channel", None)
        if category:
            return _("category {name}", name=safe_text(category))
        if channel:
            return _("contact channel {name}", name=safe_text(channel))
        return _("all complaints")

    # ---- end ----------------------------------------------------------------------------------------------

    def _suggest_end(self, incident_id: int, now: datetime) -> None:
        """Once volume has stayed below every line for `end_after` (and the plan has run that long), suggest
        End in the surge channel and the leadership channel; if volume rises again, suggest it again later."""
        with self.db.begin() as s:
            run = runs.get_surge_run(s, incident_id)
            if run is None:
                return
            if now - utc(run.started_at) < self.spec.end_after:
                return  # the plan has not run that long yet
            since = now - self.spec.end_after
            longest = max((line.window for line in self.spec.warning_lines), default=timedelta(0))
            arrivals = self.arrivals(s, since - longest, now + timedelta(microseconds=1))
            calm = volume.quiet(self.spec.warning_lines, arrivals, now, self.spec.end_after)
            if not calm:
                runs.set_end_suggested(s, incident_id, None)
                return
            if not runs.set_end_suggested(s, incident_id, now):
                return  # suggested already
            incident = load_incident(s, incident_id)
            number = incident.id
        with in_channel_language(self.playbook):
            text = _(
                ":white_check_mark: Complaint volume of #{number} has stayed below every warning line for {quiet}. "
                "The leadership group may end the surge plan: *End* resolves it and posts the summary.",
                number=number,
                quiet=window_words(self.spec.end_after),
            )
            blocks = end_surge_blocks(text, number)
        self._post(incident_id, f"end-suggested:{now:%Y%m%d%H%M}", text, blocks)
        leadership = self.leadership.channel_id()
        if leadership:
            try:
                self.leadership.post(leadership, text, blocks, key=f"surge:{number}:end-suggested:{now:%Y%m%d%H%M}")
            except SlackCallError as exc:
                log.warning("surge #%s: the leadership channel refused the End suggestion: %s", number, exc.error)

    def end_running(self, *, actor: str) -> str:
        """`/incident surge end`: what the End button does, for the surge plan running now (the latest, should
        two run). Leaders only, refused before anything is looked up."""
        self.leadership.require(actor, ending=True)
        with self.db() as s:
            running = runs.list_running_surges(s)
        if not running:
            raise NotFoundError(_("No surge plan is running; `/incident surge` shows the volume now."))
        return self.end(incident_id=running[-1], actor=actor, command="/incident surge end")

    def end(self, *, incident_id: int, actor: str, command: str = "button: End") -> str:
        """End (the leadership group only): resolve the surge incident and post the summary."""
        with self.db() as s:
            incident = load_incident(s, incident_id)
            run = runs.get_surge_run(s, incident_id)
        if incident.kind != self.spec.kind or run is None:
            raise NotFoundError(_("#{number} is not a running surge plan.", number=incident_id))
        if not self.leadership.is_leader(actor):
            raise PermissionDeniedError(
                _(
                    "Only the leadership group (预案领导小组) can end the surge plan #{number}: the people named in "
                    "the playbook's `surge.leaders`, else the members of #{channel}.",
                    number=incident_id,
                    channel=self.spec.leadership_channel,
                )
            )
        if run.ended_at is not None or incident.status not in ACTIVE:
            raise ConflictError(_("The surge plan #{number} has ended already.", number=incident_id))
        if incident.channel_id:
            with in_channel_language(self.playbook):
                summary = _("Surge plan ended by the leadership group.")
            self.lifecycle.resolve(
                channel_id=incident.channel_id, summary=summary, actor=actor, command=command, checked=True
            )
        self._finish(incident_id, actor)
        return _(
            ":white_check_mark: The surge plan #{number} has ended; the summary is in its channel.", number=incident_id
        )

    def _finish(self, incident_id: int, actor: str | None) -> None:
        """Record the end (once) and post the summary in the surge channel and the leadership channel."""
        now = self.clock.now()
        with self.db.begin() as s:
            incident = load_incident(s, incident_id)
            by = actor or self._resolver(s, incident_id) or ""
            ended_at = utc(incident.resolved_at) if incident.resolved_at else now
            if not runs.end_surge_run(s, incident_id, by=by, at=ended_at):
                return
            queries.add_timeline_event(
                s, incident_id, at=now, event="surge_ended", actor_id=actor, text=incident.title, data={}
            )
            facts = self.summary_facts(s, incident, ended_at, by)
        with in_channel_language(self.playbook):
            text = summary_text(facts, self.playbook, self.renderer, self.department_name)
        self._post(incident_id, "summary", text)
        leadership = self.leadership.channel_id()
        if leadership:
            try:
                self.leadership.post(leadership, text, key=f"surge:{incident_id}:summary")
            except SlackCallError as exc:
                log.warning("surge #%s: the leadership channel refused the summary: %s", incident_id, exc.error)

    @staticmethod
    def _resolver(s: Session, incident_id: int) -> str | None:
        event = queries.latest_event(s, incident_id, "resolved")
        return event.actor_id if event is not None else None

    def summary_facts(self, s: Session, incident: Incident, ended_at: datetime, ended_by: str) -> SummaryFacts:
        """What the summary says, read from the record: the activation, the volume, reports and notices."""
        activation = activation_of(queries.latest_event(s, incident.id, "surge_activated"), incident)
        start = activation.crossed_at - BEFORE
        arrivals = self.arrivals(s, start, ended_at + timedelta(microseconds=1))
        return SummaryFacts(
            incident=incident,
            activation=activation,
            ended_at=ended_at,
            ended_by=ended_by,
            arrivals=arrivals,
            lines=self.spec.warning_lines,
            timeline=list(queries.list_timeline(s, incident.id)),
            deadlines=list(queries.list_deadlines_by_due(s, incident.id)),
            notices=queries.list_published_notices(s, incident.id),
        )
