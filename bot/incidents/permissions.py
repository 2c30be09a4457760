"""The one permission policy: for every command, button and modal submission, who may do it.

Every service checks through `Permissions.require(action, …)`, so the table below is the whole
policy; the permission-matrix test is generated from it, and README's permissions section lists it.

The kinds of people, for one incident:
- anyone: every workspace member, including outsiders with no part in the incident;
- participant: a member of the incident's channel, its reporter, or the owner of one of its roles;
- role owner: holds one of the incident's roles (the lead included);
- lead: holds the lead role (the reporter, when the playbook gives the lead no default owner);
- approver: holds one of the playbook's approving roles (`notices.approval.roles`) in this incident;
- admin: listed in the playbook's `admins`.
Some actions also admit someone by the thing acted on: the person a deadline reminds (an action
item's owner), the people a page reached, the current holder of a role handing it over.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum

from bot.core import i18n
from bot.core.config import Playbook
from bot.core.errors import PermissionDeniedError
from bot.core.i18n import N_, _
from bot.core.text import safe_text
from bot.slack.gateway import SlackCallError, SlackGateway
from store.models import Incident

log = logging.getLogger(__name__)


class Who(StrEnum):
    ANYONE = "anyone"
    PARTICIPANT = "participant"
    ROLE_OWNER = "role owner"
    LEAD = "lead"
    APPROVER = "approver"
    ADMIN = "admin"
    # admitted by what is acted on
    DEADLINE_OWNER = "deadline owner"
    PAGED = "paged"
    ROLE_HOLDER = "role holder"
    VISIBLE = "anyone (the kind is visible)"
    # the surge plan's leadership group (bot/surge/leadership.py; admins are always members)
    LEADERSHIP = "leadership group"


class Action(StrEnum):
    OPEN = "open"
    HELP = "help"
    LIST = "list"
    REPORT = "report"
    STATUS = "status"
    TIMELINE = "timeline"
    DEADLINES = "deadlines"
    TAKE_OPEN_ROLE = "take or assign an open role"
    REASSIGN_ROLE = "reassign a held role"
    ASSIGN_APPROVER = "assign an approving role"
    SEV = "sev"
    UPDATE = "update"
    SOLUTION = "record the solution"
    RESOLVE = "resolve"
    CLOSE = "close"
    PAUSE = "pause"
    RESUME = "resume"
    REPAIR = "repair"
    MARK_DONE = "mark a deadline done"
    SNOOZE = "snooze a deadline"
    ACK = "acknowledge a page"
    DRAFT_NOTICE = "draft a notice"
    EDIT_NOTICE = "edit a notice"
    APPROVE_NOTICE = "approve a notice"
    PUBLISH_NOTICE = "publish a notice"
    SATISFACTION = "record the customer's satisfaction"
    RATE_RESPONSE = "rate the response"
    ACTION_ITEM = "add an action item"
    REVIEW_POST = "post the review"
    REVIEW_EXPORT = "export the review"
    REVIEW_DONE = "complete the review"
    PLAN = "read the plan's version"
    SURGE = "read the surge watch"
    COMPLAINTS = "list complaints"
    ESCALATE = "escalate a complaint"
    SURGE_END = "end the surge plan"
    SURGE_DISMISS = "dismiss the surge proposal"


@dataclass(frozen=True)
class Rule:
    """Who may take one action, on which surfaces, and the verb used when refusing ("… can <verb> #12")."""

    allowed: frozenset[Who]
    surfaces: tuple[str, ...]
    verb: str
    read_only: bool = False


def _rule(allowed: Iterable[Who], surfaces: Iterable[str], verb: str, *, read_only: bool = False) -> Rule:
    return Rule(frozenset(allowed), tuple(surfaces), verb, read_only)


A, P, OWN, L, AP, AD = Who.ANYONE, Who.PARTICIPANT, Who.ROLE_OWNER, Who.LEAD, Who.APPROVER, Who.ADMIN
READERS = (P, AD, Who.VISIBLE)  # inside the incident's channel everyone there is a participant

POLICY: dict[Action, Rule] = {
    Action.OPEN: _rule(
        [A], ["/incident open", "/complaint", "/outage", "modal: report", "/incident drill"], N_("open incidents")
    ),
    Action.HELP: _rule([A], ["/incident help"], N_("read the help"), read_only=True),
    Action.LIST: _rule([A], ["/incident list"], N_("list open incidents"), read_only=True),
    Action.REPORT: _rule([A], ["/incident report"], N_("read the KPI report"), read_only=True),
    Action.PLAN: _rule([A], ["/incident plan"], N_("read the plan's version"), read_only=True),
    Action.STATUS: _rule(READERS, ["/incident status"], N_("read the status of"), read_only=True),
    Action.TIMELINE: _rule(READERS, ["/incident timeline"], N_("read the timeline of"), read_only=True),
    Action.DEADLINES: _rule(READERS, ["/incident deadlines"], N_("read the deadlines of"), read_only=True),
    Action.TAKE_OPEN_ROLE: _rule(
        [P, AD], ["/incident assign <open role>", "button: Take <role>"], N_("take or assign open roles in")
    ),
    Action.REASSIGN_ROLE: _rule([L, AD, Who.ROLE_HOLDER], ["/incident assign <held role>"], N_("reassign roles in")),
    Action.ASSIGN_APPROVER: _rule([L, AD], ["/incident assign <approving role>"], N_("assign approving roles in")),
    Action.SEV: _rule([OWN, AD], ["/incident sev"], N_("change the severity of")),
    Action.UPDATE: _rule([OWN, AD], ["/incident update"], N_("post updates to")),
    Action.SOLUTION: _rule([OWN, AD], ["/incident solution"], N_("record the solution of")),
    Action.RESOLVE: _rule([OWN, AD], ["/incident resolve"], N_("resolve")),
    Action.CLOSE: _rule([OWN, AD], ["/incident close"], N_("close")),
    Action.PAUSE: _rule([OWN, AD], ["/incident pause"], N_("pause")),
    Action.RESUME: _rule([OWN, AD], ["/incident resume"], N_("resume")),
    Action.REPAIR: _rule([P, AD], ["/incident repair"], N_("repair")),
    Action.MARK_DONE: _rule(
        [OWN, AD, Who.DEADLINE_OWNER], ["/incident done", "button: Mark done"], N_("mark deadlines done in")
    ),
    Action.SNOOZE: _rule([L, AD, Who.DEADLINE_OWNER], ["button: Snooze"], N_("snooze deadlines of")),
    Action.ACK: _rule([OWN, AD, Who.PAGED], ["/incident ack", "button: Acknowledge"], N_("acknowledge pages for")),
    Action.DRAFT_NOTICE: _rule([OWN, AD], ["/incident notice"], N_("draft notices for")),
    Action.EDIT_NOTICE: _rule([OWN, AD], ["button: Edit", "modal: edit notice"], N_("edit notices for")),
    Action.APPROVE_NOTICE: _rule([AP, AD], ["button: Approve"], N_("approve notices for")),
    Action.PUBLISH_NOTICE: _rule([OWN, AD], ["button: Publish"], N_("publish notices for")),
    Action.SATISFACTION: _rule(
        [OWN, AD], ["/incident satisfaction", "button: customer rating"], N_("record satisfaction for")
    ),
    Action.RATE_RESPONSE: _rule([OWN, AD], ["button: rate the response"], N_("rate the response to")),
    Action.ACTION_ITEM: _rule([OWN, AD], ["/incident action"], N_("add action items to")),
    Action.REVIEW_POST: _rule([OWN, AD], ["/incident review post"], N_("post the review of")),
    Action.REVIEW_EXPORT: _rule([OWN, AD], ["/incident review export"], N_("export the review of")),
    Action.REVIEW_DONE: _rule([L, AD], ["/incident review done"], N_("complete the review of")),
    # the volume against the warning lines is no secret; deciding on it is the leadership group's (bot/surge)
    Action.SURGE: _rule([A], ["/incident surge"], N_("read the surge watch"), read_only=True),
    # complaints from the complaint system: anyone on staff reads the (masked) list and may escalate one
    Action.COMPLAINTS: _rule([A], ["/incident complaints"], N_("list complaints"), read_only=True),
    Action.ESCALATE: _rule([A], ["/incident escalate", "button: Escalate"], N_("escalate complaints")),
    # the leadership group's decisions typed instead of clicked (End button, Dismiss modal); bot/surge checks it
    Action.SURGE_END: _rule([Who.LEADERSHIP, AD], ["/incident surge end"], N_("end the surge plan")),
    Action.SURGE_DISMISS: _rule([Who.LEADERSHIP, AD], ["/incident surge dismiss"], N_("dismiss the surge proposal")),
}


@contextmanager
def language(playbook: Playbook) -> Iterator[str]:
    """The caller's language if one is set (the request's reader, chosen by the bolt middleware), else the
    playbook's (a job, another service, a test calling in directly)."""
    if i18n._current.get(None) is not None:
        yield i18n.current_locale()
        return
    with i18n.use_locale(playbook.locale) as locale:
        yield locale


