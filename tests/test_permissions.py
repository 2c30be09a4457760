"""The permission matrix, generated from the policy table (bot/incidents/permissions.py) and the command registry
(bot/slack/registry.py): every surface of every action (each registered slash command, buttons, modal submissions)
× every kind of person, through signed requests.

Allowed → the effect happens. Refused → the person is told, privately, who can; nothing in the store changes
and nothing is posted to any channel.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.incidents.permissions import POLICY, Action, Who
from bot.incidents.service import IncidentCreate
from bot.intake.service import parse_complaint
from bot.sandbox.driver import Reply
from bot.slack.commands import UserRef
from bot.slack.ids import INPUT_ACTION, ActionId, BlockId, CallbackId
from bot.slack.registry import REGISTRY, Spec
from store.models import (
    Base,
    Deadline,
    Escalation,
    Incident,
    Notice,
    RoleAssignment,
    SatisfactionRating,
    SurgeProposal,
    TimelineEvent,
)
from store.queries import claim_proposal
from store.surge_runs import claim_surge_run
from tests.conftest import ADMIN, COMMS, LEAD, LEGAL, OUTSIDER, REPORTER, TECH, Stack

TITLE = "客户卡号6222021234567890123被重复扣款，电话13812345678"

# Each kind of person, as a distinct member of the workspace, and what the policy counts them as.
PERSONAS: dict[str, tuple[str, frozenset[Who]]] = {
    "outsider": (OUTSIDER, frozenset({Who.ANYONE})),
    "participant": (COMMS, frozenset({Who.ANYONE, Who.PARTICIPANT})),  # joined the channel, holds no role
    "role owner": (TECH, frozenset({Who.ANYONE, Who.PARTICIPANT, Who.ROLE_OWNER})),
    "lead": (LEAD, frozenset({Who.ANYONE, Who.PARTICIPANT, Who.ROLE_OWNER, Who.LEAD})),
    "approver": (LEGAL, frozenset({Who.ANYONE, Who.PARTICIPANT, Who.ROLE_OWNER, Who.APPROVER})),
    "admin": (ADMIN, frozenset({Who.ANYONE, Who.ADMIN})),
}


@dataclass
class Case:
    """One SEV2 complaint set up for one request: lead LEAD, tech TECH, legal LEGAL (given by the lead), COMMS
    in the channel without a role, the lead paged."""

    stack: Stack
    number: int
    channel: str
    card_ts: str
    general: str
    notice_id: int = 0
    before_incidents: int = 0
    tables_before: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    views: set[str] = field(default_factory=set)
    ephemerals_before: int = 0  # replies before the request under test, which are not its answer
    complaint: int = 0  # a recorded complaint's number (`recorded_complaint`)
    surge: int = 0  # a running surge plan's incident, or a waiting surge proposal (`surge_running`, `surge_waiting`)

    def incident(self) -> Incident:
        with self.stack.bot.services.db() as s:
            row = s.get(Incident, self.number)
            assert row is not None
            s.expunge(row)
            return row

    def scalar(self, statement: Any) -> Any:
        with self.stack.bot.services.db() as s:
            return s.scalar(statement)

    def deadline(self, key: str) -> Deadline:
        with self.stack.bot.services.db() as s:
            row = s.scalar(select(Deadline).where(Deadline.incident_id == self.number, Deadline.key == key))
            assert row is not None
            return row

    def chain(self) -> Escalation:
        with self.stack.bot.services.db() as s:
            row = s.scalar(select(Escalation).where(Escalation.incident_id == self.number))
            assert row is not None
            return row

    def notice(self) -> Notice:
        with self.stack.bot.services.db() as s:
            row = s.get(Notice, self.notice_id)
            assert row is not None
            return row


def open_case(stack: Stack) -> Case:
    services = stack.bot.services
    general = stack.sandbox.channel_by_name("general")
    assert general is not None
    incident = services.incidents.open_incident(
        IncidentCreate(kind="complaint", title=TITLE, severity="sev2"), reporter=REPORTER, origin_channel=general.id
    )
    services.incidents.setup_channel(incident.id)
    channel = stack.incident_channel(incident.id).id
    services.incidents.assign_role(channel_id=channel, role="legal_compliance", user=UserRef(LEGAL), actor=LEAD)
    stack.join(channel, COMMS)
    stack.bot.sweeper.sweep()  # the SEV2 page reaches the lead
    card = stack.sandbox.channel_messages(channel)[0]
    case = Case(stack, incident.id, channel, card.ts, general.id)
    case.before_incidents = int(case.scalar(select(func.count()).select_from(Incident)) or 0)
    return case


# ---- preparations beyond the base case ------------------------------------------------------------------


def resolved(case: Case) -> None:
    case.stack.bot.services.incidents.resolve(channel_id=case.channel, summary="已退款", actor=LEAD)


def reviewed(case: Case) -> None:
    resolved(case)
    case.stack.bot.services.review.complete_review(channel_id=case.channel, actor=LEAD)


def paused(case: Case) -> None:
    case.stack.bot.services.incidents.pause(channel_id=case.channel, reason="等待客户提供流水", actor=LEAD)


def drafted(case: Case) -> None:
    notices = case.stack.bot.services.notices
    notices.draft(channel_id=case.channel, stage="initial", actor=LEAD, channels=["hotline"], locales=["en"])
    case.notice_id = int(case.scalar(select(func.max(Notice.id))))


def approved(case: Case) -> None:
    drafted(case)
    case.stack.bot.services.notices.approve(notice_id=case.notice_id, actor=LEGAL)


def editor_open(case: Case) -> None:
    """The lead opened the edit modal; the submission below comes from the person under test."""
    drafted(case)
    before = set(case.stack.sandbox.views)
    case.stack.driver.click(LEAD, case.channel, case.card_ts, ActionId.EDIT_NOTICE, str(case.notice_id))
    case.views = set(case.stack.sandbox.views) - before
    assert len(case.views) == 1


def recorded_complaint(case: Case) -> None:
    """A complaint from the complaint system that no rule turned into an incident."""
    body = {
        "external_id": f"CMS-{uuid.uuid4().hex[:12]}",
        "received_at": "2026-11-24T10:00:00+08:00",
        "contact_channel": "phone",
        "category": "其他",
        "product": "借记卡",
        "summary": "客户反映转账延迟",
        "customer_ref": "卡号6222021234567890123",
    }
    recorded = case.stack.bot.services.intake.record(parse_complaint(body))
    assert recorded.routed.route == "recorded"
    case.complaint = recorded.number


def report_modal_open(case: Case) -> None:
    before = set(case.stack.sandbox.views)
    case.stack.driver.slash(REPORTER, case.general, "open")
    case.views = set(case.stack.sandbox.views) - before
    assert len(case.views) == 1


# ---- the surfaces ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Surface:
    action: Action
    name: str  # one of the rule's surfaces
    act: Callable[[Case, str], Reply]
    effect: Callable[[Case, str, Reply], bool]
    prepare: Callable[[Case], None] = lambda case: None
    # what the thing acted on admits some personas as (the deadline's owner, a role's holder)
    situational: dict[str, Who] = field(default_factory=dict)
    modal: bool = False


def surge_running(case: Case) -> None:
    """A surge plan running (its incident opened and started, as Activate leaves it)."""
    case.stack.open("surge sev2 投诉量超过预警线", user=LEAD)
    with case.stack.bot.services.db.begin() as s:
        case.surge = int(s.scalar(select(func.max(Incident.id))))
        claim_surge_run(s, case.surge, case.stack.clock.now())


def surge_waiting(case: Case) -> None:
    """A surge proposal waiting for the leadership group's decision."""
    with case.stack.bot.services.db.begin() as s:
        proposal = claim_proposal(
            s,
            {
                "line": "100/600s",
                "line_count": 100,
                "line_window_seconds": 600,
                "crossed_at": case.stack.clock.now(),
                "count": 100,
                "state": "proposed",
            },
        )
        assert proposal is not None
        case.surge = proposal


