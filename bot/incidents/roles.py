"""Who holds which role in an incident: assigning, taking (the card's Take button), handing over.

Open roles are anyone-in-the-incident's to take or give, except the approving roles (they approve customer
notices), which come from the playbook's people or the lead; a held role is reassigned by the lead or handed
over by its holder. Two people taking the same open role at once: one conditional UPDATE decides.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

from bot.core.clock import Clock
from bot.core.config import Playbook
from bot.core.errors import ConflictError, NotFoundError, PermissionDeniedError, UserInputError
from bot.core.i18n import _, current_locale, use_locale
from bot.core.text import safe_text
from bot.incidents.channel import ChannelUpdates, no_channel_yet, slack_refused
from bot.incidents.lifecycle import Lifecycle
from bot.incidents.permissions import Action, Permissions, Who
from bot.incidents.records import locate_incident
from bot.slack.commands import UserRef
from bot.slack.gateway import SlackCallError, SlackGateway
from store import queries
from store.models import Incident

log = logging.getLogger(__name__)


class Roles:
    def __init__(
        self,
        *,
        playbook: Playbook,
        db: sessionmaker[Session],
        slack: SlackGateway,
        clock: Clock,
        permissions: Permissions,
        lifecycle: Lifecycle,
        updates: ChannelUpdates,
    ) -> None:
        self.playbook = playbook
        self.db = db
        self.slack = slack
        self.clock = clock
        self.permissions = permissions
        self.lifecycle = lifecycle
        self.updates = updates

    def resolve_user(self, ref: UserRef, actor: str) -> str:
        """The Slack user a command names (`me`, a mention or a handle): a person still in the workspace."""
        if ref.is_me:
            return actor
        user = self.slack.user_info(ref.user_id) if ref.user_id else self.slack.find_user(ref.handle or "")
        shown = f"<@{ref.user_id}>" if ref.user_id else f"@{safe_text(ref.handle or '')}"
        if user is None or user.get("deleted"):
            raise NotFoundError(
                _(
                    "I can't find {user} in this workspace. Mention them with @ so Slack completes the name.",
                    user=shown,
                )
            )
        if user.get("is_bot"):
            raise UserInputError(_("{user} is a bot; give the role to a person.", user=shown))
        return str(user["id"])

    def assign(self, *, channel_id: str, role: str, user: UserRef, actor: str, command: str = "") -> str | None:
        target = self.resolve_user(user, actor)  # asking Slack who that is happens before the unit of work
        return self._assign(role, target, actor, channel_id=channel_id, command=command)

    def take(self, *, incident_id: int, role: str, actor: str) -> str | None:
        return self._assign(role, actor, actor, number=incident_id, command="button: take role", open_only=True)

    def _role_name(self, role: str) -> str:
        return safe_text(self.playbook.role_name(role))

    def _check_role_of_kind(self, incident: Incident, role: str) -> None:
        """Only the roles of the incident's kind can be held in it."""
        kind = self.playbook.kinds[incident.kind]
        if role not in kind.roles:
            names = ", ".join(f"{r} ({self.playbook.role_name(r)})" for r in kind.roles)
            raise UserInputError(
                _(
                    "A {kind} has no *{role}* role. Its roles: {roles}.",
                    kind=kind.name_in(current_locale()).lower(),
                    role=self._role_name(role),
                    roles=safe_text(names),
                )
            )

    def _check_assignment(
        self, incident: Incident, role: str, *, holder: str | None, target: str, actor: str, open_only: bool = False
    ) -> None:
        """Taking a role someone else already holds is refused as taken (`open_only`: the Take button, which is
        only ever for an open role, even for those who could reassign it)."""
        if role in self.playbook.approval_roles:
            self.permissions.require(Action.ASSIGN_APPROVER, incident, actor)
            pool = self.permissions.role_pool(role)
            if target == actor and actor not in pool:
                lead = self.permissions.lead(incident)
                mention = f"<@{lead}>"
                asker = _("the lead ({user})", user=mention) if lead != actor else _("an admin")
                example = f"`/incident assign {role} @someone`"
                raise PermissionDeniedError(
                    _(
                        "*{role}* approves customer notices, so nobody gives it to themselves. "
                        "Ask {asker} to assign it, e.g. {example} to one of {people}.",
                        role=self._role_name(role),
                        asker=asker,
                        example=example,
                        people=", ".join(f"<@{u}>" for u in pool),
                    )
                    if pool
                    else _(
                        "*{role}* approves customer notices, so nobody gives it to themselves. "
                        "Ask {asker} to assign it, e.g. {example}.",
                        role=self._role_name(role),
                        asker=asker,
                        example=example,
                    )
                )
            return
        if holder is None:
            self.permissions.require(Action.TAKE_OPEN_ROLE, incident, actor)
            return
        if target == actor != holder:
            may = self.permissions.allows(Action.REASSIGN_ROLE, incident, actor)
            if open_only or not may:
                hint = (
                    _("To take it over, type `/incident assign {role} me`.", role=role)
                    if may
                    else self.permissions.refusal(Action.REASSIGN_ROLE, incident, holder=holder)
                )
                raise ConflictError(f"{self._taken(role, holder)} {hint}")
        mine = (Who.ROLE_HOLDER,) if holder == actor else ()
        self.permissions.require(Action.REASSIGN_ROLE, incident, actor, also=mine, holder=holder)

    def _taken(self, role: str, holder: str) -> str:
        mention = f"<@{holder}>"
        return _("*{role}* is already taken by {user}.", role=self._role_name(role), user=mention)

    def _already_holds(self, target: str, role: str, number: int) -> str:
        mention = f"<@{target}>"
        return _("{user} already holds *{role}* in #{number}.", user=mention, role=self._role_name(role), number=number)

    def _assign(
        self,
        role: str,
        target: str,
        actor: str,
        *,
        command: str,
        channel_id: str | None = None,
        number: int | None = None,
        open_only: bool = False,
    ) -> str | None:
        """One unit of work: load the incident once, check, claim the role, queue what the channel is told."""
        if role not in self.playbook.roles:
            raise NotFoundError(
                _("Unknown role `{role}`. Roles: {roles}.", role=safe_text(role), roles=", ".join(self.playbook.roles))
            )
        role_name = self.playbook.roles[role].name  # the timeline's text; shown from its data's role
        with use_locale(self.playbook.locale):  # the announcement is posted in the channel (bot.core.i18n)
            channel_role_name = self.playbook.role_name(role)
        with self.db.begin() as s:
            incident = locate_incident(s, channel_id=channel_id, number=number)
            self._check_role_of_kind(incident, role)
            self.lifecycle.require_open(incident, _("change roles in"))
            assignment = next((a for a in incident.roles if a.role == role), None)
            holder = assignment.user_id if assignment else None
            self._check_assignment(incident, role, holder=holder, target=target, actor=actor, open_only=open_only)
            self_take = target == actor and holder is None
            previous = holder
            if previous == target:
                raise ConflictError(self._already_holds(target, role, incident.id))
            now = self.clock.now()
            if not queries.claim_role(s, incident.id, role, holder=holder, user=target, at=now, by=actor):
                current = queries.get_role_assignment(s, incident.id, role)  # who took it a moment ago
                if current is not None:
                    s.refresh(current)
                if current is None or current.user_id is None:
                    raise ConflictError(
                        _("*{role}* changed hands just now; look at the card again.", role=self._role_name(role))
                    )
                if current.user_id == target:
                    raise ConflictError(self._already_holds(target, role, incident.id))
                raise ConflictError(self._taken(role, current.user_id))
            event = "role_taken" if self_take else "assigned"
            self.lifecycle.advance(s, incident, actor)
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
            self.updates.announce(
                s, incident.id, event=event, actor=actor, user_id=target, role_name=channel_role_name, previous=previous
            )
            self.updates.refresh(s, incident.id)
        warning = self._invite(incident, target)  # before the announcement, so the new holder reads it
        flushed = self.updates.flush(incident.id)
        return warning or flushed

    def _invite(self, incident: Incident, user: str) -> str | None:
        """Bring the new holder into the channel; a refusal is reported, never undoes the assignment."""
        if incident.channel_id is None:
            return no_channel_yet(incident.id)
        try:
            skipped = self.slack.invite(incident.channel_id, [user])
        except SlackCallError as exc:
            skipped = {user: exc.error}
        if skipped:
            log.warning("incident %s: could not invite %s: %s", incident.id, user, skipped[user])
            return slack_refused(incident.id, skipped[user])
        return None
