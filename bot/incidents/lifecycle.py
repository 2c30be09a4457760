"""An incident's life: open, severity, updates, pause and resume, resolve, close — the state machine.

Each command is one unit of work: one transaction loads the incident once, checks the permission policy
and the state, records the change with what must follow it in the channel (outbox rows), and commits before
anything is said to Slack; then the incident's lane runs at once (`ChannelUpdates.flush`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy.orm import Session, sessionmaker

from bot.core.clock import Clock, utc
from bot.core.config import Playbook
from bot.core.errors import ConflictError, PermissionDeniedError, UserInputError
from bot.core.i18n import _, current_locale, in_channel_language
from bot.core.labels import state_label
from bot.core.render import Renderer
from bot.deadlines.escalation import Escalations
from bot.deadlines.service import Deadlines, humanize, is_action_item
from bot.incidents.channel import ChannelSetup, ChannelUpdates
from bot.incidents.permissions import Action, Permissions
from bot.incidents.records import locate_incident
from store import queries
from store.models import Incident, RoleAssignment
from store.states import ACTIVE, DONE, IncidentStatus

# what a resolve writes in its own transaction (e.g. the satisfaction rating prompts)
AfterResolve = Callable[[Session, Incident], None]


@dataclass(frozen=True)
class IncidentCreate:
    """What a reporter gives us, from the command line or the modal."""

    kind: str
    title: str
    severity: str | None = None
    category: str | None = None
    description: str | None = None
    customer_ref: str | None = None
    is_drill: bool = False
    # The system that reported it ("complaint_system", "alertmanager", "surge_monitor"); None: a person did.
    # A system reports as the bot's own Slack user and never becomes the lead.
    source: str | None = None


class PreparedOpen(NamedTuple):
    """An IncidentCreate checked, with the people each role rotates through (Lifecycle.prepare_open)."""

    incident_in: IncidentCreate
    title: str
    severity: str
    pools: dict[str, list[str]]


class Lifecycle:
    """The state machine: who may move an incident, from which state, and what each move records."""

    def __init__(
        self,
        *,
        playbook: Playbook,
        db: sessionmaker[Session],
        clock: Clock,
        renderer: Renderer,
        deadlines: Deadlines,
        escalations: Escalations,
        permissions: Permissions,
        channel: ChannelSetup,
        updates: ChannelUpdates,
        schedule_changed: Callable[[], None],
        after_resolve: Sequence[AfterResolve],
    ) -> None:
        self.playbook = playbook
        self.db = db
        self.clock = clock
        self.renderer = renderer
        self.deadlines = deadlines
        self.escalations = escalations
        self.permissions = permissions
        self.channel = channel
        self.updates = updates
        self.schedule_changed = schedule_changed
        self.after_resolve = after_resolve

    # ---- opening ----------------------------------------------------------------------------------------

    def open(self, incident_in: IncidentCreate, *, reporter: str, origin_channel: str | None = None) -> Incident:
        """Record the incident, its default role owners, its deadlines and its channel's set-up, together."""
        prepared = self.prepare_open(incident_in)
        with self.db.begin() as s:
            incident = self.record_open(s, prepared, reporter=reporter, origin_channel=origin_channel)
        self.schedule_changed()
        return incident

    def open_in(
        self,
        s: Session,
        incident_in: IncidentCreate,
        *,
        reporter: str,
        origin_channel: str | None = None,
        lead: str | None = None,
    ) -> Incident:
        """`open` inside the caller's unit of work (the intake records a complaint and opens its incident in one
        transaction); `lead` leads it instead of the lead role's default owners. The caller commits, then calls
        `schedule_changed`."""
        prepared = self.prepare_open(incident_in)
        return self.record_open(s, prepared, reporter=reporter, origin_channel=origin_channel, lead=lead)

    def prepare_open(self, incident_in: IncidentCreate) -> PreparedOpen:
        """Check what the reporter gave and look up the role pools (a user group is a Slack call), before any
        transaction: a system that decides and opens in one unit of work (Alertmanager) holds no lock meanwhile."""
        kind = self.playbook.kinds.get(incident_in.kind)
        if kind is None:
            raise UserInputError(_("Unknown kind. Kinds: {kinds}.", kinds=", ".join(self.playbook.kinds)), field="kind")
        severity = incident_in.severity or kind.default_severity
        if severity not in self.playbook.severities:
            raise UserInputError(
                _("Unknown severity. Use one of {severities}.", severities=", ".join(self.playbook.severities)),
                field="severity",
            )
        if incident_in.category and incident_in.category not in kind.categories:
            allowed = ", ".join(kind.categories) or _("none for this kind")
            raise UserInputError(
                _("Unknown category for {kind}. Categories: {allowed}.", kind=incident_in.kind, allowed=allowed),
                field="category",
            )
        title = " ".join(incident_in.title.split())
        if not title:
            raise UserInputError(_("Give the incident a title."), field="title")
        pools = {role: self.permissions.role_pool(role) for role in kind.roles}
        return PreparedOpen(incident_in, title, severity, pools)

    def record_open(
        self,
        s: Session,
        prepared: PreparedOpen,
        *,
        reporter: str,
        origin_channel: str | None = None,
        lead: str | None = None,
    ) -> Incident:
        """Write the prepared incident in the caller's unit of work `s` (`lead` leads it instead of the lead
        role's default owners); the caller calls `schedule_changed` once it commits."""
        incident_in, title, severity, pools = prepared
        kind = self.playbook.kinds[incident_in.kind]
        now = self.clock.now()
        incident = queries.add_incident(
            s,
            Incident(
                kind=incident_in.kind,
                severity=severity,
                peak_severity=severity,
                category=incident_in.category,
                title=title,
                description=(incident_in.description or "").strip() or None,
                customer_ref=(incident_in.customer_ref or "").strip() or None,
                status=IncidentStatus.REPORTED,
                is_drill=incident_in.is_drill,
                playbook_version=self.playbook.version,
                reporter_id=reporter,
                origin_channel_id=origin_channel,
                created_at=now,
                updated_at=now,
                topic_set=False,
                members_invited=False,
                welcome_posted=False,
            ),
        )
        for role in kind.roles:
            pool = pools[role]
            # one owner needs no turn taken (and no lock on the rotation row, which concurrent opens queue on)
            owner: str | None = pool[0] if len(pool) == 1 else None
            if len(pool) > 1:
                owner = pool[queries.next_rotation_position(s, role, len(pool))]
            if role == self.playbook.lead_role and lead is not None:
                owner = lead
            if owner is None and role == self.playbook.lead_role and incident_in.source is None:
                owner = reporter  # someone is always in charge: with no default lead, the reporter leads
            incident.roles.append(
                RoleAssignment(role=role, user_id=owner, assigned_at=now if owner else None, assigned_by=None)
            )
        queries.add_timeline_event(
            s,
            incident.id,
            at=now,
            event="opened",
            actor_id=reporter,
            text=title,
            data={
                "kind": incident.kind,
                "severity": severity,
                "category": incident.category,
                "playbook_version": self.playbook.version,
                "drill": incident.is_drill,
                "source": incident_in.source,
            },
        )
        self.deadlines.create(s, incident, start="opened", now=now, actor=reporter)
        self.channel.queue_setup(s, incident, reporter=reporter)
        if severity in self.playbook.escalation.page_on_open:
            with in_channel_language(self.playbook):  # pages are the team's, in the playbook's language
                reason = _(
                    "{severity} {kind} opened",
                    severity=severity.upper(),
                    kind=kind.name_in(current_locale()).lower(),
                )
            self._page_severe(s, incident, reason, now, actor=reporter)
        return incident

    def _page_severe(self, s: Session, incident: Incident, reason: str, now: datetime, *, actor: str) -> None:
        """A severe incident pages its lead (then the team lead, then leadership) until acknowledged; whoever
        caused the page (the reporter opening it, the lead raising it) is not paged for it."""
        lead = self.permissions.lead(incident)
        self.escalations.start(s, incident, reason=reason, owner=lead, now=now, caused_by=actor)
        if lead == actor:  # the lead who opened or raised it knows: that is the acknowledgement the plan asks for
            self.deadlines.on_event(s, incident, "ack", now=now, actor=actor)

    # ---- changes ----------------------------------------------------------------------------------------

    def change_severity(self, *, channel_id: str, severity: str, actor: str, command: str = "") -> str | None:
        with self.db.begin() as s:
            incident = locate_incident(s, channel_id=channel_id)
            self.permissions.require(Action.SEV, incident, actor)
            self.require_open(incident, _("change the severity of"))
            self.set_severity(s, incident, severity, actor=actor, command=command)
        self.schedule_changed()
        return self.updates.flush(incident.id)

    def set_severity(self, s: Session, incident: Incident, severity: str, *, actor: str, command: str = "") -> None:
        """Change an open incident's severity in the caller's unit of work `s` (whoever may: checked by the
        caller; a system such as Alertmanager raising it is the bot); the caller commits, then flushes."""
        if incident.severity == severity or not queries.change_severity(
            s, incident.id, expected=incident.severity, severity=severity
        ):
            s.refresh(incident)  # changed by another request a moment ago
            raise ConflictError(
                _("#{number} is already {severity}.", number=incident.id, severity=incident.severity.upper())
            )
        old, incident.severity, incident.updated_at = incident.severity, severity, self.clock.now()
        incident.peak_severity = min(incident.peak_severity or old, severity)  # sev1 sorts first
        queries.add_timeline_event(
            s,
            incident.id,
            at=incident.updated_at,
            event="severity_changed",
            actor_id=actor,
            text=f"{old.upper()} → {severity.upper()}",  # one spelling: SEV2, as everywhere shown
            data={"old": old, "new": severity, "command": command},
        )
        page_on = self.playbook.escalation.page_on_open
        if severity in page_on and old not in page_on:
            with in_channel_language(self.playbook):
                reason = _("severity raised to {severity}", severity=severity.upper())
            self._page_severe(s, incident, reason, incident.updated_at, actor=actor)
        self.updates.announce(s, incident.id, event="severity_changed", actor=actor, old=old, new=severity)
        self.updates.refresh(s, incident.id, topic=True)

    def post_update(self, *, channel_id: str, text: str, actor: str, command: str = "") -> str | None:
        with self.db.begin() as s:
            incident = locate_incident(s, channel_id=channel_id)
            self.permissions.require(Action.UPDATE, incident, actor)
            if incident.status == "closed":
                raise ConflictError(_("#{number} is closed; updates are no longer recorded.", number=incident.id))
            incident.updated_at = self.clock.now()
            queries.add_timeline_event(
                s,
                incident.id,
                at=incident.updated_at,
                event="update",
                actor_id=actor,
                text=text,
                data={"command": command},
            )
            moved = self.advance(s, incident, actor)
            self.deadlines.on_update(s, incident, now=incident.updated_at, actor=actor)
            self.updates.announce(s, incident.id, event="update", actor=actor, text=text)
            if moved:
                self.updates.refresh(s, incident.id, topic=True)
        self.schedule_changed()
        warning = self.updates.flush(incident.id)
        return warning if moved else None

    def resolve(
        self, *, channel_id: str, summary: str, actor: str, command: str = "", checked: bool = False
    ) -> str | None:
        """`checked`: the caller applied a rule of its own (the surge plan's End: the leadership group)."""
        with self.db.begin() as s:
            incident = locate_incident(s, channel_id=channel_id)
            if not checked:
                self.permissions.require(Action.RESOLVE, incident, actor)
            self.mark_resolved(s, incident, summary, actor=actor, command=command)
        self.schedule_changed()
        return self.updates.flush(incident.id)

    def mark_resolved(self, s: Session, incident: Incident, summary: str, *, actor: str, command: str = "") -> None:
        """Resolve an incident in the caller's unit of work `s` (whoever may: checked by the caller; a system
        such as Alertmanager resolving it is the bot); the caller commits, then flushes."""
        resolvable = ACTIVE  # being worked on: not yet resolved
        if incident.status not in resolvable or not queries.transition_incident(
            s, incident.id, expected=resolvable, status=IncidentStatus.RESOLVED
        ):
            s.refresh(incident)  # another request may have resolved it a moment ago: say what it is now
            raise ConflictError(
                _(
                    "#{number} is already {status}; only a reported or investigating incident can be resolved.",
                    number=incident.id,
                    status=state_label(incident.status),
                )
            )
        now = self.clock.now()
        incident.status, incident.resolved_at, incident.updated_at = IncidentStatus.RESOLVED, now, now
        incident.paused_at = None
        incident.resolution_summary = summary
        queries.add_timeline_event(
            s, incident.id, at=now, event="resolved", actor_id=actor, text=summary, data={"command": command}
        )
        self.deadlines.on_resolve(s, incident, now=now, actor=actor)
        incident.review_at = self._review_time(now)
        # what follows a resolve commits with it: a crash right after cannot lose the rating prompts
        self.updates.announce(s, incident.id, event="resolved", actor=actor, text=summary)
        self.updates.refresh(s, incident.id, topic=True)
        for listener in self.after_resolve:
            listener(s, incident)

    def _review_time(self, resolved: datetime) -> datetime:
        """When the review draft is posted: the playbook's hour on the next working day (or today)."""
        spec = self.playbook.review
        if spec.day == "next_working_day":
            return self.deadlines.working_hours.next_working_day_at(resolved, spec.at)
        today = datetime.combine(resolved.astimezone(self.renderer.tz).date(), spec.at, self.renderer.tz)
        return max(today.astimezone(resolved.tzinfo), resolved)

    def close(self, *, channel_id: str, actor: str, command: str = "") -> str | None:
        with self.db.begin() as s:
            incident = locate_incident(s, channel_id=channel_id)
            self.permissions.require(Action.CLOSE, incident, actor)
            self._require_closable(incident)
            unreviewed = self.playbook.review.required_before_close and incident.review_completed_at is None
            if unreviewed and actor not in self.playbook.admins:
                raise PermissionDeniedError(
                    _(
                        "The review of #{number} is not complete: the lead marks it done with "
                        "`/incident review done` (`/incident review post` shows the draft now). "
                        "Only a playbook admin may close it before that, and that is recorded.",
                        number=incident.id,
                    )
                )
            if not queries.transition_incident(
                s, incident.id, expected=[IncidentStatus.RESOLVED], status=IncidentStatus.CLOSED
            ):
                s.refresh(incident)  # closed (or reopened) by another request a moment ago
                self._require_closable(incident)
                raise ConflictError(_("#{number} changed while you closed it; look at it again.", number=incident.id))
            now = self.clock.now()
            incident.status, incident.closed_at, incident.updated_at = IncidentStatus.CLOSED, now, now
            queries.add_timeline_event(
                s, incident.id, at=now, event="closed", actor_id=actor, data={"command": command}
            )
            if unreviewed:
                queries.add_timeline_event(s, incident.id, at=now, event="closed_without_review", actor_id=actor)
            if incident.review_posted_at is None:
                incident.review_at = None  # a closed incident's channel is archived: no draft is posted there
            self.deadlines.on_close(s, incident, now=now, actor=actor)
            with in_channel_language(self.playbook):  # the channel's last message, in the channel's language
                summary = self._final_summary(s, incident, actor, reviewed=not unreviewed)
            # announce, card, final summary and archive commit with the close and run in this order
            self.updates.announce(s, incident.id, event="closed", actor=actor)
            self.updates.refresh(s, incident.id, topic=True)
            self.updates.queue(s, incident.id, "post", key=f"close:{incident.id}:summary", text=summary)
            if self.playbook.channel.archive_on_close:
                self.updates.queue(s, incident.id, "archive", key=f"close:{incident.id}:archive")
        self.schedule_changed()
        return self.updates.flush(incident.id)

    def _require_closable(self, incident: Incident) -> None:
        if incident.status == "closed":
            raise ConflictError(_("#{number} is already closed.", number=incident.id))
        if incident.status != "resolved":
            raise ConflictError(
                _(
                    "#{number} is {status}; resolve it first with `/incident resolve <summary>`, then close it.",
                    number=incident.id,
                    status=state_label(incident.status),
                )
            )

    def _final_summary(self, s: Session, incident: Incident, actor: str, *, reviewed: bool) -> str:
        """What the channel says last, before it is archived: time open, deadlines, ratings, open work."""
        deadlines = queries.list_deadlines(s, incident.id)
        ratings = queries.list_ratings(s, incident.id)
        customer = next((r.score for r in ratings if r.source == "customer"), None)
        team = [r.score for r in ratings if r.source == "internal"]
        return self.renderer.render(
            "slack/final_summary.j2",
            number=incident.id,
            severity=incident.severity.upper(),
            kind=self.playbook.kinds[incident.kind].name_in(current_locale()),
            title=incident.title,
            open_for=humanize(utc(incident.closed_at or incident.updated_at) - utc(incident.created_at)),
            met=sum(d.state == "met" for d in deadlines),
            met_late=sum(d.state == "met" and d.closed_at is not None and d.closed_at > d.due_at for d in deadlines),
            missed=sum(d.state == "missed" for d in deadlines),
            open_actions=sum(is_action_item(d) and d.state == "pending" for d in deadlines),
            customer=f"{customer}/5" if customer else _("not recorded"),
            team=f"{sum(team) / len(team):.1f}/5 ({len(team)})" if team else _("no ratings"),
            reviewed=reviewed,
            reviewer=incident.review_completed_by,
            actor=actor,
            archive=self.playbook.channel.archive_on_close,
        )

    def pause(self, *, channel_id: str, reason: str, actor: str, command: str = "") -> str | None:
        """Stop the incident's clocks while waiting on the customer; deadlines move out on resume."""
        with self.db.begin() as s:
            incident = locate_incident(s, channel_id=channel_id)
            self.permissions.require(Action.PAUSE, incident, actor)
            self.require_open(incident, _("pause"))
            now = self.clock.now()
            if incident.paused_at is not None or not queries.set_paused(s, incident.id, paused_at=now):
                by = self._by(s, incident.id, "paused")
                raise ConflictError(
                    _(
                        "#{number} is already paused by {user}; `/incident resume` restarts its clocks.",
                        number=incident.id,
                        user=by,
                    )
                    if by
                    else _("#{number} is already paused; `/incident resume` restarts its clocks.", number=incident.id)
                )
            incident.paused_at = now
            self.deadlines.pause(s, incident)
            queries.add_timeline_event(
                s, incident.id, at=now, event="paused", actor_id=actor, text=reason, data={"command": command}
            )
            self.updates.announce(s, incident.id, event="paused", actor=actor, text=reason)
        self.schedule_changed()
        self.updates.flush(incident.id)
        return None

    def resume(self, *, channel_id: str, actor: str, command: str = "") -> str | None:
        with self.db.begin() as s:
            incident = locate_incident(s, channel_id=channel_id)
            self.permissions.require(Action.RESUME, incident, actor)
            if incident.paused_at is None or not queries.set_paused(s, incident.id, paused_at=None):
                by = self._by(s, incident.id, "resumed")
                raise ConflictError(
                    _(
                        "#{number} was already resumed by {user}; its clocks are running.",
                        number=incident.id,
                        user=by,
                    )
                    if by
                    else _("#{number} is not paused.", number=incident.id)
                )
            now = self.clock.now()
            paused = self.deadlines.resume(s, incident, paused_at=incident.paused_at, now=now)
            incident.paused_at = None
            queries.add_timeline_event(
                s,
                incident.id,
                at=now,
                event="resumed",
                actor_id=actor,
                data={"paused_seconds": int(paused.total_seconds()), "command": command},
            )
            with in_channel_language(self.playbook):  # the duration in the channel's words too
                took = humanize(paused)
            self.updates.announce(s, incident.id, event="resumed", actor=actor, took=took)
        self.schedule_changed()
        self.updates.flush(incident.id)
        return None

    @staticmethod
    def _by(s: Session, incident_id: int, event: str) -> str | None:
        """Who did the incident's latest `event` (`<@U…>`), for a refusal that says who was first."""
        row = queries.latest_event(s, incident_id, event)
        return f"<@{row.actor_id}>" if row is not None and row.actor_id else None

    @staticmethod
    def require_open(incident: Incident, action: str) -> None:
        """Refuse to change a resolved or closed incident (`action`: "pause", "change roles in", …)."""
        if incident.status in DONE:
            raise ConflictError(
                _(
                    "#{number} is {status}; you can no longer {action} it.",
                    number=incident.id,
                    status=state_label(incident.status),
                    action=action,
                )
            )

    def advance(self, s: Session, incident: Incident, actor: str) -> bool:
        """A human acting on a reported incident means it is being investigated."""
        if incident.status != "reported":
            return False
        if not queries.transition_incident(
            s, incident.id, expected=[IncidentStatus.REPORTED], status=IncidentStatus.INVESTIGATING
        ):
            return False  # another request moved it on first (and recorded that)
        incident.status = IncidentStatus.INVESTIGATING
        queries.add_timeline_event(
            s,
            incident.id,
            at=self.clock.now(),
            event="status_changed",
            actor_id=actor,
            text="reported → investigating",
            data={"old": "reported", "new": "investigating"},
        )
        return True
