"""Deadlines of the plan: created from the playbook, met by people or by the bot, snoozed, listed.

Every change here is a row change in the store plus a timeline event; the scheduler (bot/deadlines/scheduler.py)
only ever acts on what these rows say.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot.core.clock import utc
from bot.core.config import DeadlineSpec, Playbook, parse_offset
from bot.core.errors import ConflictError, NotFoundError
from bot.core.i18n import _, ngettext
from bot.core.labels import state_label
from bot.core.text import safe_text
from bot.deadlines.working_hours import WorkingHours
from store import queries
from store.models import Deadline, Incident
from store.states import DEADLINE_MOVES, DONE, DeadlineState, require_moves


def reminder_times(start: datetime, due: datetime, offsets: Sequence[str]) -> list[datetime]:
    """When to remind, strictly between start and due (at the deadline itself the miss is announced)."""
    start, due = utc(start), utc(due)
    total = due - start
    times = set()
    for raw in offsets:
        offset = parse_offset(raw)
        at = start + total * offset if isinstance(offset, float) else due - offset
        if start < at < due:
            times.add(at)
    return sorted(times)


def next_action(deadline: Deadline, offsets: Sequence[str]) -> datetime | None:
    """The next moment the scheduler must look at a pending deadline."""
    if deadline.state != DeadlineState.PENDING:
        return None
    candidates = [utc(deadline.due_at)]
    times = reminder_times(deadline.start_at, deadline.due_at, offsets)
    if deadline.reminders_done < len(times):
        candidates.append(times[deadline.reminders_done])
    if deadline.snoozed_until is not None:
        candidates.append(utc(deadline.snoozed_until))
    return min(candidates)


ACTION_PREFIX = "action-"
FIRST_RESPONSE = "first_response"  # the deadline whose meeting is the KPI's first response


def is_action_item(deadline: Deadline) -> bool:
    """Action items from the review outlive the incident: they keep reminding after it is closed."""
    return deadline.key.startswith(ACTION_PREFIX)


def owner_for(incident: Incident, role: str, lead_role: str, user: str | None = None) -> str | None:
    """Who a deadline's reminders go to: the person it names (action items), else the role's owner,
    else the lead, else nobody (channel only)."""
    if user:
        return user
    owners = {a.role: a.user_id for a in incident.roles if a.user_id}
    return owners.get(role) or owners.get(lead_role)


class Deadlines:
    """Deadline rules used inside other services' units of work (they never commit)."""

    def __init__(self, playbook: Playbook) -> None:
        self.playbook = playbook
        self.working_hours = WorkingHours.of(playbook)

    def due(self, clock: str, start: datetime, duration: timedelta) -> datetime:
        """When a deadline of `duration` started at `start` falls due, in calendar or working time."""
        return self.working_hours.add(start, duration) if clock == "business" else utc(start) + duration

    def _owner_role(self, spec: DeadlineSpec, incident: Incident) -> str:
        kind = self.playbook.kinds[incident.kind]
        if spec.route_by_category and incident.category and incident.category in kind.category_routes:
            return kind.category_routes[incident.category]
        return spec.owner

    def create(
        self, s: Session, incident: Incident, *, start: str, now: datetime, actor: str | None = None
    ) -> list[Deadline]:
        """The playbook's deadlines for this incident that start at `start` (opened or resolved)."""
        created = []
        for spec in self.playbook.kinds[incident.kind].deadlines:
            if spec.start != start or not spec.applies_to(incident.severity):
                continue
            created.append(self._add(s, incident, spec, now))
        for deadline in created:
            queries.add_timeline_event(
                s,
                incident.id,
                at=now,
                event="deadline_set",
                actor_id=actor,
                text=deadline.name,
                data={"deadline_id": deadline.id, "key": deadline.key, "due_at": deadline.due_at.isoformat()},
            )
        return created

    def _add(self, s: Session, incident: Incident, spec: DeadlineSpec, start_at: datetime) -> Deadline:
        deadline = Deadline(
            incident_id=incident.id,
            key=spec.key,
            name=spec.name,
            owner_role=self._owner_role(spec, incident),
            start_at=start_at,
            due_at=self.due(spec.clock, start_at, spec.duration_for(incident.severity)),
            state=DeadlineState.PENDING,
            clock=spec.clock,
            cadence=spec.cadence,
            escalate=spec.escalate,
            on_resolve=spec.on_resolve,
            reminders_done=0,
            snoozes=0,
            incident_created_at=incident.created_at,
            incident_is_drill=incident.is_drill,
        )
        deadline.next_action_at = next_action(deadline, self.playbook.reminders.offsets)
        return queries.add_deadline(s, deadline)

    def close(self, s: Session, deadline: Deadline, state: DeadlineState, *, now: datetime, actor: str | None) -> None:
        """Mark a deadline met or cancelled, and stop whatever was paging for it."""
        require_moves(DEADLINE_MOVES, (deadline.state,), state)  # as read: a conditional update may have moved it
        deadline.state, deadline.closed_at, deadline.closed_by = state, now, actor
        deadline.next_action_at = None
        if state == DeadlineState.MET and deadline.key == FIRST_RESPONSE:
            incident = queries.get_incident(s, deadline.incident_id)
            if incident is not None and incident.first_response_at is None:
                incident.first_response_at = now  # the KPI report's copy
        queries.cancel_escalations(s, deadline.incident_id, deadline_id=deadline.id)
        event = "deadline_met" if state == DeadlineState.MET else "deadline_cancelled"
        late = now - utc(deadline.due_at)
        queries.add_timeline_event(
            s,
            deadline.incident_id,
            at=now,
            event=event,
            actor_id=actor,
            text=deadline.name,
            data={"deadline_id": deadline.id, "key": deadline.key, "late_seconds": int(late.total_seconds())},
        )

    def pending(self, s: Session, incident_id: int) -> list[Deadline]:
        return queries.list_deadlines_by_due(s, incident_id, state=DeadlineState.PENDING)

    def missed(self, s: Session, incident_id: int) -> list[Deadline]:
        """Missed deadlines whose work can still be done late (not cadences: the next update re-arms those)."""
        return queries.list_deadlines_by_due(s, incident_id, state=DeadlineState.MISSED, cadence=False)

    def all(self, s: Session, incident_id: int) -> list[Deadline]:
        return queries.list_deadlines_by_due(s, incident_id)

    def on_update(self, s: Session, incident: Incident, *, now: datetime, actor: str) -> Deadline | None:
        """A status update meets the cadence and re-arms it from now (not from the old due time)."""
        specs = [
            d
            for d in self.playbook.kinds[incident.kind].deadlines
            if d.cadence and d.start == "opened" and d.applies_to(incident.severity)
        ]
        if not specs or incident.status in DONE:
            return None
        if len(specs) > 1:
            # several cadences (a surge's departments each report): an update meets the ones it is reminded of
            # (its department's; the lead's too for a department nobody holds)
            lead = self.playbook.lead_role
            specs = [d for d in specs if owner_for(incident, self._owner_role(d, incident), lead) == actor]
        armed = None
        for spec in specs:
            for deadline in self.all(s, incident.id):
                if deadline.key != spec.key:
                    continue
                if deadline.state == DeadlineState.PENDING:
                    self.close(s, deadline, DeadlineState.MET, now=now, actor=actor)
                elif deadline.state == DeadlineState.MISSED:  # the late update still stops the paging
                    queries.cancel_escalations(s, incident.id, deadline_id=deadline.id)
            armed = armed or self._add(s, incident, spec, now)
        return armed

    def on_resolve(self, s: Session, incident: Incident, *, now: datetime, actor: str) -> None:
        """Resolving meets or cancels what no longer applies, per the playbook, and starts what begins now."""
        for deadline in self.pending(s, incident.id):
            if deadline.cadence or deadline.on_resolve == "cancel":
                self.close(s, deadline, DeadlineState.CANCELLED, now=now, actor=actor)
            elif deadline.on_resolve == "met":
                self.close(s, deadline, DeadlineState.MET, now=now, actor=actor)
        queries.cancel_escalations(s, incident.id, unbound_only=True)
        self.create(s, incident, start="resolved", now=now, actor=actor)

    def on_close(self, s: Session, incident: Incident, *, now: datetime, actor: str) -> None:
        """Nothing is sent for a closed incident, but for its action items (follow-up work outlives it)."""
        for deadline in self.pending(s, incident.id):
            if not is_action_item(deadline):
                self.close(s, deadline, DeadlineState.CANCELLED, now=now, actor=actor)
        queries.cancel_escalations(s, incident.id)

    def on_event(self, s: Session, incident: Incident, event: str, *, now: datetime, actor: str) -> None:
        """Meet the deadlines the playbook says this event meets (e.g. an acknowledged page): pending ones,
        and missed ones too — the work was done, late, and the record and the KPIs say so."""
        keys = {d.key for d in self.playbook.kinds[incident.kind].deadlines if event in d.met_by}
        for deadline in self.pending(s, incident.id) + self.missed(s, incident.id):
            if deadline.key in keys:
                self.close(s, deadline, DeadlineState.MET, now=now, actor=actor)

    def pause(self, s: Session, incident: Incident) -> None:
        """Stop every pending clock of the incident (waiting on the customer)."""
        for deadline in self.pending(s, incident.id):
            deadline.next_action_at = None

    def resume(self, s: Session, incident: Incident, *, paused_at: datetime, now: datetime) -> timedelta:
        """Restart the clocks, each extended by the time it stood still. Returns the paused time."""
        paused = now - utc(paused_at)
        for deadline in self.pending(s, incident.id):
            if deadline.clock == "business":
                left = self.working_hours.measure(paused_at, deadline.due_at)
                deadline.due_at = self.working_hours.add(now, left)
            else:
                deadline.due_at = utc(deadline.due_at) + paused
            deadline.start_at = utc(deadline.start_at) + paused
            if deadline.snoozed_until is not None:
                deadline.snoozed_until = utc(deadline.snoozed_until) + paused
            deadline.next_action_at = next_action(deadline, self.playbook.reminders.offsets)
        return paused

    def find(self, s: Session, incident: Incident, word: str) -> Deadline:
        """The deadline a user named by key, name or number in the list: a pending one, else a missed one
        (done late, it is recorded as met late)."""
        pending = self.pending(s, incident.id)
        word_norm = word.strip().lower().replace(" ", "_")
        for deadline in pending + self.missed(s, incident.id):
            if word_norm in (deadline.key, deadline.name.lower().replace(" ", "_"), str(deadline.id)):
                return deadline
        if not pending:
            raise ConflictError(_("#{number} has no pending deadlines.", number=incident.id))
        keys = ", ".join(f"`{d.key}`" for d in pending)
        raise NotFoundError(
            _(
                "No pending deadline `{word}` in #{number}. Pending: {keys}.",
                word=safe_text(word),
                number=incident.id,
                keys=keys,
            )
        )

    def snooze(self, s: Session, deadline: Deadline, *, now: datetime, actor: str) -> datetime:
        """Snooze once: a deadline already snoozed (by another click a moment ago, too) is refused as such."""
        self._require_snoozable(s, deadline, now)
        until = min(now + self.playbook.reminders.snooze, utc(deadline.due_at))
        if not queries.snooze_deadline(s, deadline.id, snoozes=deadline.snoozes, until=until, now=now):
            s.refresh(deadline)  # snoozed, met or cancelled by another request a moment ago
            self._require_snoozable(s, deadline, now)
            raise ConflictError(
                _("*{name}* changed just now; look at `/incident deadlines`.", name=safe_text(self._name(s, deadline)))
            )
        deadline.snoozed_until, deadline.snoozes = until, deadline.snoozes + 1
        times = reminder_times(deadline.start_at, deadline.due_at, self.playbook.reminders.offsets)
        while deadline.reminders_done < len(times) and times[deadline.reminders_done] <= until:
            deadline.reminders_done += 1  # reminders inside the snooze are skipped
        deadline.next_action_at = next_action(deadline, self.playbook.reminders.offsets)
        queries.add_timeline_event(
            s,
            deadline.incident_id,
            at=now,
            event="snoozed",
            actor_id=actor,
            text=deadline.name,
            data={"deadline_id": deadline.id, "until": until.isoformat()},
        )
        return until

    def _name(self, s: Session, deadline: Deadline) -> str:
        """The deadline's name in the current language (the playbook names it per kind; see Playbook)."""
        incident = queries.get_incident(s, deadline.incident_id)
        return self.playbook.deadline_name(incident.kind, deadline.key, deadline.name) if incident else deadline.name

    def _require_snoozable(self, s: Session, deadline: Deadline, now: datetime) -> None:
        name = safe_text(self._name(s, deadline))
        if deadline.state != "pending":
            raise ConflictError(
                _(
                    "*{name}* is already {state}; there is nothing to snooze.",
                    name=name,
                    state=state_label(deadline.state),
                )
            )
        if deadline.snoozed_until is not None and utc(deadline.snoozed_until) > now:
            snoozed = queries.latest_event(s, deadline.incident_id, "snoozed", deadline_id=deadline.id)
            by = _(" by <@{user}>", user=snoozed.actor_id) if snoozed is not None and snoozed.actor_id else ""
            until = utc(deadline.snoozed_until).astimezone(self.playbook.tz).strftime("%m-%d %H:%M")
            raise ConflictError(_("*{name}* is already snoozed{by} until {until}.", name=name, by=by, until=until))
        if deadline.snoozes >= self.playbook.reminders.max_snoozes:
            raise ConflictError(
                ngettext(
                    "*{name}* was snoozed {n} time already (the playbook's limit); "
                    "mark it done or ask the lead for help.",
                    "*{name}* was snoozed {n} times already (the playbook's limit); "
                    "mark it done or ask the lead for help.",
                    deadline.snoozes,
                    name=name,
                )
            )


def humanize(delta: timedelta) -> str:
    """'3h 20m', '2d 4h', '45m' — how people read time left."""
    minutes = int(abs(delta).total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return _("{days}d {hours}h", days=days, hours=hours)
    if hours:
        return _("{hours}h {minutes}m", hours=hours, minutes=mins)
    return _("{minutes}m", minutes=mins)
