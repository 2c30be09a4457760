"""Drills (seeds 002, 003): a scenario of the playbook played as a drill incident on its own clock.

The drill clock is the injected clock, read through the drill's speed: a moment of plan time `p` after the
start is due in real time at `start + p / speed`, and a real moment `t` reads as plan time
`(t - start) * speed`. Nothing runs on a second timer: the drill's deadlines and pages are ordinary rows
with compressed due times (bot/deadlines), and its cues and scorecard are rows in `drill_cues` that the
sweeper injects when due, like any other due work, so they survive restarts and tests drive them by moving
the clock. Real incidents have no drill row and keep real time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy.orm import Session, sessionmaker

from bot.core.clock import Clock, utc
from bot.core.config import DrillExpectSpec, DrillScenarioSpec, Playbook
from bot.core.errors import ConflictError, UserInputError
from bot.core.i18n import N_, _, current_locale, in_channel_language, in_recipients_language
from bot.core.text import mask_identifiers, safe_text
from bot.deadlines.service import humanize
from bot.incidents.permissions import Action
from bot.incidents.service import IncidentCreate, IncidentService
from bot.notices.outbox import Outbox
from bot.slack.gateway import SlackCallError, SlackGateway
from store import drills as store
from store import queries
from store.models import Drill, DrillCue, Incident, TimelineEvent
from store.states import ACTIVE, IncidentStatus

log = logging.getLogger(__name__)

SCORECARD = "scorecard"  # the cue row that posts the scorecard when the last expectation is due
SPEED_MAX = 100000
CUE_LABELS = {
    "complaint": N_("Complaint"),
    "alert": N_("Alert"),
    "volume": N_("Contact volume"),
    "callback": N_("Customer calls back"),
    "journalist": N_("Journalist"),
}
ACTION_LABELS = {
    "role_taken": N_("Role taken: {role}"),
    "notice_drafted": N_("Customer notice drafted"),
    "notice_approved": N_("Customer notice approved"),
    "ack": N_("Lead acknowledges"),
    "update": N_("Progress update posted"),
    "customer_answered": N_("Customers answered (notice published or solution given)"),
    "resolved": N_("Incident resolved"),
}
# which timeline events do an expected action
EVENTS = {
    "role_taken": ("role_taken", "assigned"),
    "notice_drafted": ("notice_drafted",),
    "notice_approved": ("notice_approved",),
    "ack": ("acknowledged",),
    "update": ("update",),
    "customer_answered": ("notice_published", "solution_communicated"),
    "resolved": ("resolved",),
}


def plan_offset(drill: Drill, at: datetime) -> timedelta:
    """Real time `at` read on the drill's clock: plan time since the drill started."""
    return (utc(at) - utc(drill.started_at)) * drill.speed


def real_due(start: datetime, offset: timedelta, speed: float) -> datetime:
    """When a moment `offset` of plan time after `start` falls due in real time."""
    return utc(start) + offset / speed


def plan_time(offset: timedelta) -> str:
    """Plan time as people read it on a drill: T+1h 5m."""
    return "T+" + humanize(offset)


def parse_speed(word: str) -> float:
    """A drill's speed factor: a number from 1 to 100000 (`60`, `x60`, `×60`)."""
    text = word.strip().lower().lstrip("x×")
    try:
        speed = float(text)
    except ValueError:
        speed = 0.0
    if not 1 <= speed <= SPEED_MAX:  # NaN fails this too
        raise UserInputError(
            _(
                "`{word}` is not a speed: give how many times faster than real time the drill runs, a number from "
                "1 to {most} (60: an hour of the plan a minute). Example: `/incident drill payment-outage 60`.",
                word=safe_text(word),
                most=SPEED_MAX,
            ),
            field="speed",
        )
    return speed


Outcome = Literal["on_time", "late", "missed"]
OUTCOMES: tuple[Outcome, ...] = ("on_time", "late", "missed")


