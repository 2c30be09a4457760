"""What people do with deadlines and pages: list them, mark one done, snooze a reminder, acknowledge."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from bot.core.clock import Clock, utc
from bot.core.config import Playbook
from bot.core.errors import ConflictError, NotFoundError
from bot.core.i18n import _, in_channel_language
from bot.core.labels import state_label
from bot.core.render import Renderer
from bot.core.text import safe_text
from bot.deadlines.escalation import Escalations
from bot.deadlines.service import Deadlines, humanize, owner_for
from bot.incidents.permissions import Action, Permissions, Who
from store import queries
from store.models import Deadline, Escalation, Incident
from store.states import DeadlineState, EscalationState

STATE_ICONS = {
    "pending": ":hourglass:",
    "met": ":white_check_mark:",
    "missed": ":red_circle:",
    "cancelled": ":heavy_minus_sign:",
}


class IncidentLookup(Protocol):
    """What the deadline actions need of the incidents: find the one a command names, load it in a unit of
    work, and post to its channel without undoing what was recorded."""

    def find(self, *, channel_id: str | None, number: int | None = None) -> Incident: ...

    def row(self, s: Session, incident_id: int) -> Incident: ...

    def try_post(self, channel_id: str, text: str) -> None: ...


class DeadlineActions:
    """What people do with an incident's deadlines and pages (list, done, solution, snooze, ack); the rules
    themselves are `Deadlines` and `Escalations`."""

    def __init__(
        self,
        *,
        playbook: Playbook,
        db: sessionmaker[Session],
        clock: Clock,
        renderer: Renderer,
        incidents: IncidentLookup,
        permissions: Permissions,
        deadlines: Deadlines,
        escalations: Escalations,
        schedule_changed: Callable[[], None],
    ) -> None:
        self.playbook = playbook
        self.db = db
        self.clock = clock
        self.renderer = renderer
        self.incidents = incidents
        self.permissions = permissions
        self.deadlines = deadlines
        self.escalations = escalations
        self.schedule_changed = schedule_changed

    def deadlines_text(self, *, channel_id: str | None, number: int | None, actor: str) -> str:
        """Every deadline with owner, due time in the playbook's timezone, time left, and state."""
        incident = self.incidents.find(channel_id=channel_id, number=number)
        self.permissions.require(Action.DEADLINES, incident, actor)
        now = self.clock.now()
        playbook = self.playbook
        rows = []
        with self.db() as s:
            for d in self.deadlines.all(s, incident.id):
                due = utc(d.due_at)
                if d.state == "pending":
                    when = (
                        _("in {time}", time=humanize(due - now))
                        if due > now
                        else _("overdue by {time}", time=humanize(now - due))
                    )
                elif d.state == "met" and d.closed_at is not None:
                    closed = utc(d.closed_at)
                    when = (
                        _("met {time} early", time=humanize(due - closed))
                        if closed <= due
                        else _("met {time} late", time=humanize(closed - due))
                    )
                elif d.state == "missed":  # the state column says missed; this one says by how much
                    when = _("overdue by {time}", time=humanize(now - due))
                else:
                    when = _("no longer applies")
                rows.append(
                    {
                        "icon": STATE_ICONS.get(d.state, ""),
                        "name": playbook.deadline_name(incident.kind, d.key, d.name),
                        "key": d.key,
                        "due_at": d.due_at,
                        "owner": owner_for(incident, d.owner_role, playbook.lead_role, d.owner_user),
                        "role_name": playbook.role_name(d.owner_role),
                        "when": when,
                        "state": d.state,
                    }
                )
        pending = any(r["state"] == DeadlineState.PENDING for r in rows)
        return self.renderer.render("slack/deadlines.j2", number=incident.id, deadlines=rows, pending=pending)

    def _announce(self, channel_id: str | None, text: str) -> None:
        if channel_id:
            self.incidents.try_post(channel_id, text)

    def mark_done(
        self, *, actor: str, channel_id: str | None = None, word: str | None = None, deadline_id: int | None = None
    ) -> str | None:
        """Mark a deadline met (the command names it; the button carries its id). A missed one is met late:
        the first response is recorded whenever it happens, with its lateness."""
        now = self.clock.now()
        with self.db.begin() as s:
            if deadline_id is not None:
                deadline = queries.get_deadline(s, deadline_id)
                if deadline is None:
                    raise NotFoundError(_("That deadline no longer exists."))
                incident = self.incidents.row(s, deadline.incident_id)
                missed = deadline.state == DeadlineState.MISSED
                if deadline.state not in (DeadlineState.PENDING, DeadlineState.MISSED) or (missed and deadline.cadence):
                    raise ConflictError(self._already(deadline, incident.kind))
            else:
                incident = self.incidents.row(s, self.incidents.find(channel_id=channel_id).id)
                deadline = self.deadlines.find(s, incident, word or "")
            owner = owner_for(incident, deadline.owner_role, self.playbook.lead_role, deadline.owner_user)
            mine = (Who.DEADLINE_OWNER,) if actor == owner else ()
            self.permissions.require(Action.MARK_DONE, incident, actor, also=mine)
            doable = [DeadlineState.PENDING] if deadline.cadence else [DeadlineState.PENDING, DeadlineState.MISSED]
            if not queries.transition_deadline(s, deadline.id, expected=doable, state=DeadlineState.MET):
                s.refresh(deadline)  # met (or cancelled) by another request a moment ago
                raise ConflictError(self._already(deadline, incident.kind))
            self.deadlines.close(s, deadline, DeadlineState.MET, now=now, actor=actor)
            due = utc(deadline.due_at)
            with in_channel_language(self.playbook):  # posted in the channel (bot.core.i18n)
                text = self.renderer.render(
                    "slack/clock.j2",
                    event="deadline_met",
                    actor=actor,
                    deadline_name=self.playbook.deadline_name(incident.kind, deadline.key, deadline.name),
                    late=humanize(now - due) if now > due else "",
                    spare=humanize(due - now),
                )
            channel = incident.channel_id
        self.schedule_changed()
        self._announce(channel, text)
        return None

    def _already(self, deadline: Deadline, kind: str) -> str:
        by = _(" by <@{user}>", user=deadline.closed_by) if deadline.closed_by and deadline.state == "met" else ""
        return _(
            "*{name}* is already {state}{by}.",
            name=safe_text(self.playbook.deadline_name(kind, deadline.key, deadline.name)),
            state=state_label(deadline.state),
            by=by,
        )

    def record_solution(self, *, channel_id: str, text: str, actor: str) -> str | None:
        """The solution given to the customer, on the record; it meets the deadlines whose `met_by` names
        `solution` (late ones are met late)."""
        now = self.clock.now()
        with self.db.begin() as s:
            incident = self.incidents.row(s, self.incidents.find(channel_id=channel_id).id)
            self.permissions.require(Action.SOLUTION, incident, actor)
            if incident.status == "closed":
                raise ConflictError(_("#{number} is closed; its record can no longer change.", number=incident.id))
            queries.add_timeline_event(
                s, incident.id, at=now, event="solution_communicated", actor_id=actor, text=text, data={}
            )
            before = {d.id for d in self.deadlines.all(s, incident.id) if d.state == DeadlineState.MET}
            self.deadlines.on_event(s, incident, "solution", now=now, actor=actor)
            met = [
                (d.key, d.name, humanize(now - utc(d.due_at)) if now > utc(d.due_at) else "")
                for d in self.deadlines.all(s, incident.id)
                if d.state == DeadlineState.MET and d.id not in before
            ]
            channel, kind = incident.channel_id, incident.kind
        self.schedule_changed()
        with in_channel_language(self.playbook):  # posted in the channel (bot.core.i18n)
            named = [(self.playbook.deadline_name(kind, key, name), late) for key, name, late in met]
            message = self.renderer.render("slack/clock.j2", event="solution", actor=actor, text=text, met=named)
        self._announce(channel, message)
        return None

    def snooze(self, *, deadline_id: int, actor: str) -> str:
        now = self.clock.now()
        with self.db.begin() as s:
            deadline = queries.get_deadline(s, deadline_id)
            if deadline is None:
                raise NotFoundError(_("That deadline no longer exists."))
            incident = self.incidents.row(s, deadline.incident_id)
            owner = owner_for(incident, deadline.owner_role, self.playbook.lead_role, deadline.owner_user)
            mine = (Who.DEADLINE_OWNER,) if actor == owner else ()
            self.permissions.require(Action.SNOOZE, incident, actor, also=mine)
            if incident.status == "closed":
                raise ConflictError(_("#{number} is closed; nothing more will be sent for it.", number=incident.id))
            until = self.deadlines.snooze(s, deadline, now=now, actor=actor)
            name = self.playbook.deadline_name(incident.kind, deadline.key, deadline.name)
        self.schedule_changed()
        return self.renderer.render("slack/clock.j2", event="snoozed", actor=actor, deadline_name=name, until=until)

    @staticmethod
    def _not_paging(chain: Escalation) -> str:
        by = _(" by <@{user}>", user=chain.acked_by) if chain.acked_by else ""
        return _(
            "This page was already {state}{by}; nothing more will be sent for it.",
            state=state_label(chain.state),
            by=by,
        )

    def _nothing_paging(self, s: Session, incident_id: int) -> str:
        """`/incident ack` with nothing active: say who acknowledged the latest page, if someone did."""
        latest = next(iter(reversed(self.escalations.all(s, incident_id))), None)
        if latest is not None and latest.state == "acknowledged":
            return _(
                "#{number}'s page was already acknowledged by <@{user}>; nothing is paging now.",
                number=incident_id,
                user=latest.acked_by,
            )
        return _("Nothing is paging for #{number}.", number=incident_id)

    def acknowledge(self, *, actor: str, channel_id: str | None = None, escalation_id: int | None = None) -> str | None:
        """Stop paging: the button acknowledges its chain, `/incident ack` every active chain of the incident."""
        now = self.clock.now()
        with self.db.begin() as s:
            if escalation_id is not None:
                chain = queries.get_escalation(s, escalation_id)
                if chain is None:
                    raise NotFoundError(_("That page no longer exists."))

                incident = self.incidents.row(s, chain.incident_id)
                if chain.state != EscalationState.ACTIVE:
                    raise ConflictError(self._not_paging(chain))
                chains = [chain]
            else:
                incident = self.incidents.row(s, self.incidents.find(channel_id=channel_id).id)
                chains = self.escalations.active(s, incident.id)
                if not chains:
                    raise ConflictError(self._nothing_paging(s, incident.id))
            paged: set[str] = set()
            for chain in chains:
                paged |= self.escalations.paged_users(s, chain)
            self.permissions.require(Action.ACK, incident, actor, also=(Who.PAGED,) if actor in paged else ())
            # each chain is stopped by one conditional update: of concurrent clicks, one acknowledges it
            stopped = [c for c in chains if self.escalations.acknowledge(s, c, actor=actor, now=now) is not None]
            if not stopped:
                for chain in chains:
                    s.refresh(chain)
                raise ConflictError(self._not_paging(chains[0]))
            self.deadlines.on_event(s, incident, "ack", now=now, actor=actor)
            texts = []
            for chain in stopped:
                took = now - utc(chain.started_at)
                with in_channel_language(self.playbook):  # posted in the channel (bot.core.i18n)
                    texts.append(
                        self.renderer.render(
                            "slack/clock.j2",
                            event="acknowledged",
                            actor=actor,
                            reason=chain.reason,
                            took=humanize(took),
                        )
                    )
            channel = incident.channel_id
        self.schedule_changed()
        for text in texts:
            self._announce(channel, text)
        return None
