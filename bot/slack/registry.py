"""Every `/incident` subcommand, declared once: its name, typed arguments, permission, whether it changes
anything, the service method it calls and its help line.

The parser (bot/slack/commands.py), the dispatch (handlers/commands.py), `/incident help` (below) and the
permission-matrix test (tests/test_permissions.py) are all generated from REGISTRY, so a command added here
is parsed, dispatched, listed and tested without another edit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from bot.core.config import NOTICE_STAGES, Playbook
from bot.core.errors import UserInputError
from bot.core.i18n import N_, _, current_locale
from bot.core.text import escape_mrkdwn, mask_identifiers
from bot.drills.service import parse_speed, scenario_list
from bot.incidents.permissions import Action
from bot.incidents.service import IncidentCreate
from bot.review.service import Due, parse_due
from bot.services import Services
from bot.slack.blocks import report_modal
from bot.slack.commands import (
    ACTION_TEXT_MAX,
    NUMBER_USAGE,
    SATISFACTION_USAGE,
    SEV_TOKEN_RE,
    TEXT_MAX,
    Arg,
    Command,
    Context,
    NoticeTargets,
    Place,
    Syntax,
    UserRef,
    free_text,
    incident_number,
    parse_category,
    parse_day,
    parse_deadline_word,
    parse_kind,
    parse_notice_targets,
    parse_role,
    parse_score,
    parse_severity,
    parse_stage,
    parse_title,
    parse_user_ref,
    split_glued_mention,
)
from bot.slack.commands import _q as quote


@dataclass(frozen=True)
class Request:
    """Who typed the command, where, and what (the timeline records it as typed)."""

    actor: str
    channel: str
    said: str
    trigger_id: str = ""  # lets the command open a form
    response_url: str = ""  # lets a long command tell the user more than once (open: card up, then the plan)


@dataclass(frozen=True)
class Answer:
    """What the user is told privately: text, and blocks when the answer is a card."""

    text: str
    blocks: list[dict[str, Any]] | None = None


Run = Callable[[Services, Command, Request], Answer | str | None]


@dataclass(frozen=True, kw_only=True)
class Spec(Syntax):
    """A subcommand: how it is typed (Syntax) and what it does."""

    actions: tuple[Action, ...]  # the policy's actions it takes (which applies can depend on the incident)
    read_only: bool  # changes nothing
    run: Run  # the service call: (services, parsed command, request) → the private answer, if any
    help: str  # N_: the help line after the usage, formatted with the playbook's lists (see help_params)
    group: str  # N_: the help section it is listed under
    example: str = ""  # what follows `/incident`, shown in help (N_ when it has words to translate)
    slow: bool = False  # read-only but may take longer than Slack waits for an ack: answered after it
    acknowledge: str = ""  # N_: said in the ack, formatted with the arguments' values
    in_incident_channel: bool = True  # acts on the incident of the channel it is typed in

    @property
    def answers_in_ack(self) -> bool:
        return self.read_only and not self.slow


# ---- help sections -------------------------------------------------------------------------------------------

RUN_IT = N_("Run an incident")
LOOK = N_("Look things up (only you see the answer)")
CLOCKS = N_("Deadlines and pages")
CUSTOMER = N_("The customer")
AFTER = N_("After the incident")
GROUPS = (RUN_IT, CLOCKS, CUSTOMER, AFTER, LOOK)

# ---- arguments ------------------------------------------------------------------------------------------------

KIND = Arg[str](key="kind", usage=N_("<kind>"), parse=parse_kind)
SEVERITY_OPTION = Arg[str | None](
    key="severity",
    usage="[sev1-4]",
    parse=lambda word, c: parse_severity(word, c.playbook),
    required=False,
    fits=lambda word: bool(SEV_TOKEN_RE.match(word)),
)
CATEGORY = Arg[str | None](
    key="category",
    usage=N_("[cat:<category>]"),
    parse=parse_category,
    required=False,
    fits=lambda word: word.lower().startswith(("cat:", "category:")),
)
TITLE = Arg[str](key="title", usage=N_("<title>"), parse=parse_title, place=Place.REST, required=False)
SEVERITY = Arg[str](key="severity", usage="<1-4>", parse=lambda word, c: parse_severity(word, c.playbook))
ROLE = Arg[str](key="role", usage=N_("<role>"), parse=parse_role, place=Place.REST)
PERSON = Arg[UserRef](
    key="user", usage=N_("<@user|me>"), parse=parse_user_ref, place=Place.BACK, glued=split_glued_mention
)


def _text(missing: str, usage: str = N_("<text>")) -> Arg[str]:
    return Arg[str](key="text", usage=usage, parse=free_text(missing), place=Place.REST, required=False, raw=True)


SURGE_WHY = _text(N_("Say why the surge plan is not activated: `/incident surge dismiss <why>`."), N_("<why>"))
UPDATE_TEXT = _text(N_("Say what to update: `/incident update Gateway restarted, watching error rates`."))
RESOLVE_SUMMARY = _text(N_("Say what to resolve: `/incident resolve Rolled back the 10:05 release`."), N_("<summary>"))
PAUSE_REASON = _text(
    N_("Say what to pause: `/incident pause Waiting for the customer's bank statement`."), N_("<reason>")
)
SOLUTION = _text(N_("Say what solution the customer was given: `/incident solution Refunded the double debit`."))
DEADLINE = Arg[str](
    key="text", usage=N_("<deadline>"), parse=parse_deadline_word, place=Place.REST, required=False, raw=True
)


def _number(name: str) -> Arg[int | None]:
    return Arg[int | None](key="number", usage=N_("[number]"), parse=incident_number(name), required=False)


STAGE = Arg[str](key="stage", usage="<" + "|".join(NOTICE_STAGES) + ">", parse=parse_stage)  # the stage words
TARGETS = Arg[NoticeTargets](
    key="targets",
    usage=N_("[channels] [locales]"),
    parse=parse_notice_targets,
    place=Place.REST,
    required=False,
)
SCORE = Arg[int](key="number", usage="<1-5>", parse=parse_score)
COMMENT = Arg[str](
    key="text", usage=N_("[comment]"), parse=lambda text, c: text[:TEXT_MAX], place=Place.REST, required=False
)


def _action_text(text: str, _context: Context) -> str:
    if len(text) > ACTION_TEXT_MAX:
        raise UserInputError(
            _(
                "Keep an action item under {limit} characters (it is {length}). {example}",
                limit=ACTION_TEXT_MAX,
                length=len(text),
                example=_(ACTION_EXAMPLE),
            )
        )
    return text


def _due(word: str, _context: Context) -> Due:
    return parse_due(word)


ACTION_EXAMPLE = N_("Example: `/incident action Add an alert on clearing retries @zhang.tao 5d`.")
ACTION_TEXT = Arg[str](key="text", usage=N_("<text>"), parse=_action_text, place=Place.REST)
OWNER = Arg[UserRef](key="user", usage=N_("@owner"), parse=parse_user_ref, place=Place.BACK, glued=split_glued_mention)
DUE = Arg[Due](key="due", usage=N_("<due>"), parse=_due, place=Place.BACK)
REVIEW_VERBS = ("post", "export", "done")
REVIEW_USAGE = N_(
    "`/incident review post` posts the draft now, `/incident review export` shares it as a Markdown file, "
    "`/incident review done` (the lead) marks the review complete."
)


def _review_verb(word: str, _context: Context) -> str:
    verb = word.lower()
    if verb not in REVIEW_VERBS:
        raise UserInputError(_(REVIEW_USAGE))
    return verb


VERB = Arg[str](key="verb", usage="post|export|done", parse=_review_verb)
FROM = Arg[date | None](key="from", usage=N_("[from]"), parse=parse_day, required=False)
TO = Arg[date | None](key="to", usage=N_("[to]"), parse=parse_day, required=False)


# ---- what each command does -------------------------------------------------------------------------------


def _open(services: Services, command: Command, request: Request) -> str | None:
    incidents = services.incidents
    incident = incidents.open_incident(
        IncidentCreate(
            kind=command.get(KIND),
            title=command.get(TITLE),
            severity=command.get(SEVERITY_OPTION),
            category=command.get(CATEGORY),
        ),
        reporter=request.actor,
        origin_channel=request.channel,
    )
    url = request.response_url  # told as soon as the channel is ready, while the plan goes out
    if not url:
        return incidents.opened_message(incidents.setup_channel(incident.id))
    incidents.setup_channel(incident.id, tell=lambda text: services.slack.respond(url, text))
    return None


def _open_form(services: Services, command: Command, request: Request) -> None:
    services.slack.open_view(request.trigger_id, report_modal(services.playbook, origin_channel=request.channel))


def _status(services: Services, command: Command, request: Request) -> Answer:
    text, blocks = services.incidents.status_blocks(
        channel_id=request.channel, number=command.get(STATUS_NUMBER), actor=request.actor
    )
    return Answer(text, blocks)


def _notice(services: Services, command: Command, request: Request) -> str | None:
    targets = command.get(TARGETS)
    return services.notices.draft(
        channel_id=request.channel,
        stage=command.get(STAGE),
        actor=request.actor,
        channels=targets.channels,
        locales=targets.locales,
    )


def _review(services: Services, command: Command, request: Request) -> str | None:
    review = services.review
    run = {"post": review.post_review_now, "export": review.export_review, "done": review.complete_review}
    return run[command.get(VERB)](channel_id=request.channel, actor=request.actor)


def _report(services: Services, command: Command, request: Request) -> str:
    return services.reports.kpi_text(tuple(day for day in (command.get(FROM), command.get(TO)) if day is not None))


# ---- complaints from the complaint system (bot/intake): the list and escalation by a person ----------------


def _complaint_number(word: str, _context: Context) -> int:
    text = word.strip().lstrip("#")
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 2**31:
        raise UserInputError(
            _("Give a complaint number, e.g. `/incident escalate 12` (`/incident complaints` lists them).")
        )
    return int(text)


COMPLAINT_FILTER = Arg[str](
    key="text", usage=N_("[filter]"), parse=lambda text, c: text, place=Place.REST, required=False, raw=True
)
COMPLAINT_NUMBER = Arg[int](key="number", usage=N_("<complaint number>"), parse=_complaint_number)


def _complaints(services: Services, command: Command, request: Request) -> Answer:
    text, blocks = services.complaints.answer(command.get(COMPLAINT_FILTER) or "")
    return Answer(text, blocks)


def _escalate(services: Services, command: Command, request: Request) -> str | None:
    url = request.response_url  # told as soon as the channel is ready, as for `open`
    return services.routing.escalate_and_set_up(
        command.get(COMPLAINT_NUMBER),
        actor=request.actor,
        severity=command.get(SEVERITY_OPTION),
        tell=(lambda text: services.slack.respond(url, text)) if url else None,
    )


COMPLAINT_SPECS: tuple[Spec, ...] = (
    Spec(
        name="escalate",
        aliases=("升级",),
        args=(COMPLAINT_NUMBER, SEVERITY_OPTION),
        wrong=N_("Say which complaint: `/incident escalate 12 [sev2]` (`/incident complaints` lists them)."),
        actions=(Action.ESCALATE,),
        read_only=False,
        run=_escalate,
        acknowledge=N_("Escalating complaint #{number} to an incident…"),
        help=N_("open an incident for a recorded complaint; you report it (and lead it if nobody leads by default)."),
        example="escalate 12 sev2",
        group=RUN_IT,
        in_incident_channel=False,
    ),
    Spec(
        name="complaints",
        aliases=("投诉列表",),
        args=(COMPLAINT_FILTER,),
        actions=(Action.COMPLAINTS,),
        read_only=True,
        run=_complaints,
        help=N_(
            "recent complaints from the complaint system, with an Escalate button on each without an incident. "
            "Filters: `open`, `high`, `today`, `category:<category>`, `channel:<channel>`, a number."
        ),
        example="complaints open category:financial",
        group=LOOK,
        in_incident_channel=False,
    ),
)


# ---- drills (issue 13): `/incident drill <scenario> [speed]`, `/incident drill stop` ---------------------------

DRILL_STOP = ("stop", "停止", "结束")


def _drill_scenario(word: str, context: Context) -> str:
    """A scenario of the playbook, or `stop`; anything else is told the scenarios there are."""
    key = word.strip().lower()
    if key in DRILL_STOP:
        return "stop"
    if key not in context.playbook.drills.scenarios:
        raise UserInputError(scenario_list(context.playbook, unknown=word))
    return key


DRILL_SCENARIO = Arg[str](key="scenario", usage=N_("<scenario|stop>"), parse=_drill_scenario)
DRILL_SPEED = Arg[float | None](key="speed", usage=N_("[speed]"), parse=lambda w, c: parse_speed(w), required=False)


def _drill(services: Services, command: Command, request: Request) -> str | None:
    scenario, speed = command.get(DRILL_SCENARIO), command.get(DRILL_SPEED)
    if scenario == "stop":
        return services.drills.stop(channel_id=request.channel, actor=request.actor, command=request.said)
    url = request.response_url  # told as soon as the drill's channel is ready
    tell = (lambda text: services.slack.respond(url, text)) if url else None
    return services.drills.start(
        scenario=scenario, speed=speed, actor=request.actor, origin_channel=request.channel, tell=tell
    )


DRILL = Spec(
    name="drill",
    aliases=("演练",),
    args=(DRILL_SCENARIO, DRILL_SPEED),
    wrong=N_(
        "Say which scenario and, if you like, how fast: `/incident drill payment-outage 60` (60: an hour of the "
        "plan a minute); `/incident drill stop` in the drill's channel ends it."
    ),
    actions=(Action.OPEN,),
    read_only=False,
    run=_drill,
    help=N_(
        "rehearse the plan: a drill incident in a `drill-` channel, the scenario's cues on a clock `speed` times "
        "faster (default {drill_speed}), a scorecard at the end; nothing reaches customers or the KPIs. "
        "`/incident drill stop` ends it. Scenarios: {drill_scenarios}."
    ),
    example="drill payment-outage 60",
    group=RUN_IT,
    in_incident_channel=False,
)


STATUS_NUMBER, TIMELINE_NUMBER, DEADLINES_NUMBER, REPAIR_NUMBER = (
    _number(name) for name in ("status", "timeline", "deadlines", "repair")
)

OPEN_FORM = Spec(
    name="open_modal",
    actions=(Action.OPEN,),
    read_only=False,
    run=_open_form,
    help=N_("the same, in a form with a description and a customer reference"),
    group=RUN_IT,
    in_incident_channel=False,
)

REGISTRY: tuple[Spec, ...] = (
    Spec(
        name="open",
        args=(KIND, SEVERITY_OPTION, CATEGORY, TITLE),
        empty=OPEN_FORM,
        shortcuts=("/complaint", "/outage"),
        actions=(Action.OPEN,),
        read_only=False,
        run=_open,
        acknowledge=N_("Opening a new {kind} incident…"),
        help=N_("report an incident. Kinds: {kinds}."),
        example=N_("open complaint sev2 cat:technical Card payments failing"),
        group=RUN_IT,
        in_incident_channel=False,
    ),
    Spec(
        name="assign",
        args=(ROLE, PERSON),
        wrong=N_("Say which role and who: `/incident assign tech @alice` (or `me`)."),
        actions=(Action.TAKE_OPEN_ROLE, Action.REASSIGN_ROLE, Action.ASSIGN_APPROVER),
        read_only=False,
        run=lambda services, command, request: services.incidents.assign_role(
            channel_id=request.channel,
            role=command.get(ROLE),
            user=command.get(PERSON),
            actor=request.actor,
            command=request.said,
        ),
        help=N_("give someone a role; `me` takes it yourself. Roles: {roles}."),
        example="assign tech @alice",
        group=RUN_IT,
    ),
    Spec(
        name="sev",
        args=(SEVERITY,),
        wrong=N_("Give one severity: `/incident sev 2` (1 is the most severe)."),
        actions=(Action.SEV,),
        read_only=False,
        run=lambda services, command, request: services.incidents.change_severity(
            channel_id=request.channel, severity=command.get(SEVERITY), actor=request.actor, command=request.said
        ),
        help=N_("change the severity."),
        example="sev 2",
        group=RUN_IT,
    ),
    Spec(
        name="update",
        args=(UPDATE_TEXT,),
        actions=(Action.UPDATE,),
        read_only=False,
        run=lambda services, command, request: services.incidents.post_update(
            channel_id=request.channel, text=command.get(UPDATE_TEXT), actor=request.actor, command=request.said
        ),
        help=N_("post a progress update."),
        example=N_("update Gateway restarted, watching error rates"),
        group=RUN_IT,
    ),
    Spec(
        name="resolve",
        args=(RESOLVE_SUMMARY,),
        actions=(Action.RESOLVE,),
        read_only=False,
        run=lambda services, command, request: services.incidents.resolve(
            channel_id=request.channel, summary=command.get(RESOLVE_SUMMARY), actor=request.actor, command=request.said
        ),
        help=N_("mark it resolved."),
        example=N_("resolve Rolled back the 10:05 release"),
        group=RUN_IT,
    ),
    Spec(
        name="close",
        actions=(Action.CLOSE,),
        read_only=False,
        run=lambda services, command, request: services.incidents.close(
            channel_id=request.channel, actor=request.actor, command=request.said
        ),
        help=N_("close a resolved incident."),
        group=RUN_IT,
    ),
    Spec(
        name="pause",
        args=(PAUSE_REASON,),
        actions=(Action.PAUSE,),
        read_only=False,
        run=lambda services, command, request: services.incidents.pause(
            channel_id=request.channel, reason=command.get(PAUSE_REASON), actor=request.actor, command=request.said
        ),
        help=N_("stop the clocks while waiting on the customer; deadlines move out by the paused time."),
        example=N_("pause Waiting for the customer's bank statement"),
        group=RUN_IT,
    ),
    Spec(
        name="resume",
        actions=(Action.RESUME,),
        read_only=False,
        run=lambda services, command, request: services.incidents.resume(
            channel_id=request.channel, actor=request.actor, command=request.said
        ),
        help=N_("start the clocks again after a pause."),
        group=RUN_IT,
    ),
    Spec(
        name="repair",
        args=(REPAIR_NUMBER,),
        wrong=NUMBER_USAGE,
        actions=(Action.REPAIR,),
        read_only=False,
        run=lambda services, command, request: services.incidents.repair(
            channel_id=request.channel, number=command.get(REPAIR_NUMBER), actor=request.actor
        ),
        help=N_("finish an incident whose channel set-up failed half-way."),
        group=RUN_IT,
        in_incident_channel=False,
    ),
    Spec(
        name="done",
        args=(DEADLINE,),
        actions=(Action.MARK_DONE,),
        read_only=False,
        run=lambda services, command, request: services.deadline_actions.mark_done(
            actor=request.actor, channel_id=request.channel, word=command.get(DEADLINE)
        ),
        help=N_("mark a deadline met (a missed one is recorded as met late)."),
        example="done first_response",
        group=CLOCKS,
    ),
    Spec(
        name="ack",
        actions=(Action.ACK,),
        read_only=False,
        run=lambda services, command, request: services.deadline_actions.acknowledge(
            actor=request.actor, channel_id=request.channel
        ),
        help=N_("acknowledge the pages for this incident and stop the escalation."),
        group=CLOCKS,
    ),
    Spec(
        name="solution",
        args=(SOLUTION,),
        actions=(Action.SOLUTION,),
        read_only=False,
        run=lambda services, command, request: services.deadline_actions.record_solution(
            channel_id=request.channel, text=command.get(SOLUTION), actor=request.actor
        ),
        help=N_("record the solution given to the customer (meets the solution deadline)."),
        example=N_("solution Refunded the double debit and told the customer by SMS"),
        group=CUSTOMER,
    ),
    Spec(
        name="notice",
        args=(STAGE, TARGETS),
        wrong=N_(
            "Say which notice: `/incident notice <initial|update|resolved|diversion> [channels] [locales]`. "
            "Example: `/incident notice initial status_page email zh-CN`."
        ),
        actions=(Action.DRAFT_NOTICE,),
        read_only=False,
        run=_notice,
        help=N_(
            "draft the customer notice from the playbook's templates and preview it here with *Edit*, *Approve* "
            "and *Publish*. Channels: {notice_channels}; locales: {notice_locales}."
        ),
        example="notice initial status_page zh-CN",
        group=CUSTOMER,
    ),
    Spec(
        name="satisfaction",
        aliases=("csat",),
        args=(SCORE, COMMENT),
        wrong=SATISFACTION_USAGE,
        actions=(Action.SATISFACTION,),
        read_only=False,
        run=lambda services, command, request: services.review.record_customer(
            actor=request.actor,
            score=command.get(SCORE),
            comment=command.get(COMMENT) or "",
            channel_id=request.channel,
        ),
        help=N_(
            "record the customer's rating after the follow-up call (or click a rating on the message posted at "
            "resolve)."
        ),
        example=N_("satisfaction 4 Refund was quick, wanted an earlier call"),
        group=CUSTOMER,
    ),
    Spec(
        name="action",
        args=(ACTION_TEXT, OWNER, DUE),
        wrong=N_(
            "Say what, who and by when: `/incident action <text> @owner <due>`. "
            "Example: `/incident action Add an alert on clearing retries @zhang.tao 5d`."
        ),
        actions=(Action.ACTION_ITEM,),
        read_only=False,
        run=lambda services, command, request: services.review.add_action(
            channel_id=request.channel,
            text=command.get(ACTION_TEXT),
            owner=command.get(OWNER),
            due=command.get(DUE),
            actor=request.actor,
        ),
        help=N_(
            "an action item from the review, reminded and escalated like any deadline; due as `5d`, `12h` or "
            "`2026-12-01`."
        ),
        example=N_("action Add an alert on clearing retries @zhang.tao 5d"),
        group=AFTER,
    ),
    Spec(
        name="review",
        args=(VERB,),
        wrong=REVIEW_USAGE,
        actions=(Action.REVIEW_POST, Action.REVIEW_EXPORT, Action.REVIEW_DONE),
        read_only=False,
        run=_review,
        help=N_(
            "post the review draft now, share it as a Markdown file, or (the lead) mark the review complete so "
            "the incident can be closed."
        ),
        group=AFTER,
    ),
    DRILL,
    Spec(
        name="status",
        args=(STATUS_NUMBER,),
        wrong=NUMBER_USAGE,
        actions=(Action.STATUS,),
        read_only=True,
        run=_status,
        help=N_("the incident card."),
        group=LOOK,
        in_incident_channel=False,
    ),
    Spec(
        name="timeline",
        args=(TIMELINE_NUMBER,),
        wrong=NUMBER_USAGE,
        actions=(Action.TIMELINE,),
        read_only=True,
        run=lambda services, command, request: services.incidents.timeline_text(
            channel_id=request.channel, number=command.get(TIMELINE_NUMBER), actor=request.actor
        ),
        help=N_("everything recorded so far."),
        group=LOOK,
        in_incident_channel=False,
    ),
    Spec(
        name="deadlines",
        args=(DEADLINES_NUMBER,),
        wrong=NUMBER_USAGE,
        actions=(Action.DEADLINES,),
        read_only=True,
        run=lambda services, command, request: services.deadline_actions.deadlines_text(
            channel_id=request.channel, number=command.get(DEADLINES_NUMBER), actor=request.actor
        ),
        help=N_("every deadline with its owner, due time and time left."),
        group=LOOK,
        in_incident_channel=False,
    ),
    Spec(
        name="list",
        actions=(Action.LIST,),
        read_only=True,
        run=lambda services, command, request: services.incidents.list_text(),
        help=N_("open incidents."),
        group=LOOK,
        in_incident_channel=False,
    ),
    Spec(
        name="report",
        args=(FROM, TO),
        wrong=N_("`/incident report [from] [to]` takes at most two dates, e.g. `/incident report 2026-11-01`."),
        actions=(Action.REPORT,),
        read_only=True,
        slow=True,  # over a large store this can take longer than Slack waits for an ack
        run=_report,
        help=N_("the KPI report from one day to another (YYYY-MM-DD, both included; by default the last 30 days)."),
        example="report 2026-11-01 2026-11-30",
        group=LOOK,
        in_incident_channel=False,
    ),
    Spec(
        name="plan",
        actions=(Action.PLAN,),
        read_only=True,
        run=lambda services, command, request: services.plan.status_text(),
        help=N_("the plan in force: its version, what changed, and who has not confirmed reading it yet."),
        group=LOOK,
        in_incident_channel=False,
    ),
    Spec(
        name="surge",
        aliases=("分流", "激增"),
        actions=(Action.SURGE,),
        read_only=True,
        run=lambda services, command, request: services.surge.status_text(),
        help=N_(
            "complaint volume against the surge plan's warning lines, and the proposal waiting for the leadership "
            "group."
        ),
        group=LOOK,
        in_incident_channel=False,
    ),
    # the leadership group's decisions typed instead of clicked: End (the running plan), Dismiss (the proposal)
    Spec(
        name="surge end",
        actions=(Action.SURGE_END,),
        read_only=False,
        run=lambda services, command, request: services.surge_plan.end_running(actor=request.actor),
        help=N_("(the leadership group) end the running surge plan, as its End button does, and post the summary."),
        group=RUN_IT,
        in_incident_channel=False,
    ),
    Spec(
        name="surge dismiss",
        args=(SURGE_WHY,),
        actions=(Action.SURGE_DISMISS,),
        read_only=False,
        run=lambda services, command, request: services.surge.dismiss_waiting(
            actor=request.actor, reason=command.get(SURGE_WHY)
        ),
        help=N_("(the leadership group) dismiss the waiting surge proposal, saying why; the reason is recorded."),
        group=RUN_IT,
        example=N_("surge dismiss Complaints all from one merchant, handled apart"),
        in_incident_channel=False,
    ),
    Spec(
        name="help",
        actions=(Action.HELP,),
        read_only=True,
        run=lambda services, command, request: help_text(services.playbook),
        help=N_("this list."),
        group=LOOK,
        in_incident_channel=False,
    ),
)

REGISTRY += COMPLAINT_SPECS
SPECS: dict[str, Spec] = {spec.name: spec for spec in (*REGISTRY, OPEN_FORM)}


def spec_for(command: Command) -> Spec:
    """The declaration a parsed command came from."""
    return SPECS[command.name]


def acknowledgement(spec: Spec, command: Command, playbook: Playbook | None = None) -> str | None:
    """What the ack says before the work starts (most commands say nothing until it is done). A kind reads as
    typed in English (`complaint`) and by its own name in Chinese (客户投诉)."""
    if not spec.acknowledge:
        return None
    values = {k: quote(str(v)) for k, v in command.values.items()}
    kind = playbook.kinds.get(str(command.values.get("kind"))) if playbook is not None else None
    if kind is not None and current_locale() != "en":
        values["kind"] = quote(kind.name_in(current_locale()))
    return _(spec.acknowledge, **values)


# ---- /incident help ------------------------------------------------------------------------------------------


def help_params(playbook: Playbook) -> dict[str, str]:
    """The playbook's lists the help lines name."""
    none = _("none")
    return {
        # what to type, and what it is called in the reader's language: `tech_support (技术支持)`
        "kinds": ", ".join(f"{k} ({spec.name_in(current_locale())})" for k, spec in playbook.kinds.items()),
        "roles": ", ".join(f"{r} ({playbook.role_name(r)})" for r in playbook.roles),
        "notice_channels": "; ".join(  # each kind's own: a complaint is answered to its customer, never in public
            f"{kind} → {', '.join(playbook.notice_channels_for(kind)) or none}" for kind in playbook.kinds
        ),
        "notice_locales": ", ".join(playbook.notices.locales),
        "drill_speed": f"{playbook.drills.speed:g}",
        "drill_scenarios": ", ".join(playbook.drills.scenarios) or none,
    }