class Permissions:
    """Decides who someone is to an incident, and refuses with a message that says who can."""

    def __init__(self, playbook: Playbook, slack: SlackGateway) -> None:
        self.playbook = playbook
        self.slack = slack

    # ---- who someone is ---------------------------------------------------------------------------------

    def lead(self, incident: Incident) -> str | None:
        return next((a.user_id for a in incident.roles if a.role == self.playbook.lead_role and a.user_id), None)

    def role_owners(self, incident: Incident) -> set[str]:
        return {a.user_id for a in incident.roles if a.user_id}

    def approvers(self, incident: Incident) -> set[str]:
        roles = set(self.playbook.approval_roles)
        return {a.user_id for a in incident.roles if a.role in roles and a.user_id}

    def in_channel(self, incident: Incident, user: str) -> bool:
        """Whether Slack lists the user as a member of the incident's channel (no channel: no members)."""
        if not incident.channel_id:
            return False
        try:
            return user in self.slack.channel_members(incident.channel_id)
        except SlackCallError as exc:  # cannot tell: treat as not a member, the safe answer
            log.warning("could not read the members of %s: %s", incident.channel_id, exc.error)
            return False

    def who(self, incident: Incident, actor: str, *, also: Iterable[Who] = ()) -> set[Who]:
        """Every kind of person `actor` is for this incident (`also`: what the thing acted on admits them as).
        Channel membership is asked of Slack, not inferred from where a request came from."""
        kinds = {Who.ANYONE, *also}
        if actor in self.playbook.admins:
            kinds.add(Who.ADMIN)
        if actor in self.role_owners(incident):
            kinds |= {Who.ROLE_OWNER, Who.PARTICIPANT}
        if actor == self.lead(incident):
            kinds.add(Who.LEAD)
        if actor in self.approvers(incident):
            kinds.add(Who.APPROVER)
        if self.playbook.kinds[incident.kind].visible_to == "everyone":
            kinds.add(Who.VISIBLE)
        if Who.PARTICIPANT not in kinds and (actor == incident.reporter_id or self.in_channel(incident, actor)):
            kinds.add(Who.PARTICIPANT)
        return kinds

    def allows(self, action: Action, incident: Incident, actor: str, *, also: Iterable[Who] = ()) -> bool:
        allowed = POLICY[action].allowed
        if Who.ANYONE in allowed:
            return True
        # cheap answers first: channel membership is a Slack call
        cheap = {Who.ANYONE, *also}
        if actor in self.playbook.admins:
            cheap.add(Who.ADMIN)
        if actor in self.role_owners(incident):
            cheap.add(Who.ROLE_OWNER)
        if cheap & allowed:
            return True
        return bool(self.who(incident, actor, also=also) & allowed)

    # ---- refusing -----------------------------------------------------------------------------------------

    def require(
        self,
        action: Action,
        incident: Incident,
        actor: str,
        *,
        also: Iterable[Who] = (),
        holder: str | None = None,
    ) -> None:
        """Refuse, saying who can, unless `actor` is one of the people the policy allows."""
        if not self.allows(action, incident, actor, also=also):
            raise PermissionDeniedError(self.refusal(action, incident, holder=holder))

    def refusal(self, action: Action, incident: Incident, *, holder: str | None = None) -> str:
        """ "Only <who> can <verb> #12." in the reader's language, naming the people who can."""
        rule = POLICY[action]
        lead = self.lead(incident)
        names: list[str] = []
        for kind in (L, OWN, AP, Who.DEADLINE_OWNER, Who.PAGED, Who.ROLE_HOLDER, P, AD):
            if kind not in rule.allowed:
                continue
            if kind is L:
                names.append(_("the lead ({user})", user=mention(lead)) if lead else _("the lead (nobody yet)"))
            elif kind is OWN:
                owners = sorted(self.role_owners(incident) - {lead})
                names.append(
                    _("role owners ({users})", users=", ".join(mention(u) for u in owners))
                    if owners
                    else _("the role owners")
                )
                if L not in rule.allowed and lead:
                    names[-1] = _("the lead ({user}), {others}", user=mention(lead), others=names[-1])
            elif kind is AP:
                names.append(self._approver_names(incident))
            elif kind is Who.DEADLINE_OWNER:
                names.append(_("the person the deadline reminds"))
            elif kind is Who.PAGED:
                names.append(_("the people paged"))
            elif kind is Who.ROLE_HOLDER:
                if holder is not None and holder == lead:
                    continue  # already named as the lead
                names.append(
                    _("the role's holder ({user})", user=mention(holder)) if holder else _("the role's holder")
                )
            elif kind is P:
                where = f"<#{incident.channel_id}>" if incident.channel_id else _("its channel")
                names.append(_("participants ({channel}'s members, the reporter and role owners)", channel=where))
            elif kind is AD:
                names.append(_("a playbook admin"))
        who = names[0] if len(names) == 1 else _("{some} or {last}", some=", ".join(names[:-1]), last=names[-1])
        said = _("Only {who} can {verb} #{number}.", who=who, verb=_(rule.verb), number=incident.id)
        hint = self._hint(action, incident)
        return f"{said} {hint}" if hint else said

    def _hint(self, action: Action, incident: Incident) -> str:
        if POLICY[action].read_only and incident.channel_id:
            return _("Ask to be invited to <#{channel}>.", channel=incident.channel_id)
        if Who.ROLE_OWNER in POLICY[action].allowed:
            return _("Ask one of them, or take an open role with `/incident assign <role> me`.")
        if Who.PARTICIPANT in POLICY[action].allowed and incident.channel_id:
            return _("Join <#{channel}> to take part.", channel=incident.channel_id)
        return ""

    def approver_names(self, incident: Incident) -> str:
        """The approving roles this incident has (all of them if it has none), with their owners."""
        with language(self.playbook):
            return self._approver_names(incident)

    def _approver_names(self, incident: Incident) -> str:
        present = {a.role for a in incident.roles}
        roles = [r for r in self.playbook.approval_roles if r in present] or list(self.playbook.approval_roles)
        names = []
        for role in roles:
            owner = next((a.user_id for a in incident.roles if a.role == role and a.user_id), None)
            label = safe_text(self.playbook.role_name(role))
            names.append(
                _("{role} ({user})", role=label, user=mention(owner)) if owner else _("{role} (nobody yet)", role=label)
            )
        return _(" or ").join(names) or _("an approver")

    def role_pool(self, role: str) -> list[str]:
        """The people the playbook names for a role: its default owners, or its user group's members."""
        spec = self.playbook.roles[role]
        if spec.default_owners:
            return list(spec.default_owners)
        if spec.usergroup:
            try:
                return self.slack.usergroup_members(spec.usergroup)
            except SlackCallError as exc:
                log.warning("could not read user group %s for role %s: %s", spec.usergroup, role, exc.error)
        return []


def mention(user: str | None) -> str:
    return f"<@{user}>"
