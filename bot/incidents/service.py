"""Incident lifecycle: open, set up the channel, staff roles, change severity, update, resolve, close.

Every service method is one unit of work: it commits what it decided before it talks to Slack, so a
Slack failure can never lose the record, and Slack steps are idempotent so `repair` can finish them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.core.clock import Clock, utc
from bot.core.config import Playbook
from bot.core.errors import ConflictError, NotFoundError, PermissionDeniedError, UserInputError
from bot.core.i18n import use_locale
from bot.core.render import Renderer, SlackMarkup, user_mention
from bot.core.text import build_channel_name, safe_snippet, safe_text, truncate
from bot.deadlines.escalation import Escalations
from bot.deadlines.service import Deadlines, humanize, is_action_item
from bot.incidents.card import card
from bot.incidents.permissions import Action, Permissions, Who
from bot.notices.outbox import LaneResult, Outbox, Recorder, Step
from bot.slack.commands import UserRef
from bot.slack.gateway import SlackCallError, SlackGateway
from store import queries
from store.models import Incident, RoleAssignment

log = logging.getLogger(__name__)

TOPIC_MAX = 250
STATUS_FLOW = ("reported", "investigating", "resolved", "closed")
NAME_ATTEMPTS = 10
# The channel set-up, one outbox row each, in this order; what the reporter is told when one fails.
SETUP_STEPS = {
    "channel.create": "creating the channel",
    "channel.topic": "setting the channel topic",
    "channel.invite": "inviting people",
    "card.post": "posting the incident card",
    "plan.post": "posting the plan",
    "setup.done": "telling the reporter",
}


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


@dataclass(frozen=True)
class SetupOutcome:
    incident: Incident
    failed_step: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class IncidentService:
    def __init__(
        self,
        *,
        playbook: Playbook,
        db: sessionmaker[Session],
        slack: SlackGateway,
        clock: Clock,
        renderer: Renderer,
        deadlines: Deadlines,
        escalations: Escalations,
        outbox: Outbox,
        schedule_changed: Callable[[], None] = lambda: None,
    ) -> None:
        self.playbook = playbook
        self.db = db
        self.slack = slack
        self.clock = clock
        self.renderer = renderer
        self.deadlines = deadlines
        self.escalations = escalations
        self.schedule_changed = schedule_changed
        self.outbox = outbox
        self.permissions = Permissions(playbook, slack)
        # written in the resolving transaction, e.g. the satisfaction rating prompts
        self.after_resolve: list[Callable[[Session, Incident], None]] = []
        for effect, handler in {
            "channel.create": self._fx_create,
            "channel.topic": self._fx_topic,
            "channel.invite": self._fx_invite,
            "card.post": self._fx_card,
            "plan.post": self._fx_plan,
            "setup.done": self._fx_setup_done,
            "post": self._fx_post,
            "dm": self._fx_dm,
            "refresh": self._fx_refresh,
            "archive": self._fx_archive,
        }.items():
            outbox.register(effect, handler)

    @contextmanager
    def _uow(self) -> Iterator[Session]:
        with self.db.begin() as session:
            yield session

    # ---- opening ----------------------------------------------------------------------------------------

    def open_incident(
        self, incident_in: IncidentCreate, *, reporter: str, origin_channel: str | None = None
    ) -> Incident:
        """Record the incident and its default role owners, and claim its channel name."""
        kind = self.playbook.kinds.get(incident_in.kind)
        if kind is None:
            raise UserInputError(f"Unknown kind. Kinds: {', '.join(self.playbook.kinds)}.", field="kind")
        severity = incident_in.severity or kind.default_severity
        if severity not in self.playbook.severities:
            raise UserInputError(
                f"Unknown severity. Use one of {', '.join(self.playbook.severities)}.", field="severity"
            )
        if incident_in.category and incident_in.category not in kind.categories:
            allowed = ", ".join(kind.categories) or "none for this kind"
            raise UserInputError(f"Unknown category for {incident_in.kind}. Categories: {allowed}.", field="category")
        title = " ".join(incident_in.title.split())
        if not title:
            raise UserInputError("Give the incident a title.", field="title")
        pools = {role: self.permissions.role_pool(role) for role in kind.roles}
        now = self.clock.now()
        with self._uow() as s:
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
                    status="reported",
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
            incident.channel_name = self._channel_name(incident)
            for role in kind.roles:
                pool = pools[role]
                owner = pool[queries.next_rotation_position(s, role, len(pool))] if pool else None
                if owner is None and role == self.playbook.lead_role:
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
                },
            )
            self.deadlines.create(s, incident, start="opened", now=now, actor=reporter)
            for effect in SETUP_STEPS:  # the channel's set-up commits with the incident: a crash cannot lose it
                self.outbox.add(s, incident.id, f"setup:{incident.id}:{effect}", effect, reporter=reporter)
            if severity in self.playbook.escalation.page_on_open:
                self._page_severe(s, incident, f"{severity.upper()} {kind.name.lower()} opened", now, actor=reporter)
        self.schedule_changed()
        return incident

    def _page_severe(self, s: Session, incident: Incident, reason: str, now: datetime, *, actor: str) -> None:
        """A severe incident pages its lead (then the team lead, then leadership) until acknowledged; whoever
        caused the page (the reporter opening it, the lead raising it) is not paged for it."""
        lead = self.lead_of(incident)
        self.escalations.start(s, incident, reason=reason, owner=lead, now=now, caused_by=actor)
        if lead == actor:  # the lead who opened or raised it knows: that is the acknowledgement the plan asks for
            self.deadlines.on_event(s, incident, "ack", now=now, actor=actor)

    def _channel_name(self, incident: Incident, suffix: str = "") -> str:
        date = incident.created_at.astimezone(self.playbook.tz).strftime("%Y%m%d")
        return build_channel_name(
            self.playbook.channel.name_pattern,
            date=date,
            number=incident.id,
            title=incident.title,
            kind=incident.kind,
            severity=incident.severity,
            suffix=suffix,
        )

    def setup_channel(self, incident_id: int, *, result: LaneResult | None = None) -> SetupOutcome:
        """Run the incident's set-up (create, topic, invite, card, plan) from the outbox, each step once."""
        result = result or self.outbox.run(incident_id)
        if result.error is None or result.failed_effect is None:
            with self._uow() as s:
                self.row(s, incident_id).setup_error = None
            return SetupOutcome(self._get(incident_id))
        step = SETUP_STEPS.get(result.failed_effect, "updating the channel")
        with self._uow() as s:
            row = self.row(s, incident_id)
            row.setup_error = f"{step}: {result.error}"
            queries.add_timeline_event(
                s,
                incident_id,
                at=self.clock.now(),
                event="setup_failed",
                actor_id=None,
                text=f"Slack failed while {step}",
                data={"error": result.error},
            )
        log.warning("incident %s set-up failed while %s: %s", incident_id, step, result.error)
        return SetupOutcome(self._get(incident_id), failed_step=step, error=result.error)

    # ---- the side effects the outbox runs (bot/notices/outbox.py): each is safe to run again -----------------------

    def _channel_of(self, step: Step) -> tuple[Incident, str]:
        incident = self._get(step.incident_id)
        if incident.channel_id is None:  # its set-up has not created it yet (or failed): the lane waits
            raise SlackCallError(step.effect, "channel_not_created")
        return incident, incident.channel_id

    def _fx_create(self, step: Step) -> Recorder | None:
        incident = self._get(step.incident_id)
        if incident.channel_id is None:
            self._create_channel(incident)  # adopts our own channel if an earlier run created it and died
        return None

    def _fx_topic(self, step: Step) -> Recorder | None:
        incident, channel = self._channel_of(step)
        self.slack.set_topic(channel, self._topic(incident))
        return self._flag(step.incident_id, "topic_set", "topic_set")

    def _fx_invite(self, step: Step) -> Recorder | None:
        incident, channel = self._channel_of(step)
        skipped = self.slack.invite(channel, self._invitees(incident))
        flag = self._flag(step.incident_id, "members_invited", "members_invited")

        def record(s: Session) -> None:
            flag(s)
            if skipped:  # said after the card and plan, as one more step of the lane
                self.outbox.add(s, step.incident_id, f"{step.key}:skipped", "post", text=self._skipped_text(skipped))

        return record

    def _fx_card(self, step: Step) -> Recorder | None:
        incident, channel = self._channel_of(step)
        if incident.card_ts is not None:
            return None
        text, blocks = self.card(incident)
        ts = self.slack.post(
            channel,
            text,
            blocks,
            key=step.key,
            check_first=step.retried,  # a run killed after Slack took the card finds it instead of posting again
        )

        def record(s: Session) -> None:
            self.row(s, step.incident_id).card_ts = ts
            queries.add_timeline_event(s, step.incident_id, at=self.clock.now(), event="card_posted", actor_id=None)

        return record

    def _fx_plan(self, step: Step) -> Recorder | None:
        incident, channel = self._channel_of(step)
        if incident.welcome_posted:
            return None
        kind = self.playbook.kinds[incident.kind]
        text = self.renderer.render(
            kind.welcome_template, playbook_version=incident.playbook_version, incident=incident
        )
        self.slack.post(channel, text, key=step.key, check_first=step.retried)
        return self._flag(step.incident_id, "welcome_posted", "plan_posted")

    def _fx_setup_done(self, step: Step) -> Recorder | None:
        """The reporter's own request tells them; set-up finished later (after a restart, by the sweep) is
        told by DM, since they are still waiting for their channel."""
        if not step.resumed:
            return None
        incident, channel = self._channel_of(step)
        text = self.renderer.render(
            "slack/opened.j2", number=incident.id, channel_id=channel, resumed=True, setup_error=None, failed_step=None
        )
        self.slack.dm(str(step.payload.get("reporter") or incident.reporter_id), text, key=step.key, check_first=True)
        return lambda s: queries.add_timeline_event(
            s, step.incident_id, at=self.clock.now(), event="setup_resumed", actor_id=None
        )

    def _fx_post(self, step: Step) -> Recorder | None:
        _incident, channel = self._channel_of(step)
        self.slack.post(
            channel, str(step.payload["text"]), step.payload.get("blocks"), key=step.key, check_first=step.retried
        )
        return None

    def _fx_dm(self, step: Step) -> Recorder | None:
        self.slack.dm(
            str(step.payload["user"]),
            str(step.payload["text"]),
            step.payload.get("blocks"),
            key=step.key,
            check_first=step.retried,
        )
        return None

    def _fx_refresh(self, step: Step) -> Recorder | None:
        """Bring the card (and the topic) up to the incident as it is now: running it again is harmless."""
        incident, channel = self._channel_of(step)
        if incident.card_ts:
            self.slack.update(channel, incident.card_ts, *self.card(incident))
        if step.payload.get("topic") and incident.topic_set:
            self.slack.set_topic(channel, self._topic(incident))
        return None

    def _fx_archive(self, step: Step) -> Recorder | None:
        _incident, channel = self._channel_of(step)
        self.slack.archive(channel)  # already_archived counts as done (the gateway's benign answers)
        return lambda s: queries.add_timeline_event(
            s, step.incident_id, at=self.clock.now(), event="archived", actor_id=None
        )

    def _flag(self, incident_id: int, flag: str, event: str) -> Recorder:
        def record(s: Session) -> None:
            row = self.row(s, incident_id)
            if not getattr(row, flag):
                setattr(row, flag, True)
                queries.add_timeline_event(s, incident_id, at=self.clock.now(), event=event, actor_id=None)

        return record

    def _create_channel(self, incident: Incident) -> None:
        """Create the channel under the claimed name; on name_taken, adopt our own half-made channel or rename."""
        name = incident.channel_name or self._channel_name(incident)
        for attempt in range(1, NAME_ATTEMPTS + 1):
            try:
                channel = self.slack.create_channel(name)
                break
            except SlackCallError as exc:
                if exc.error != "name_taken":
                    raise
                existing = self.slack.find_channel(name)
                if existing and self._is_ours_unclaimed(existing):
                    channel = existing  # an earlier attempt created it, then died before recording it
                    break
                name = self._claim_name(incident.id, self._channel_name(incident, suffix=f"-{attempt + 1}"))
        else:
            raise SlackCallError("conversations.create", "name_taken")
        with self._uow() as s:
            row = self.row(s, incident.id)
            row.channel_id = str(channel["id"])
            row.channel_name = str(channel["name"])
            queries.add_timeline_event(
                s,
                incident.id,
                at=self.clock.now(),
                event="channel_created",
                actor_id=None,
                text=str(channel["name"]),
                data={"channel_id": channel["id"]},
            )

    def _is_ours_unclaimed(self, channel: dict[str, Any]) -> bool:
        if channel.get("creator") != self.slack.bot_user_id or channel.get("is_archived"):
            return False
        with self._uow() as s:
            return queries.get_incident_by_channel(s, str(channel["id"])) is None

    def _claim_name(self, incident_id: int, name: str) -> str:
        try:
            with self._uow() as s:
                self.row(s, incident_id).channel_name = name
        except IntegrityError:
            raise SlackCallError("conversations.create", "name_taken") from None
        return name

    def _invitees(self, incident: Incident) -> list[str]:
        users = [incident.reporter_id]
        if self.playbook.channel.invite_role_owners:
            users += [a.user_id for a in incident.roles if a.user_id]
        return users

    def _skipped_text(self, skipped: dict[str, str]) -> str:
        people = ", ".join(f"<@{user}> (`{error}`)" for user, error in skipped.items())
        return f":warning: I could not invite {people}. Check the playbook's default owners, or invite them by hand."

    def _topic(self, incident: Incident) -> str:
        text = self.renderer.render(
            "slack/topic.j2",
            severity=incident.severity,
            kind_name=self.playbook.kinds[incident.kind].name,
            title=incident.title,
            status=incident.status,
            is_drill=incident.is_drill,
        )
        return truncate(text, TOPIC_MAX)

    def opened_message(self, outcome: SetupOutcome) -> str:
        """What the reporter is told once the channel is (or is not) ready."""
        return self.renderer.render(
            "slack/opened.j2",
            number=outcome.incident.id,
            channel_id=outcome.incident.channel_id,
            setup_error=outcome.error,
            failed_step=outcome.failed_step,
            resumed=False,
        )

    def repair(self, *, channel_id: str | None, number: int | None, actor: str) -> str:
        """Resume the incident's outbox, in any state: every unfinished or failed step runs again (posts look
        for their key first, so nothing is duplicated); a fully set-up open incident also gets its invites,
        card and topic refreshed."""
        incident = self.find(channel_id=channel_id, number=number)
        self.require(Action.REPAIR, incident, actor)
        self.outbox.reopen(incident.id)
        pending = self.outbox.pending(incident.id)
        setup = [effect for effect in pending if effect in SETUP_STEPS]
        if incident.status != "closed" and not pending:
            with self._uow() as s:
                self._repair_steps(s, self.row(s, incident.id))
        result = self.outbox.run(incident.id)
        if setup:
            outcome = self.setup_channel(incident.id, result=result)
            if outcome.ok:
                self._record(outcome.incident.id, "repaired", None)
            return self.opened_message(outcome)
        if result.error:
            return (
                f"Slack refused a step for #{incident.id} (`{result.error}`); it is retried on its own, "
                f"or run `/incident repair {incident.id}` again."
            )
        incident = self._get(incident.id)
        if incident.status == "closed":
            done = f"; {result.ran} unfinished step(s) done" if result.ran else "; nothing was left to do"
            return f"#{incident.id} is closed{done}."
        return f"#{incident.id} is fully set up in <#{incident.channel_id}>; card and topic refreshed."

    def _repair_steps(self, s: Session, incident: Incident) -> None:
        """What `repair` queues for an open incident with nothing left in its outbox: any set-up step an older
        version never finished, then the idempotent ones (invites, card and topic) once more."""
        done = {
            "channel.create": incident.channel_id is not None,
            "channel.topic": incident.topic_set,
            "channel.invite": False,
            "card.post": incident.card_ts is not None,
            "plan.post": incident.welcome_posted,
        }
        nonce = uuid.uuid4().hex[:12]
        for effect, finished in done.items():
            if not finished:
                self.outbox.add(s, incident.id, f"repair:{nonce}:{effect}", effect, reporter=incident.reporter_id)
        self.outbox.add(s, incident.id, f"repair:{nonce}:refresh", "refresh", topic=True)

    # ---- finding ----------------------------------------------------------------------------------------

    def row(self, s: Session, incident_id: int) -> Incident:
        row = queries.get_incident(s, incident_id)
        if row is None:
            raise NotFoundError(f"There is no incident #{incident_id}. `/incident list` shows the open ones.")
        return row

    def _get(self, incident_id: int) -> Incident:
        with self._uow() as s:
            return self.row(s, incident_id)

    def find(self, *, channel_id: str | None, number: int | None = None) -> Incident:
        """The incident named by number, or else the one whose channel the command ran in."""
        if number is not None:
            return self._get(number)
        with self._uow() as s:
            incident = queries.get_incident_by_channel(s, channel_id) if channel_id else None
        if incident is None:
            raise NotFoundError(
                "This isn't an incident channel. Run the command in the incident's channel "
                "(`/incident list` shows them), or give its number, e.g. `/incident status 42`."
            )
        return incident

    # ---- people and permissions -------------------------------------------------------------------------

    def lead_of(self, incident: Incident) -> str | None:
        return self.permissions.lead(incident)

    def require(self, action: Action, incident: Incident, actor: str, *, also: tuple[Who, ...] = ()) -> None:
        """The permission policy (bot/incidents/permissions.py) for one action; refusals say who can."""
        self.permissions.require(action, incident, actor, also=also)

    def resolve_user(self, ref: UserRef, actor: str) -> str:
        if ref.is_me:
            return actor
        user = self.slack.user_info(ref.user_id) if ref.user_id else self.slack.find_user(ref.handle or "")
        shown = f"<@{ref.user_id}>" if ref.user_id else f"@{safe_text(ref.handle or '')}"
        if user is None or user.get("deleted"):
            raise NotFoundError(
                f"I can't find {shown} in this workspace. Mention them with @ so Slack completes the name."
            )
        if user.get("is_bot"):
            raise UserInputError(f"{shown} is a bot; give the role to a person.")
        return str(user["id"])

    # ---- changes ----------------------------------------------------------------------------------------

    def assign_role(self, *, channel_id: str, role: str, user: UserRef, actor: str, command: str = "") -> str | None:
        incident = self.find(channel_id=channel_id)
        self._check_role_of_kind(incident, role)
        target = self.resolve_user(user, actor)
        return self._assign(incident.id, role, target, actor, command=command)

    def take_role(self, *, incident_id: int, role: str, actor: str) -> str | None:
        return self._assign(incident_id, role, actor, actor, command="button: take role", open_only=True)

    def _check_role_of_kind(self, incident: Incident, role: str) -> None:
        """Only the roles of the incident's kind can be held in it."""
        kind = self.playbook.kinds[incident.kind]
        if role not in kind.roles:
            names = ", ".join(f"{r} ({self.playbook.roles[r].name})" for r in kind.roles)
            raise UserInputError(
                f"A {kind.name.lower()} has no *{safe_text(self.playbook.roles[role].name)}* role. "
                f"Its roles: {safe_text(names)}."
            )

    def _check_assignment(
        self, incident: Incident, role: str, *, holder: str | None, target: str, actor: str, open_only: bool = False
    ) -> None:
        """Open roles are anyone-in-the-incident's to take or give, except the approving roles, which come from
        the playbook's people or the lead; a held role is reassigned by the lead (or handed over by its holder).
        Taking a role someone else already holds is refused as taken (`open_only`: the Take button, which is
        only ever for an open role, even for those who could reassign it)."""
        if role in self.playbook.approval_roles:
            self.require(Action.ASSIGN_APPROVER, incident, actor)
            pool = self.permissions.role_pool(role)
            if target == actor and actor not in pool:
                name = safe_text(self.playbook.roles[role].name)
                raise PermissionDeniedError(
                    f"*{name}* approves customer notices, so nobody gives it to themselves. Ask "
                    + (f"the lead (<@{self.lead_of(incident)}>)" if self.lead_of(incident) != actor else "an admin")
                    + f" to assign it, e.g. `/incident assign {role} @someone`"
                    + (" to one of " + ", ".join(f"<@{u}>" for u in pool) if pool else "")
                    + "."
                )
            return
        if holder is None:
            self.require(Action.TAKE_OPEN_ROLE, incident, actor)
            return
        if target == actor != holder:
            may = self.permissions.allows(Action.REASSIGN_ROLE, incident, actor)
            if open_only or not may:
                hint = (
                    f"To take it over, type `/incident assign {role} me`."
                    if may
                    else self.permissions.refusal(Action.REASSIGN_ROLE, incident, holder=holder)
                )
                raise ConflictError(f"{self._taken(role, holder)} {hint}")
        mine = (Who.ROLE_HOLDER,) if holder == actor else ()
        self.permissions.require(Action.REASSIGN_ROLE, incident, actor, also=mine, holder=holder)

    def _taken(self, role: str, holder: str) -> str:
        return f"*{safe_text(self.playbook.roles[role].name)}* is already taken by <@{holder}>."

    def _assign(
        self, incident_id: int, role: str, target: str, actor: str, *, command: str, open_only: bool = False
    ) -> str | None:
        if role not in self.playbook.roles:
            raise NotFoundError(f"Unknown role `{safe_text(role)}`. Roles: {', '.join(self.playbook.roles)}.")
        role_name = self.playbook.roles[role].name
        with self._uow() as s:
            incident = self.row(s, incident_id)
            self._check_role_of_kind(incident, role)
            self._require_open(incident, "change roles in")
            assignment = next((a for a in incident.roles if a.role == role), None)
            holder = assignment.user_id if assignment else None
            self._check_assignment(incident, role, holder=holder, target=target, actor=actor, open_only=open_only)
            self_take = target == actor and holder is None
            previous = holder
            if previous == target:
                raise ConflictError(f"<@{target}> already holds *{safe_text(role_name)}* in #{incident.id}.")
            now = self.clock.now()
            if not queries.claim_role(s, incident.id, role, holder=holder, user=target, at=now, by=actor):
                current = queries.get_role_assignment(s, incident.id, role)  # who took it a moment ago
                if current is not None:
                    s.refresh(current)
                if current is None or current.user_id is None:
                    raise ConflictError(f"*{safe_text(role_name)}* changed hands just now; look at the card again.")
                if current.user_id == target:
                    raise ConflictError(f"<@{target}> already holds *{safe_text(role_name)}* in #{incident.id}.")
                raise ConflictError(self._taken(role, current.user_id))
            event = "role_taken" if self_take else "assigned"
            self._advance(s, incident, actor)
            queries.add_timeline_event(
                s,
                incident.id,
                at=now,
                event=event,
                actor_id=actor,
                text=role_name,
                data={"role": role, "user": target, "previous": previous, "command": command},
            )
            incident.updated_at = now
        warning = self._try_slack(incident.id, lambda inc: self._invite_or_fail(inc, target))
        self._announce(incident.id, event=event, actor=actor, user_id=target, role_name=role_name, previous=previous)
        return warning or self._refresh(incident.id)

    def _invite_or_fail(self, incident: Incident, user: str) -> None:
        skipped = self.slack.invite(incident.channel_id or "", [user])
        if skipped:
            raise SlackCallError("conversations.invite", skipped[user])

    def change_severity(self, *, channel_id: str, severity: str, actor: str, command: str = "") -> str | None:
        with self._uow() as s:
            incident = self.row(s, self.find(channel_id=channel_id).id)
            self.require(Action.SEV, incident, actor)
            self._require_open(incident, "change the severity of")
            if incident.severity == severity or not queries.change_severity(
                s, incident.id, expected=incident.severity, severity=severity
            ):
                s.refresh(incident)  # changed by another request a moment ago
                raise ConflictError(f"#{incident.id} is already {incident.severity.upper()}.")
            old, incident.severity, incident.updated_at = incident.severity, severity, self.clock.now()
            incident.peak_severity = min(incident.peak_severity or old, severity)  # sev1 sorts first
            queries.add_timeline_event(
                s,
                incident.id,
                at=incident.updated_at,
                event="severity_changed",
                actor_id=actor,
                text=f"{old} → {severity}",
                data={"old": old, "new": severity, "command": command},
            )
            page_on = self.playbook.escalation.page_on_open
            if severity in page_on and old not in page_on:
                self._page_severe(
                    s, incident, f"severity raised to {severity.upper()}", incident.updated_at, actor=actor
                )
            self._announce(incident.id, s, event="severity_changed", actor=actor, old=old, new=severity)
            self._refresh(incident.id, topic=True, s=s)
        self.schedule_changed()
        return self.flush(incident.id)

    def post_update(self, *, channel_id: str, text: str, actor: str, command: str = "") -> str | None:
        with self._uow() as s:
            incident = self.row(s, self.find(channel_id=channel_id).id)
            self.require(Action.UPDATE, incident, actor)
            if incident.status == "closed":
                raise ConflictError(f"#{incident.id} is closed; updates are no longer recorded.")
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
            moved = self._advance(s, incident, actor)
            self.deadlines.on_update(s, incident, now=incident.updated_at, actor=actor)
            self._announce(incident.id, s, event="update", actor=actor, text=text)
            if moved:
                self._refresh(incident.id, topic=True, s=s)
        self.schedule_changed()
        warning = self.flush(incident.id)
        return warning if moved else None

    def resolve(self, *, channel_id: str, summary: str, actor: str, command: str = "") -> str | None:
        with self._uow() as s:
            incident = self.row(s, self.find(channel_id=channel_id).id)
            self.require(Action.RESOLVE, incident, actor)
            resolvable = ("reported", "investigating")
            if incident.status not in resolvable or not queries.transition_incident(
                s, incident.id, expected=resolvable, status="resolved"
            ):
                s.refresh(incident)  # another request may have resolved it a moment ago: say what it is now
                raise ConflictError(
                    f"#{incident.id} is already {incident.status}; only a reported or investigating incident "
                    "can be resolved."
                )
            now = self.clock.now()
            incident.status, incident.resolved_at, incident.updated_at = "resolved", now, now
            incident.paused_at = None
            incident.resolution_summary = summary
            queries.add_timeline_event(
                s, incident.id, at=now, event="resolved", actor_id=actor, text=summary, data={"command": command}
            )
            self.deadlines.on_resolve(s, incident, now=now, actor=actor)
            incident.review_at = self._review_time(now)
            # what follows a resolve commits with it: a crash right after cannot lose the rating prompts
            self._announce(incident.id, s, event="resolved", actor=actor, text=summary)
            self._refresh(incident.id, topic=True, s=s)
            for listener in self.after_resolve:
                listener(s, incident)
        self.schedule_changed()
        return self.flush(incident.id)

    def _review_time(self, resolved: datetime) -> datetime:
        """When the review draft is posted: the playbook's hour on the next working day (or today)."""
        spec = self.playbook.review
        if spec.day == "next_working_day":
            return self.deadlines.working_hours.next_working_day_at(resolved, spec.at)
        today = datetime.combine(resolved.astimezone(self.renderer.tz).date(), spec.at, self.renderer.tz)
        return max(today.astimezone(resolved.tzinfo), resolved)

    def close(self, *, channel_id: str, actor: str, command: str = "") -> str | None:
        with self._uow() as s:
            incident = self.row(s, self.find(channel_id=channel_id).id)
            self.require(Action.CLOSE, incident, actor)
            self._require_closable(incident)
            unreviewed = self.playbook.review.required_before_close and incident.review_completed_at is None
            if unreviewed and actor not in self.playbook.admins:
                raise PermissionDeniedError(
                    f"The review of #{incident.id} is not complete: the lead marks it done with "
                    "`/incident review done` (`/incident review post` shows the draft now). "
                    "Only a playbook admin may close it before that, and that is recorded."
                )
            if not queries.transition_incident(s, incident.id, expected=("resolved",), status="closed"):
                s.refresh(incident)  # closed (or reopened) by another request a moment ago
                self._require_closable(incident)
                raise ConflictError(f"#{incident.id} changed while you closed it; look at it again.")
            now = self.clock.now()
            incident.status, incident.closed_at, incident.updated_at = "closed", now, now
            queries.add_timeline_event(
                s, incident.id, at=now, event="closed", actor_id=actor, data={"command": command}
            )
            if unreviewed:
                queries.add_timeline_event(s, incident.id, at=now, event="closed_without_review", actor_id=actor)
            if incident.review_posted_at is None:
                incident.review_at = None  # a closed incident's channel is archived: no draft is posted there
            self.deadlines.on_close(s, incident, now=now, actor=actor)
            summary = self._final_summary(s, incident, actor, reviewed=not unreviewed)
            # announce, card, final summary and archive commit with the close and run in this order
            self._announce(incident.id, s, event="closed", actor=actor)
            self._refresh(incident.id, topic=True, s=s)
            self.outbox.add(s, incident.id, f"close:{incident.id}:summary", "post", text=summary)
            if self.playbook.channel.archive_on_close:
                self.outbox.add(s, incident.id, f"close:{incident.id}:archive", "archive")
        self.schedule_changed()
        return self.flush(incident.id)

    def _require_closable(self, incident: Incident) -> None:
        if incident.status == "closed":
            raise ConflictError(f"#{incident.id} is already closed.")
        if incident.status != "resolved":
            raise ConflictError(
                f"#{incident.id} is {incident.status}; resolve it first with "
                "`/incident resolve <summary>`, then close it."
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
            kind=self.playbook.kinds[incident.kind].name,
            title=incident.title,
            open_for=humanize(utc(incident.closed_at or incident.updated_at) - utc(incident.created_at)),
            met=sum(d.state == "met" for d in deadlines),
            met_late=sum(d.state == "met" and d.closed_at is not None and d.closed_at > d.due_at for d in deadlines),
            missed=sum(d.state == "missed" for d in deadlines),
            open_actions=sum(is_action_item(d) and d.state == "pending" for d in deadlines),
            customer=f"{customer}/5" if customer else "not recorded",
            team=f"{sum(team) / len(team):.1f}/5 ({len(team)})" if team else "no ratings",
            reviewed=reviewed,
            reviewer=incident.review_completed_by,
            actor=actor,
            archive=self.playbook.channel.archive_on_close,
        )

    def pause(self, *, channel_id: str, reason: str, actor: str, command: str = "") -> str | None:
        """Stop the incident's clocks while waiting on the customer; deadlines move out on resume."""
        with self._uow() as s:
            incident = self.row(s, self.find(channel_id=channel_id).id)
            self.require(Action.PAUSE, incident, actor)
            self._require_open(incident, "pause")
            now = self.clock.now()
            if incident.paused_at is not None or not queries.set_paused(s, incident.id, paused_at=now):
                raise ConflictError(
                    f"#{incident.id} is already paused{self._by(s, incident.id, 'paused')}; "
                    "`/incident resume` restarts its clocks."
                )
            incident.paused_at = now
            self.deadlines.pause(s, incident)
            queries.add_timeline_event(
                s, incident.id, at=now, event="paused", actor_id=actor, text=reason, data={"command": command}
            )
            self._announce(incident.id, s, event="paused", actor=actor, text=reason)
        self.schedule_changed()
        self.flush(incident.id)
        return None

    def resume(self, *, channel_id: str, actor: str, command: str = "") -> str | None:
        with self._uow() as s:
            incident = self.row(s, self.find(channel_id=channel_id).id)
            self.require(Action.RESUME, incident, actor)
            if incident.paused_at is None or not queries.set_paused(s, incident.id, paused_at=None):
                resumed = self._by(s, incident.id, "resumed")
                raise ConflictError(
                    f"#{incident.id} was already resumed{resumed}; its clocks are running."
                    if resumed
                    else f"#{incident.id} is not paused."
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
            self._announce(incident.id, s, event="resumed", actor=actor, took=humanize(paused))
        self.schedule_changed()
        self.flush(incident.id)
        return None

    @staticmethod
    def _by(s: Session, incident_id: int, event: str) -> str:
        """ " by <@whoever>" did the incident's latest `event`, for a refusal that says who was first."""
        row = queries.latest_event(s, incident_id, event)
        return f" by <@{row.actor_id}>" if row is not None and row.actor_id else ""

    def _require_open(self, incident: Incident, action: str) -> None:
        if incident.status in ("resolved", "closed"):
            raise ConflictError(f"#{incident.id} is {incident.status}; you can no longer {action} it.")

    def _advance(self, s: Session, incident: Incident, actor: str) -> bool:
        """A human acting on a reported incident means it is being investigated."""
        if incident.status != "reported":
            return False
        if not queries.transition_incident(s, incident.id, expected=("reported",), status="investigating"):
            return False  # another request moved it on first (and recorded that)
        incident.status = "investigating"
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

    def _record(self, incident_id: int, event: str, actor: str | None, text: str = "") -> None:
        with self._uow() as s:
            queries.add_timeline_event(s, incident_id, at=self.clock.now(), event=event, actor_id=actor, text=text)

    # ---- keeping Slack in step --------------------------------------------------------------------------

    def _try_slack(self, incident_id: int, step: Any) -> str | None:
        """Run a Slack step for a committed change; a failure is reported, never undoes the record."""
        incident = self._get(incident_id)
        if incident.channel_id is None:
            return f"Saved. #{incident.id} has no channel yet; `/incident repair {incident.id}` will create it."
        try:
            step(incident)
        except SlackCallError as exc:
            log.warning("incident %s: Slack step failed: %s", incident_id, exc)
            return (
                f"Saved, but Slack refused to update the channel (`{exc.error}`). "
                f"`/incident repair {incident.id}` retries."
            )
        return None

    def try_post(self, channel_id: str, text: str) -> None:
        """Post to a channel; a Slack failure is logged, never undoes what was already recorded."""
        try:
            self.slack.post(channel_id, text)
        except SlackCallError as exc:
            log.warning("could not post to %s: %s", channel_id, exc.error)

    def _effect(self, s: Session | None, incident_id: int, effect: str, **payload: Any) -> None:
        """Queue a side effect: in the caller's transaction when given (the change and its effects commit
        together), else in one of its own right after the change."""
        key = f"{effect}:{incident_id}:{uuid.uuid4().hex}"
        if s is not None:
            self.outbox.add(s, incident_id, key, effect, **payload)
            return
        with self._uow() as own:
            self.outbox.add(own, incident_id, key, effect, **payload)

    def _announce(self, incident_id: int, s: Session | None = None, **context: Any) -> None:
        """Tell the channel what changed: through the outbox, run at once unless `s` is still open."""
        self._effect(s, incident_id, "post", text=self.renderer.render("slack/announce.j2", **context))
        if s is None:
            self.flush(incident_id)

    def _refresh(self, incident_id: int, *, topic: bool = False, s: Session | None = None) -> str | None:
        """Bring the card (and topic) up to date: through the outbox, run at once unless `s` is still open."""
        self._effect(s, incident_id, "refresh", topic=topic)
        return self.flush(incident_id) if s is None else None

    def flush(self, incident_id: int) -> str | None:
        """Run the incident's pending side effects now, on the thread that committed them; a refusal is
        reported (the outbox retries it, and `repair` resumes it), never undoes the record."""
        result = self.outbox.run(incident_id)
        if result.error is None and not result.waiting:
            return None
        incident = self._get(incident_id)
        if incident.channel_id is None:
            return f"Saved. #{incident.id} has no channel yet; `/incident repair {incident.id}` will create it."
        if result.error is None:
            return None  # another worker is running this incident's steps, or a retry is due soon
        log.warning("incident %s: Slack step %s failed: %s", incident_id, result.failed_effect, result.error)
        return (
            f"Saved, but Slack refused to update the channel (`{result.error}`). "
            f"`/incident repair {incident.id}` retries."
        )

    # ---- views ------------------------------------------------------------------------------------------

    def readable(self, action: Action, *, channel_id: str | None, number: int | None, actor: str) -> Incident:
        """The incident a read names, if `actor` may read it from where they asked."""
        incident = self.find(channel_id=channel_id, number=number)
        self.require(action, incident, actor)
        return incident

    def status_blocks(
        self, *, channel_id: str | None, number: int | None, actor: str
    ) -> tuple[str, list[dict[str, Any]]]:
        incident = self.readable(Action.STATUS, channel_id=channel_id, number=number, actor=actor)
        return self.card(incident)

    def card(self, incident: Incident) -> tuple[str, list[dict[str, Any]]]:
        """The card's fallback text and blocks, in the playbook's language (it is a channel message; the
        status reply will follow its reader's locale once that is looked up)."""
        with use_locale(self.playbook.locale):
            return card(incident, self.playbook, self.renderer)

    def timeline_text(self, *, channel_id: str | None, number: int | None, actor: str) -> str:
        incident = self.readable(Action.TIMELINE, channel_id=channel_id, number=number, actor=actor)
        with self._uow() as s:
            events = [
                {
                    "at": e.at,
                    "actor_id": e.actor_id or self.slack.bot_user_id,
                    "summary": self._summary(e.event, e.text, e.data),
                }
                for e in queries.list_timeline(s, incident.id)
            ]
        text = self.renderer.render("slack/timeline.j2", number=incident.id, events=events)
        return truncate(text, 39_000)

    def _summary(self, event: str, text: str, data: dict[str, Any]) -> SlackMarkup:
        t = safe_snippet(text, 300)
        role = safe_text(text)
        summaries = {
            "opened": f"opened it ({str(data.get('severity', '')).upper()} {data.get('kind', '')}): {t}",
            "assigned": f"assigned {user_mention(data.get('user'))} as *{role}*",
            "role_taken": f"took the role *{role}*",
            "severity_changed": f"changed the severity {t}",
            "status_changed": f"status {t}",
            "update": f"update: {t}",
            "resolved": f"resolved it: {t}",
            "closed": "closed it",
            "channel_created": f"created the channel #{t}",
            "setup_failed": f":warning: {t} (`{safe_text(str(data.get('error', '')))}`)",
            "repaired": "repaired the set-up",
        }
        return SlackMarkup(summaries.get(event, event.replace("_", " ") + (f": {t}" if t else "")))

    def list_text(self) -> str:
        with self._uow() as s:
            incidents = [
                {
                    "id": i.id,
                    "severity": i.severity,
                    "kind": i.kind,
                    "title": i.title,
                    "status": i.status,
                    "channel_id": i.channel_id,
                    "lead": self.lead_of(i),
                }
                for i in queries.list_open_incidents(s)
            ]
        return self.renderer.render("slack/list.j2", incidents=incidents)

    def help_text(self) -> str:
        return self.renderer.render(
            "slack/help.j2",
            kinds=", ".join(self.playbook.kinds),
            roles=", ".join(self.playbook.roles),
            notice_channels="; ".join(  # each kind's own: a complaint is answered to its customer, never in public
                f"{kind} → {', '.join(self.playbook.notice_channels_for(kind)) or 'none'}"
                for kind in self.playbook.kinds
            ),
            notice_locales=", ".join(self.playbook.notices.locales),
        )