@dataclass(frozen=True)
class Score:
    """One expected action on the scorecard."""

    expect: DrillExpectSpec
    who: str | None
    offset: timedelta | None  # plan time it was done at; None: missed

    @property
    def outcome(self) -> Outcome:
        if self.offset is None:
            return "missed"
        return "on_time" if self.offset <= self.expect.within else "late"


class DrillService:
    """Starts and stops drills, injects their cues and scores them; reminds the plan's owners each quarter."""

    def __init__(
        self,
        *,
        playbook: Playbook,
        db: sessionmaker[Session],
        slack: SlackGateway,
        clock: Clock,
        outbox: Outbox,
        incidents: IncidentService,
        schedule_changed: Callable[[], None] = lambda: None,
    ) -> None:
        self.playbook = playbook
        self.db = db
        self.slack = slack
        self.clock = clock
        self.outbox = outbox
        self.incidents = incidents
        self.schedule_changed = schedule_changed
        self._judged: str | None = None  # the last quarter judged by this process (skip the store until the next)

    # ---- starting -----------------------------------------------------------------------------------------

    def scenario(self, key: str) -> DrillScenarioSpec:
        spec = self.playbook.drills.scenarios.get(key)
        if spec is None:
            raise UserInputError(scenario_list(self.playbook, unknown=key), field="scenario")
        return spec

    def start(
        self,
        *,
        scenario: str,
        speed: float | None,
        actor: str,
        origin_channel: str | None = None,
        tell: Callable[[str], object] | None = None,
    ) -> str | None:
        """Open the drill incident with its clock and cues, then set up its `drill-` channel."""
        spec = self.scenario(scenario)
        speed = speed or self.playbook.drills.speed
        with in_channel_language(self.playbook):
            title = spec.title_in(current_locale())

        def prepare(s: Session, incident: Incident) -> None:
            start = utc(incident.created_at)
            cues = [
                DrillCue(
                    incident_id=incident.id,
                    seq=i,
                    kind=cue.kind,
                    offset_seconds=int(cue.at.total_seconds()),
                    due_at=real_due(start, cue.at, speed),
                )
                for i, cue in enumerate(spec.cues)
            ]
            end = real_due(start, spec.length, speed)
            cues.append(
                DrillCue(
                    incident_id=incident.id,
                    seq=len(spec.cues),
                    kind=SCORECARD,
                    offset_seconds=int(spec.length.total_seconds()),
                    due_at=end,
                )
            )
            drill = Drill(incident_id=incident.id, scenario=scenario, speed=speed, started_at=start, ends_at=end)
            store.add_drill(s, drill, cues)

        incident = self.incidents.open_incident(
            IncidentCreate(kind=spec.kind, title=title, severity=spec.severity, is_drill=True),
            reporter=actor,
            origin_channel=origin_channel,
            prepare=prepare,
        )
        with (
            self.db.begin() as s,
            in_channel_language(self.playbook),
        ):  # after the set-up in the lane: posted once the channel is there
            self.outbox.add(s, incident.id, f"drill:{incident.id}:intro", "post", text=self._intro(spec, speed))
        self.schedule_changed()
        if tell is None:
            return self.incidents.opened_message(self.incidents.setup_channel(incident.id))
        self.incidents.setup_channel(incident.id, tell=tell)
        return None

    def _intro(self, spec: DrillScenarioSpec, speed: float) -> str:
        locale = current_locale()
        lines = [
            _(
                ":rotating_light: *Drill: {scenario}* — not a real incident. The drill's clock runs {speed}× real "
                "time (a real minute is {plan} of the plan); it ends at {end} of plan time with a scorecard. "
                "Nothing is sent to customers. `/incident drill stop` ends it now.",
                scenario=safe_text(spec.name_in(locale)),
                speed=f"{speed:g}",
                plan=humanize(timedelta(minutes=speed)) if speed >= 1 else "1m",
                end=plan_time(spec.length),
            ),
            _("What the plan expects:"),
        ]
        lines += [f"• {self._expect_name(e)} — {_('within {limit}', limit=humanize(e.within))}" for e in spec.expect]
        return "\n".join(lines)

    def _expect_name(self, expect: DrillExpectSpec) -> str:
        role = self.playbook.role_name(expect.role) if expect.role else ""
        name = _(ACTION_LABELS[expect.action], role=role)
        if expect.role and expect.action != "role_taken":
            name = _("{action} ({role})", action=name, role=role)
        return safe_text(name)

    # ---- stopping and scoring -----------------------------------------------------------------------------

    def stop(self, *, channel_id: str, actor: str, command: str = "") -> str:
        """End the drill typed in: resolve it (its review and action items then work as for real incidents),
        inject nothing more, and post the scorecard unless it was already."""
        with self.db() as s:
            incident = queries.get_incident_by_channel(s, channel_id)
            drill = store.get_drill(s, incident.id) if incident is not None else None
        if incident is None or not incident.is_drill or drill is None:
            raise UserInputError(
                _("`/incident drill stop` ends a drill: type it in the drill's channel (its name starts with drill-).")
            )
        self.incidents.require(Action.RESOLVE, incident, actor)
        if incident.status in ACTIVE:
            with in_channel_language(self.playbook):
                summary = _("Drill stopped")
            self.incidents.resolve(channel_id=channel_id, summary=summary, actor=actor, command=command)
        now = self.clock.now()
        with self.db.begin() as s:
            store.drop_drill_cues(s, incident.id, at=now)
            row = store.get_drill(s, incident.id)
            if row is not None and row.stopped_by is None:
                row.stopped_by = actor
            scored = self._queue_scorecard(s, incident.id, now)
        self.incidents.flush(incident.id)
        self.schedule_changed()
        if not scored:
            return _("Drill #{number} is over; its scorecard was posted in the channel already.", number=incident.id)
        return _("Drill #{number} stopped; the scorecard is in the channel.", number=incident.id)

    def _queue_scorecard(self, s: Session, incident_id: int, now: datetime) -> bool:
        """Post the scorecard once (claimed on the drill row) in the drill's channel."""
        if not store.claim_drill_score(s, incident_id, at=now):
            return False
        incident = queries.get_incident(s, incident_id)
        drill = store.get_drill(s, incident_id)
        spec = self.playbook.drills.scenarios.get(drill.scenario) if drill else None
        if incident is None or drill is None or spec is None:
            return False
        scores = self.score(s, incident, drill, spec)
        with in_channel_language(self.playbook):
            text = self.scorecard_text(spec, drill, scores)
        queries.add_timeline_event(
            s,
            incident_id,
            at=now,
            event="drill_scored",
            actor_id=None,
            text=drill.scenario,
            data={"outcomes": [score.outcome for score in scores]},
        )
        self.outbox.add(s, incident_id, f"drill:{incident_id}:scorecard", "post", text=text)
        return True

    def score(self, s: Session, incident: Incident, drill: Drill, spec: DrillScenarioSpec) -> list[Score]:
        """Per expected action, the first time it was done (in plan time) and by whom, from the timeline."""
        events = list(queries.list_timeline(s, incident.id))
        ack_keys = {d.key for d in self.playbook.kinds[incident.kind].deadlines if "ack" in d.met_by}
        scores = []
        for expect in spec.expect:
            found = self._first(expect, events, incident, ack_keys)
            if found is None:
                scores.append(Score(expect, None, None))
            else:
                who, at = found
                scores.append(Score(expect, who, max(timedelta(0), plan_offset(drill, at))))
        return scores

    @staticmethod
    def _first(
        expect: DrillExpectSpec, events: list[TimelineEvent], incident: Incident, ack_keys: set[str]
    ) -> tuple[str | None, datetime] | None:
        if expect.action == "role_taken":
            held = next((a for a in incident.roles if a.role == expect.role and a.assigned_by is None), None)
            if held is not None and held.user_id and held.assigned_at is not None:  # held from the start
                return held.user_id, held.assigned_at
        for event in events:
            data = event.data or {}
            if expect.action == "role_taken":
                if event.event in EVENTS["role_taken"] and data.get("role") == expect.role:
                    return data.get("user"), event.at
            elif event.event in EVENTS[expect.action]:
                return event.actor_id, event.at
            elif expect.action == "ack" and event.event == "deadline_met" and data.get("key") in ack_keys:
                return event.actor_id, event.at  # the lead who opened a severe incident acknowledged it so
        return None

    def scorecard_text(self, spec: DrillScenarioSpec, drill: Drill, scores: list[Score]) -> str:
        """The scorecard, in the current language: one line per expected action."""
        counts = {outcome: sum(score.outcome == outcome for score in scores) for outcome in OUTCOMES}
        lines = [
            _(
                ":clipboard: *Drill scorecard: {scenario}* (speed {speed}×): {on_time} on time, {late} late, "
                "{missed} missed.",
                scenario=safe_text(spec.name_in(current_locale())),
                speed=f"{drill.speed:g}",
                on_time=counts["on_time"],
                late=counts["late"],
                missed=counts["missed"],
            )
        ]
        for score in scores:
            name = self._expect_name(score.expect)
            limit = humanize(score.expect.within)
            if score.offset is None:
                lines.append(_(":x: {action}: missed (limit {limit})", action=name, limit=limit))
                continue
            who = f"<@{score.who}>" if score.who else _("the bot")
            values = {"action": name, "who": who, "at": plan_time(score.offset), "limit": limit}
            if score.outcome == "on_time":
                lines.append(_(":white_check_mark: {action}: {who} at {at} (limit {limit}), on time", **values))
            else:
                lines.append(_(":warning: {action}: {who} at {at} (limit {limit}), late", **values))
        lines.append(_("Write the review as for a real incident: `/incident review post`, `/incident action …`."))
        return "\n".join(lines)

    # ---- the sweeper's jobs -------------------------------------------------------------------------------

    def inject_due(self, now: datetime) -> int:
        """Post every cue whose moment came (and the scorecard at the end), each once; the sweeper calls this."""
        with self.db() as s:
            due = [(cue.id, cue.incident_id) for cue in store.due_drill_cues(s, now)]
        lanes: set[int] = set()
        for cue_id, incident_id in due:
            with self.db.begin() as s:
                if not store.claim_drill_cue(s, cue_id, at=now):
                    continue  # another sweep took it
                cue = store.get_drill_cue(s, cue_id)
                incident = queries.get_incident(s, incident_id)
                drill = store.get_drill(s, incident_id)
                if cue is None or incident is None or drill is None or incident.status == IncidentStatus.CLOSED:
                    continue
                if cue.kind == SCORECARD:
                    if self._queue_scorecard(s, incident_id, now):
                        lanes.add(incident_id)
                    continue
                spec = self.playbook.drills.scenarios.get(drill.scenario)
                if spec is None or cue.seq >= len(spec.cues):
                    continue  # the playbook changed under a running drill: nothing to say for this one
                with in_channel_language(self.playbook):
                    said = spec.cues[cue.seq].text_in(current_locale())
                    text = _(
                        ":mega: *{label}* ({at}): {text}",
                        label=_(CUE_LABELS.get(cue.kind, cue.kind)),
                        at=plan_time(timedelta(seconds=cue.offset_seconds)),
                        text=safe_text(mask_identifiers(said)),
                    )
                queries.add_timeline_event(
                    s,
                    incident_id,
                    at=now,
                    event="drill_cue",
                    actor_id=None,
                    text=said,
                    data={"seq": cue.seq, "plan_seconds": cue.offset_seconds},
                )
                self.outbox.add(s, incident_id, f"drill:{incident_id}:cue:{cue.seq}", "post", text=text)
                lanes.add(incident_id)
        for incident_id in lanes:
            self.outbox.run(incident_id)
        return len(lanes)

    def owners(self) -> tuple[str, ...]:
        """Who is reminded to run the quarter's drills: drills.owners, else the lead role's default owners."""
        if self.playbook.drills.owners:
            return self.playbook.drills.owners
        lead = self.playbook.roles.get(self.playbook.lead_role)
        return lead.default_owners if lead else ()

    def remind_quarterly(self, now: datetime) -> list[str]:
        """When a quarter has passed with no drill of a kind the scenarios rehearse, DM the plan's owners, once
        per quarter and kind (claimed in the store). Quarters begun before the bot watched are not judged."""
        rehearsed = {spec.kind for spec in self.playbook.drills.scenarios.values()}
        kinds = [kind for kind in self.playbook.kinds if kind in rehearsed]  # in the playbook's order
        if not kinds:
            return []
        tz = self.playbook.tz
        local = utc(now).astimezone(tz)
        this_start = datetime(local.year, 3 * ((local.month - 1) // 3) + 1, 1, tzinfo=tz)
        prev_local = this_start - timedelta(days=1)
        prev_start = datetime(prev_local.year, 3 * ((prev_local.month - 1) // 3) + 1, 1, tzinfo=tz)
        quarter = f"{prev_start.year}Q{(prev_start.month - 1) // 3 + 1}"
        if self._judged == quarter:
            return []
        missing: list[str] = []
        owners = list(self.owners())
        with self.db.begin() as s:
            rows = store.list_drill_reminders(s)
            watch = next((row for row in rows if row.kind == ""), None)
            if watch is None:
                store.claim_drill_reminder(s, kind="", quarter="watch", at=now, recipients=[])
                self._judged = quarter
                return []
            if utc(watch.at) > prev_start.astimezone(UTC):
                self._judged = quarter  # that quarter began before anyone watched
                return []
            judged = {row.kind for row in rows if row.quarter == quarter}
            drilled = store.drilled_kinds(s, prev_start.astimezone(UTC), this_start.astimezone(UTC))
            for kind in kinds:
                if kind in judged:
                    continue
                late = kind not in drilled
                claimed = store.claim_drill_reminder(
                    s, kind=kind, quarter=quarter, at=now, recipients=owners if late else []
                )
                if claimed and late:
                    missing.append(kind)
        self._judged = quarter
        if missing:
            self._remind(owners, quarter, missing)
        return missing

    def _remind(self, owners: list[str], quarter: str, kinds: list[str]) -> None:
        if not owners:
            log.warning("drills: no drill of %s in %s and nobody to remind (drills.owners)", kinds, quarter)
        for owner in owners:
            try:
                with in_recipients_language(self.slack.user_locale(owner), self.playbook):
                    names = ", ".join(self.playbook.kinds[k].name_in(current_locale()) for k in kinds)
                    text = _(
                        ":calendar: No drill rehearsed {kinds} in {quarter}; the plan asks for one every quarter. "
                        "Start one with `/incident drill <scenario>`. {scenarios}",
                        kinds=safe_text(names),
                        quarter=quarter,
                        scenarios=scenario_list(self.playbook),
                    )
                self.slack.dm(owner, text, key=f"drill-reminder:{quarter}:{'+'.join(kinds)}:{owner}")
            except SlackCallError as exc:
                log.warning("drills: could not remind %s: %s", owner, exc.error)


def scenario_list(playbook: Playbook, *, unknown: str | None = None) -> str:
    """The scenarios to choose from (what an unknown one is told), in the current language."""
    listed = ", ".join(
        f"`{key}` ({safe_text(spec.name_in(current_locale()))})" for key, spec in playbook.drills.scenarios.items()
    )
    if not listed:
        return _("The playbook has no drill scenarios; add them under `drills.scenarios` in config.yaml.")
    if unknown is not None:
        return _(
            "There is no drill scenario `{scenario}`. Scenarios: {scenarios}. Example: "
            "`/incident drill payment-outage 60`.",
            scenario=safe_text(unknown),
            scenarios=listed,
        )
    return _("Scenarios: {scenarios}.", scenarios=listed)


__all__ = ["ConflictError", "DrillService", "Score", "parse_speed", "plan_offset", "real_due", "scenario_list"]