def slash(text: str, *, where: str = "incident", command: str = "/incident") -> Callable[[Case, str], Reply]:
    def act(case: Case, user: str) -> Reply:
        channel = case.general if where == "general" else case.channel
        return case.stack.driver.slash(user, channel, text.format(n=case.number, c=case.complaint), command=command)

    return act


def click(action_id: str, value: Callable[[Case], str]) -> Callable[[Case, str], Reply]:
    def act(case: Case, user: str) -> Reply:
        return case.stack.driver.click(user, case.channel, case.card_ts, action_id, value(case))

    return act


def edit_submission(case: Case, user: str) -> Reply:
    (view_id,) = case.views
    values = {"notice:hotline:en": {INPUT_ACTION: {"type": "plain_text_input", "value": "新的公告文本"}}}
    return case.stack.driver.submit_view(user, view_id, values)


def report_submission(case: Case, user: str) -> Reply:
    (view_id,) = case.views
    values = {
        BlockId.KIND: {INPUT_ACTION: {"type": "static_select", "selected_option": {"value": "complaint"}}},
        BlockId.TITLE: {INPUT_ACTION: {"type": "plain_text_input", "value": "客户投诉：转账延迟"}},
    }
    return case.stack.driver.submit_view(user, view_id, values)


def last_ephemeral(case: Case, user: str) -> str:
    """The last private reply `user` got since the request under test was sent (not one to an earlier case)."""
    with case.stack.sandbox.lock:
        shown = [e for e in case.stack.sandbox.ephemerals[case.ephemerals_before :] if e.user == user]
    return shown[-1].text if shown else ""


