"""The surge plan's summary (seed 004 结束阶段: 总结本次预案实施经验), read from the record: the volume before,
during and after, how long activation took, each department's reports, the notices published, and the
headings the leadership group fills in for the lessons learned."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.core.clock import utc
from bot.core.config import Playbook, WarningLineSpec
from bot.core.i18n import N_, _, ngettext
from bot.core.labels import stage_label
from bot.core.render import Renderer
from bot.core.text import safe_text, truncate
from bot.deadlines.service import humanize
from bot.notices.service import channel_names
from bot.surge import volume
from store.models import Deadline, Incident, Notice, TimelineEvent
from store.states import DeadlineState

BEFORE = timedelta(hours=1)
REPORT_MAX = 200  # characters of one report shown in the summary

# The headings the review of a surge answers (seed 004: 总结经验, 完善预案).
LESSONS = (
    N_("Was the warning line right, and was the proposal seen in time?"),
    N_("Did each department have the people it needed, and when?"),
    N_("Did the diversion notices reach customers, and did they use the other channels?"),
    N_("Were high-priority customers served first?"),
    N_("What do we change in the plan (warning line, duties, cadence)?"),
)


@dataclass(frozen=True)
class Activation:
    """When the line was crossed, proposed and activated (`proposal` False: the surge was opened by hand)."""

    crossed_at: datetime
    proposed_at: datetime | None
    activated_at: datetime
    activated_by: str | None
    proposal: bool


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, str) and value:
        try:
            return utc(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def activation_of(event: TimelineEvent | None, incident: Incident) -> Activation:
    """The activation as the `surge_activated` event records it (the contract with the proposal), or the
    incident's opening when there was no proposal."""
    opened = utc(incident.created_at)
    if event is None:
        return Activation(opened, None, opened, incident.reporter_id, proposal=False)
    data = event.data or {}
    activated = utc(event.at)
    crossed = _moment(data.get("crossed_at")) or activated
    return Activation(crossed, _moment(data.get("proposed_at")), activated, data.get("activated_by"), proposal=True)


@dataclass(frozen=True)
class SummaryFacts:
    incident: Incident
    activation: Activation
    ended_at: datetime
    ended_by: str
    arrivals: Sequence[volume.Arrival]
    lines: Sequence[WarningLineSpec]
    timeline: Sequence[TimelineEvent]
    deadlines: Sequence[Deadline]
    notices: Sequence[Notice]

    def last_over_line(self) -> datetime | None:
        """The last moment any warning line was reached during the surge (volume fell below it after)."""
        last: datetime | None = None
        for line in self.lines:
            times = volume.watched(line, self.arrivals)
            for t in reversed(times):
                if t < self.activation.crossed_at:
                    break
                if volume.count_at(times, t, line.window) >= line.count:
                    last = max(last, t) if last else t
                    break
        return last

    def volumes(self) -> tuple[int, int, int, datetime | None]:
        """Complaints in the hour before the crossing, from the crossing until volume last reached a line, and
        after that until the end; and that moment (None: no line was reached after the crossing)."""
        crossed = self.activation.crossed_at
        calm = self.last_over_line()
        before = sum(1 for a in self.arrivals if crossed - BEFORE <= a.at < crossed)
        split = calm or self.ended_at
        during = sum(1 for a in self.arrivals if crossed <= a.at <= split)
        after = sum(1 for a in self.arrivals if split < a.at <= self.ended_at)
        return before, during, after, calm

    def peak(self, line: WarningLineSpec) -> int:
        return volume.peak(volume.watched(line, self.arrivals), self.activation.crossed_at, self.ended_at, line.window)

    def reports(self, keys: set[str]) -> list[TimelineEvent]:
        """The updates that met a department's cadence (`keys`): each re-armed it from its own moment, so they
        are the updates posted when one of its deadlines started (whoever held the role then, or the lead)."""
        started = {utc(d.start_at) for d in self.deadlines if d.key in keys}
        return [e for e in self.timeline if e.event == "update" and utc(e.at) in started]

    def delivered(self, notice: Notice) -> list[str]:
        """The channels a published notice reached, as its `notice_published` event records them."""
        for event in self.timeline:
            if event.event == "notice_published" and (event.data or {}).get("notice_id") == notice.id:
                return [str(c) for c in (event.data or {}).get("delivered", [])]
        return []

    def missed(self, keys: set[str]) -> int:
        return sum(1 for d in self.deadlines if d.key in keys and d.state == DeadlineState.MISSED)