def _line(spec: Spec, params: dict[str, str]) -> str:
    line = f"• `{spec.usage()}` — {_(spec.help, **params)}"
    if spec.example:
        example = "`/incident " + _(spec.example) + "`"
        line = _("{line} Example: {example}", line=line, example=example)
    return line


def help_lines(playbook: Playbook) -> list[str]:
    """Every command's usage and help line, grouped, in the current language (not yet escaped)."""
    params = {k: mask_identifiers(v) for k, v in help_params(playbook).items()}
    lines = [_("*incident-desk commands*")]
    for group in GROUPS:
        lines.append(f"*{_(group)}*")
        for spec in REGISTRY:
            if spec.group != group:
                continue
            lines.append(_line(spec, params))
            if spec.empty is not None:
                lines.append(f"• `/incident {spec.name}` — {_(SPECS[spec.empty.name].help)}")
            if spec.shortcuts:
                shortcuts = _(" and ").join(f"`{spec.usage(c, skip=1)}`" for c in spec.shortcuts)
                what = _("shortcuts for those kinds")
                lines.append(f"• {shortcuts} — {what}")
    channel_bound = ", ".join(f"`{s.name}`" for s in REGISTRY if s.in_incident_channel)
    lines.append(_("Run {commands} inside the incident's channel.", commands=channel_bound))
    lines.append(
        _(
            "Role owners and admins act on an incident; anyone in its channel may take a role nobody holds (not "
            "the approving ones, which the lead assigns); the lead is the reporter until someone else is named. "
            "Reminders come as DMs with *Mark done* and *Snooze*; pages with *Acknowledge*."
        )
    )
    return lines


def help_text(playbook: Playbook) -> str:
    """`/incident help`, generated from the registry, escaped for Slack."""
    return escape_mrkdwn("\n".join(help_lines(playbook)))