def opened_one_more(case: Case, user: str, reply: Reply) -> bool:
    count = int(case.scalar(select(func.count()).select_from(Incident)) or 0)
    return count == case.before_incidents + 1


def holder(case: Case, role: str) -> str | None:
    return case.scalar(
        select(RoleAssignment.user_id).where(RoleAssignment.incident_id == case.number, RoleAssignment.role == role)
    )


Effect = Callable[[Case, str, Reply], bool]


def nothing(case: Case) -> None:
    """No preparation beyond the base case."""


@dataclass(frozen=True)
class Typed:
    """What the matrix types for one slash-command surface, what it prepares first, and the effect it checks."""

    text: str
    effect: Effect
    prepare: Callable[[Case], None] = nothing
    where: str = "incident"
    situational: dict[str, Who] = field(default_factory=dict)


def answered_or_changed(read_only: bool) -> Effect:
    """The effect checked for a registered command without its own entry below: not refused, and the user was
    answered (read-only) or the store changed."""

    def effect(case: Case, user: str, reply: Reply) -> bool:
        told = last_ephemeral(case, user) or reply.text
        if told.startswith("Only "):
            return False
        return bool(told) if read_only else snapshot(case.stack) != case.tables_before

    return effect


# The tailored checks for each slash-command surface (keyed by the policy's surface names). Every registered
# command is in the matrix whether or not it is here: one missing gets its registry example and the check above.
SLASH: dict[str, Typed] = {
    "/incident open": Typed("open complaint sev3 客户投诉：转账延迟", opened_one_more, where="general"),
    "/complaint": Typed("sev3 转账延迟", opened_one_more, where="general"),
    "/incident escalate": Typed("escalate {c}", opened_one_more, recorded_complaint, where="general"),
    "/incident help": Typed("help", lambda c, u, r: "`/incident open" in r.text, where="general"),
    "/incident list": Typed(
        "list",
        lambda c, u, r: r.text.startswith("*Open incidents* (") and f"*#{c.number}*" in r.text,
        where="general",
    ),
    "/incident report": Typed(
        "report", lambda c, u, r: last_ephemeral(c, u).startswith("*Incident KPIs, "), where="general"
    ),
    "/incident status": Typed(
        "status {n}",
        lambda c, u, r: r.json.get("blocks", [{}])[0].get("text", {}).get("text", "").startswith(f"#{c.number} "),
        where="general",
    ),
    "/incident timeline": Typed(
        "timeline {n}", lambda c, u, r: r.text.startswith(f"*Timeline of #{c.number}*"), where="general"
    ),
    "/incident deadlines": Typed(
        "deadlines {n}", lambda c, u, r: r.text.startswith(f"*Deadlines of #{c.number}*"), where="general"
    ),
    "/incident assign <open role>": Typed("assign comms me", lambda c, u, r: holder(c, "customer_comms") == u),
    "/incident assign <held role>": Typed(
        f"assign tech <@{REPORTER}>",
        lambda c, u, r: holder(c, "tech_support") == REPORTER,
        situational={"role owner": Who.ROLE_HOLDER},
    ),
    "/incident assign <approving role>": Typed(
        f"assign legal <@{REPORTER}>", lambda c, u, r: holder(c, "legal_compliance") == REPORTER
    ),
    "/incident sev": Typed("sev 1", lambda c, u, r: c.incident().severity == "sev1"),
    "/incident update": Typed(
        "update 网关已重启，观察错误率",
        lambda c, u, r: (
            c.scalar(select(func.count()).where(TimelineEvent.incident_id == c.number, TimelineEvent.event == "update"))
            == 1
        ),
    ),
    "/incident solution": Typed(
        "solution 已为客户全额退款并致电说明",
        lambda c, u, r: (
            c.scalar(
                select(func.count()).where(
                    TimelineEvent.incident_id == c.number, TimelineEvent.event == "solution_communicated"
                )
            )
            == 1
        ),
    ),
    "/incident resolve": Typed("resolve 已退款", lambda c, u, r: c.incident().status == "resolved"),
    "/incident close": Typed("close", lambda c, u, r: c.incident().status == "closed", reviewed),
    "/incident pause": Typed("pause 等待客户提供流水", lambda c, u, r: c.incident().paused_at is not None),
    "/incident resume": Typed("resume", lambda c, u, r: c.incident().paused_at is None, paused),
    "/incident repair": Typed("repair", lambda c, u, r: f"#{c.number} is fully set up" in last_ephemeral(c, u)),
    "/incident done": Typed(
        "done investigation",
        lambda c, u, r: c.deadline("investigation").state == "met",
        situational={"role owner": Who.DEADLINE_OWNER},
    ),
    "/incident ack": Typed("ack", lambda c, u, r: c.chain().state == "acknowledged"),
    "/incident notice": Typed(
        "notice initial hotline en",
        lambda c, u, r: c.scalar(select(Notice.created_by).where(Notice.incident_id == c.number)) == u,
    ),
    "/incident satisfaction": Typed(
        "satisfaction 4 客户满意", lambda c, u, r: c.incident().satisfaction_score == 4, resolved
    ),
    "/incident action": Typed(
        f"action 增加清算重试告警 <@{TECH}> 5d", lambda c, u, r: c.deadline("action-1").owner_user == TECH
    ),
    "/incident review post": Typed("review post", lambda c, u, r: c.incident().review_posted_at is not None, resolved),
    "/incident review export": Typed(
        "review export",
        lambda c, u, r: any(f.filename == f"incident-{c.number}-review.md" for f in c.stack.sandbox.files.values()),
        resolved,
    ),
    "/incident review done": Typed("review done", lambda c, u, r: c.incident().review_completed_by == u, resolved),
    "/incident surge end": Typed(
        "surge end",
        lambda c, u, r: c.scalar(select(Incident.status).where(Incident.id == c.surge)) == "resolved",
        surge_running,
        where="general",
    ),
    "/incident surge dismiss": Typed(
        "surge dismiss 投诉来自单一商户",
        lambda c, u, r: (
            c.scalar(
                select(SurgeProposal.decided_by).where(SurgeProposal.id == c.surge, SurgeProposal.state == "dismissed")
            )
            == u
        ),
        surge_waiting,
        where="general",
    ),
}