def summary_text(
    facts: SummaryFacts, playbook: Playbook, renderer: Renderer, department_name: Callable[[str], str]
) -> str:
    """The summary in the current language (the caller picks the channel's)."""
    local = renderer.local_time
    incident, act = facts.incident, facts.activation
    lines = [
        _(
            "*Summary of the surge plan #{number}* — {title}\nEnded at {ended} by {who}.",
            number=incident.id,
            title=safe_text(incident.title),
            ended=local(facts.ended_at, "%m-%d %H:%M"),
            who=f"<@{facts.ended_by}>" if facts.ended_by else _("nobody recorded"),
        ),
        "",
        _("*Time to activate*"),
    ]
    if act.proposal:
        lines.append(
            _(
                "• Warning line crossed at {crossed}; proposed at {proposed}; activated at {activated} by {who}.",
                crossed=local(act.crossed_at, "%H:%M:%S"),
                proposed=local(act.proposed_at, "%H:%M:%S") if act.proposed_at else "—",
                activated=local(act.activated_at, "%H:%M:%S"),
                who=f"<@{act.activated_by}>" if act.activated_by else "—",
            )
        )
        lines.append(
            _(
                "• {total} from the crossing to the activation ({decision} of it waiting for the decision).",
                total=humanize(act.activated_at - act.crossed_at),
                decision=humanize(act.activated_at - act.proposed_at) if act.proposed_at else "—",
            )
        )
    else:
        lines.append(
            _("• Opened by hand at {opened} (no warning-line proposal).", opened=local(act.activated_at, "%H:%M:%S"))
        )
    before, during, after, calm = facts.volumes()
    lines += ["", _("*Complaint volume*")]
    lines.append(_("• Before (the hour before the crossing): {count}", count=before))
    if calm is not None:
        lines.append(
            _(
                "• During (from the crossing until volume last reached a warning line at {calm}): {count}",
                calm=local(calm, "%H:%M"),
                count=during,
            )
        )
        lines.append(_("• After (from then until the end): {count}", count=after))
    else:
        lines.append(_("• During (from the activation until the end): {count}", count=during))
    for line in facts.lines:
        lines.append(
            _(
                "• Peak: {peak} in {window} (warning line {line})",
                peak=facts.peak(line),
                window=humanize(line.window),
                line=line.count,
            )
        )
    lines += ["", _("*Department reports*")]
    kind = playbook.kinds[incident.kind]
    owners = {a.role: a.user_id for a in incident.roles if a.user_id}
    for role in kind.departments:
        keys = {d.key for d in kind.deadlines if d.cadence and d.owner == role}
        if not keys:
            continue  # the leadership group hears the reports; it does not report
        owner = owners.get(role)
        reports = facts.reports(keys)
        head = ngettext(
            "• *{department}* ({who}): {n} report, {missed} late",
            "• *{department}* ({who}): {n} reports, {missed} late",
            len(reports),
            department=safe_text(department_name(role)),
            who=f"<@{owner}>" if owner else _("nobody"),
            missed=facts.missed(keys),
        )
        lines.append(head)
        for report in reports:
            lines.append(f"    `{local(report.at, '%H:%M')}` {truncate(safe_text(report.text or ''), REPORT_MAX)}")
    lines += ["", _("*Customer notices published*")]
    names = channel_names()
    if not facts.notices:
        lines.append(_("• None."))
    for notice in facts.notices:
        lines.append(
            _(
                "• {stage} at {time} by {who}, delivered to {channels}",
                stage=stage_label(notice.stage),
                time=local(notice.published_at, "%H:%M"),
                who=f"<@{notice.published_by}>" if notice.published_by else "—",
                channels=", ".join(names.get(c, c) for c in facts.delivered(notice)) or _("no channel"),
            )
        )
    lines += ["", _("*Lessons learned* (for the review; answer them in the review draft)")]
    lines += [f"• {_(heading)}" for heading in LESSONS]
    return "\n".join(lines)