def policy_surface(spec: Spec, action: Action) -> str:
    """The policy's name for typing `spec` when it takes `action` (`/incident assign <held role>`)."""
    typed = f"/incident {spec.name}"
    return next((s for s in POLICY[action].surfaces if s == typed or s.startswith(typed + " ")), typed)


def slash_surfaces() -> list[Surface]:
    """Every registered command, once for each action it can take, and its first shortcut (the others are the
    same path)."""
    surfaces = []
    for spec in REGISTRY:
        default = Typed(spec.example or spec.name, answered_or_changed(spec.read_only))
        for action in spec.actions:
            name = policy_surface(spec, action)
            typed = SLASH.get(name, default)
            surfaces.append(
                Surface(
                    action, name, slash(typed.text, where=typed.where), typed.effect, typed.prepare, typed.situational
                )
            )
        for shortcut in spec.shortcuts[:1]:
            typed = SLASH.get(shortcut, default)
            act = slash(typed.text, where=typed.where, command=shortcut)
            surfaces.append(Surface(spec.actions[0], shortcut, act, typed.effect, typed.prepare, typed.situational))
    return surfaces


SURFACES = [
    *slash_surfaces(),
    Surface(Action.OPEN, "modal: report", report_submission, opened_one_more, report_modal_open, modal=True),
    Surface(
        Action.TAKE_OPEN_ROLE,
        "button: Take <role>",
        click(f"{ActionId.TAKE_ROLE}:customer_comms", lambda c: f"{c.number}:customer_comms"),
        lambda c, u, r: holder(c, "customer_comms") == u,
    ),
    Surface(
        Action.ESCALATE,
        "button: Escalate",
        click(ActionId.ESCALATE_COMPLAINT, lambda c: str(c.complaint)),
        opened_one_more,
        recorded_complaint,
    ),
    Surface(
        Action.MARK_DONE,
        "button: Mark done",
        click(ActionId.MARK_DONE, lambda c: str(c.deadline("investigation").id)),
        lambda c, u, r: c.deadline("investigation").state == "met",
        situational={"role owner": Who.DEADLINE_OWNER},
    ),
    Surface(
        Action.SNOOZE,
        "button: Snooze",
        click(ActionId.SNOOZE, lambda c: str(c.deadline("investigation").id)),
        lambda c, u, r: c.deadline("investigation").snoozes == 1,
        situational={"role owner": Who.DEADLINE_OWNER},
    ),
    Surface(
        Action.ACK,
        "button: Acknowledge",
        click(ActionId.ACKNOWLEDGE, lambda c: str(c.chain().id)),
        lambda c, u, r: c.chain().state == "acknowledged",
    ),
    Surface(
        Action.EDIT_NOTICE,
        "button: Edit",
        click(ActionId.EDIT_NOTICE, lambda c: str(c.notice_id)),
        lambda c, u, r: any(
            v.get("callback_id") == CallbackId.EDIT_NOTICE
            and v.get("user") == u
            and v.get("private_metadata") == str(c.notice_id)
            for v in c.stack.sandbox.views.values()
        ),
        drafted,
    ),
    Surface(
        Action.EDIT_NOTICE,
        "modal: edit notice",
        edit_submission,
        lambda c, u, r: c.notice().texts["hotline"]["en"] == "新的公告文本",
        editor_open,
        modal=True,
    ),
    Surface(
        Action.APPROVE_NOTICE,
        "button: Approve",
        click(ActionId.APPROVE_NOTICE, lambda c: str(c.notice_id)),
        lambda c, u, r: c.notice().approved_by == u,
        drafted,
    ),
    Surface(
        Action.PUBLISH_NOTICE,
        "button: Publish",
        click(ActionId.PUBLISH_NOTICE, lambda c: str(c.notice_id)),
        lambda c, u, r: c.notice().published_by == u,
        approved,
    ),
    Surface(
        Action.SATISFACTION,
        "button: customer rating",
        click(f"{ActionId.RATE_CUSTOMER}:4", lambda c: f"{c.number}:4"),
        lambda c, u, r: c.incident().satisfaction_score == 4,
        resolved,
    ),
    Surface(
        Action.RATE_RESPONSE,
        "button: rate the response",
        click(f"{ActionId.RATE_RESPONSE}:5", lambda c: f"{c.number}:5"),
        lambda c, u, r: (
            c.scalar(
                select(SatisfactionRating.rater_id).where(
                    SatisfactionRating.incident_id == c.number, SatisfactionRating.source == "internal"
                )
            )
            == u
        ),
        resolved,
    ),
]

# Who the refusal must name, for each kind of person the rule allows.
NAMED = {
    Who.LEAD: f"the lead (<@{LEAD}>)",
    Who.ROLE_OWNER: "role owners (",
    Who.APPROVER: f"Legal &amp; compliance (<@{LEGAL}>)",
    Who.PARTICIPANT: "participants (",
    Who.ADMIN: "a playbook admin",
    Who.DEADLINE_OWNER: "the person the deadline reminds",
    Who.PAGED: "the people paged",
    Who.ROLE_HOLDER: f"the role's holder (<@{TECH}>)",
    Who.LEADERSHIP: "the leadership group (",
}


def test_every_surface_of_the_policy_is_covered() -> None:
    covered = {(s.action, s.name) for s in SURFACES}
    declared = {(action, surface) for action, rule in POLICY.items() for surface in rule.surfaces}
    # /outage is the same path as /complaint
    assert declared - covered == {(Action.OPEN, "/outage")}
    assert covered <= declared


def test_every_registered_command_is_in_the_matrix_under_a_surface_of_the_policy() -> None:
    covered = {(s.action, s.name) for s in SURFACES}
    declared = {(action, surface) for action, rule in POLICY.items() for surface in rule.surfaces}
    for spec in REGISTRY:
        for action in spec.actions:
            surface = policy_surface(spec, action)
            assert (action, surface) in declared, f"{spec.name}: the policy has no surface for {action} on {surface}"
            assert (action, surface) in covered, spec.name
    assert set(SLASH) <= {s.name for s in SURFACES}, "an entry of SLASH names no registered command"


def test_what_a_command_declares_agrees_with_the_policy() -> None:
    for spec in REGISTRY:
        assert spec.read_only == all(POLICY[action].read_only for action in spec.actions), spec.name
        assert spec.actions, spec.name


def snapshot(stack: Stack) -> dict[str, list[tuple[Any, ...]]]:
    """Every table but the replay guard's (which records each verified request, refused or not)."""
    with stack.engine.connect() as conn:
        return {
            t.name: sorted(map(tuple, conn.execute(select(t)).all()), key=repr)
            for t in Base.metadata.sorted_tables
            if t.name != "seen_requests"
        }


def refusal(case: Case, user: str, reply: Reply, modal: bool) -> str:
    if modal:
        return " ".join(str(v) for v in reply.json.get("errors", {}).values())
    return last_ephemeral(case, user)


@pytest.mark.parametrize("surface", SURFACES, ids=[s.name for s in SURFACES])
def test_the_permission_matrix(stack: Stack, surface: Surface) -> None:
    rule = POLICY[surface.action]
    problems = []

    def allowed_as(persona: str) -> bool:
        kinds = PERSONAS[persona][1]
        also = {surface.situational[persona]} if persona in surface.situational else set()
        return bool((kinds | also) & rule.allowed)

    # Refused people first, all on one case: each refusal is checked to change nothing in the store and post
    # nothing, so the case is as prepared for the next one. Each allowed person then gets a case as prepared
    # (the first takes the refusals' case, untouched as shown).
    untouched: Case | None = None
    for persona in sorted(PERSONAS, key=allowed_as):
        user = PERSONAS[persona][0]
        allowed = allowed_as(persona)
        if untouched is None:
            case = untouched = open_case(stack)
            surface.prepare(case)
        else:
            case = untouched
        if allowed:
            untouched = None  # the effect changes it
        before, posted = snapshot(stack), len(stack.sandbox.messages)
        case.tables_before = before
        case.ephemerals_before = len(stack.sandbox.ephemerals)
        reply = surface.act(case, user)
        assert reply.status == 200, reply.body
        if allowed:
            if not surface.effect(case, user, reply):
                problems.append(f"{persona}: allowed, but no effect ({refusal(case, user, reply, surface.modal)!r})")
            continue
        told = refusal(case, user, reply, surface.modal)
        missing = [NAMED[k] for k in rule.allowed if k in NAMED and NAMED[k] not in told]
        if not told.startswith("Only ") or missing:
            problems.append(f"{persona}: refusal {told!r} does not name {missing}")
        if snapshot(stack) != before:
            problems.append(f"{persona}: refused, but the store changed")
        if len(stack.sandbox.messages) != posted:
            problems.append(f"{persona}: refused, but something was posted")
    assert not problems, "\n".join(problems)
