"""The playbook (config.yaml) and the environment settings, validated up front.

A broken playbook is rejected whole, with every error naming its field path and line, so the bot
never runs half-configured.
"""

from __future__ import annotations

import os
import re
import string
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from bot.core.durations import parse_duration as parse_any
from bot.core.i18n import current_locale

SEVERITY_RE = re.compile(r"^sev[1-9]$")
KEY_RE = re.compile(r"^[a-z][a-z0-9_]*$")
DEFAULT_SLACK_API_URL = "https://slack.com/api/"


class ConfigError(Exception):
    """A playbook or environment problem; `problems` holds one line per error, field path first."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


def parse_duration(value: object) -> timedelta:
    """A playbook duration: '30m', '24h', '2d', '2小时' (bot.core.durations' grammar) or a bare number of hours;
    negative or zero durations are refused."""
    if isinstance(value, timedelta):  # a default written in code (e.g. the escalation when none is configured)
        if value <= timedelta(0):
            raise ValueError("must be positive; write it like 30m, 24h or 2d")
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30m, 24h or 2d")
    if isinstance(value, int | float):
        duration = timedelta(hours=float(value))  # a YAML number: hours
    elif isinstance(value, str):
        try:
            duration = parse_any(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a duration; write it like 30m, 24h or 2d") from None
    else:
        raise ValueError(f"{value!r} is not a duration; write it like 30m, 24h or 2d")
    if duration <= timedelta(0):
        raise ValueError(f"{value!r} must be positive; write it like 30m, 24h or 2d")
    return duration


def slack_user_ids(users: tuple[str, ...]) -> tuple[str, ...]:
    for user in users:
        if not re.fullmatch(r"[UW][A-Z0-9]{2,}", user):
            raise ValueError(f"{user!r} is not a Slack user ID (they look like U012ABCDEF)")
    return users


# A playbook duration ('30m', '24h', '2小时'; see parse_duration) and a list of Slack user IDs, checked alike in
# every section that has one.
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
UserIds = Annotated[tuple[str, ...], AfterValidator(slack_user_ids)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def name_in(name: str, names: Mapping[str, str], locale: str) -> str:
    """A playbook name for staff reading `locale`: `name` (the English one) in English, else the name in that
    language from `names:` (e.g. {zh-CN: 技术支持}), else `name`."""
    return name if locale == "en" else names.get(locale) or name


class _Named(_Strict):
    """Something the playbook names for staff (a role, a severity, a deadline): `name`, and per-locale `names`."""

    name: str = Field(min_length=1)
    names: dict[str, str] = {}  # its name in each language staff read, e.g. {zh-CN: 技术支持}

    def name_in(self, locale: str) -> str:
        return name_in(self.name, self.names, locale)


class RoleSpec(_Named):
    name: str = Field(min_length=1, max_length=60)
    description: str = Field(min_length=1)
    aliases: tuple[str, ...] = ()
    default_owners: UserIds = ()
    usergroup: str | None = None


class SeveritySpec(_Named):
    description: str = Field(min_length=1)


class DeadlineSpec(_Named):
    """One time limit of the plan: who owns it, how long it is, what happens to it on resolve."""

    key: str
    owner: str
    after: timedelta
    by_severity: dict[str, timedelta] = {}
    start: Literal["opened", "resolved"] = "opened"
    # a cadence (e.g. status updates) is met by each update and re-armed from the moment it is posted
    cadence: bool = False
    # investigation deadlines go to the role the complaint's category routes to
    route_by_category: bool = False
    only_severities: tuple[str, ...] = ()
    on_resolve: Literal["keep", "met", "cancel"] = "cancel"
    escalate: bool = True
    # events that meet this deadline by themselves (an acknowledged page meets "the lead acknowledges",
    # the first published customer notice meets "first response", the published resolved notice or
    # `/incident solution` meets "solution communicated"); late, they still meet it ("met late")
    met_by: tuple[
        Literal["ack", "notice", "notice_initial", "notice_update", "notice_resolved", "solution", "satisfaction"], ...
    ] = ()
    # calendar time, or working time per the playbook's working_hours
    clock: Literal["calendar", "business"] = "calendar"

    @field_validator("after", mode="before")
    @classmethod
    def _duration(cls, value: object) -> timedelta:
        return parse_duration(value)

    @field_validator("by_severity", mode="before")
    @classmethod
    def _durations(cls, value: object) -> dict[str, timedelta]:
        if not isinstance(value, dict):
            raise ValueError("must map severities to durations, e.g. {sev1: 30m}")
        return {str(k): parse_duration(v) for k, v in value.items()}

    @field_validator("key")
    @classmethod
    def _key(cls, key: str) -> str:
        if not KEY_RE.match(key):
            raise ValueError(f"{key!r} must be lowercase letters, digits and underscores")
        return key

    def duration_for(self, severity: str) -> timedelta:
        return self.by_severity.get(severity, self.after)

    def applies_to(self, severity: str) -> bool:
        return not self.only_severities or severity in self.only_severities


def parse_offset(value: object) -> float | timedelta:
    """A reminder offset: '50%' of the time allowed, or a duration before the deadline ('2h', '0m')."""
    if isinstance(value, str) and value.strip().endswith("%"):
        number = float(value.strip()[:-1])
        if not 0 < number < 100:
            raise ValueError(f"{value!r}: a percentage must be between 0 and 100")
        return number / 100
    if value in (0, "0", "0m", "0h"):
        return timedelta(0)
    return parse_duration(value)


class ReminderSpec(_Strict):
    """When owners are nudged before a deadline, and how far they may push it off."""

    offsets: tuple[str, ...] = ("50%", "2h", "0m")
    snooze: timedelta = timedelta(hours=1)
    max_snoozes: int = Field(default=3, ge=0, le=20)

    @field_validator("offsets")
    @classmethod
    def _offsets(cls, offsets: tuple[str, ...]) -> tuple[str, ...]:
        for offset in offsets:
            parse_offset(offset)
        return offsets

    @field_validator("snooze", mode="before")
    @classmethod
    def _snooze(cls, value: object) -> timedelta:
        return parse_duration(value)


class EscalationLevel(_Named):
    """One level of the paging chain: who is paged and how long they have to acknowledge."""

    # `owner` pages the owner of the missed deadline (or the lead for a severe opening)
    owner: bool = False
    role: str | None = None
    users: tuple[str, ...] = ()
    usergroup: str | None = None
    # `leadership` pages the surge plan's leadership group (surge.leaders / leaders_usergroup, else the members
    # of the leadership channel; admins always): the plan has one group of leaders, not two lists to keep apart
    leadership: bool = False
    ack_timeout: timedelta

    @field_validator("ack_timeout", mode="before")
    @classmethod
    def _timeout(cls, value: object) -> timedelta:
        return parse_duration(value)


class EscalationSpec(_Strict):
    levels: tuple[EscalationLevel, ...] = Field(min_length=1)
    page_on_open: tuple[str, ...] = ("sev1", "sev2")


class DepartmentSpec(_Strict):
    """A department of a plan that runs by departments (seed 004: the surge plan): its name in this plan, which
    may differ from its role's (客户服务部 for customer comms, 预案领导小组 for the lead), and its duties on
    activation, per locale. Posted in the channel when the plan starts, one line per department."""

    names: dict[str, str] = {}  # the department's name per locale, e.g. {zh-CN: 客户服务部, en: Customer service}
    duties: dict[str, str] = Field(min_length=1)  # per locale, e.g. {zh-CN: 增加客服人员…, en: Add agents…}

    def name_in(self, locale: str, fallback: str) -> str:
        return self.names.get(locale) or fallback


class KindSpec(_Strict):
    name: str = Field(min_length=1)
    names: dict[str, str] = {}  # the kind's name in each notice locale, e.g. {zh-CN: 客户投诉}
    description: str = Field(min_length=1)
    default_severity: str
    roles: tuple[str, ...] = Field(min_length=1)
    categories: tuple[str, ...] = ()
    welcome_template: str
    category_routes: dict[str, str] = {}
    deadlines: tuple[DeadlineSpec, ...] = ()
    # who its customer notices are for: the public (status page, social…) or the one customer who complained
    notice_audience: Literal["public", "customer"] = "public"
    # the notice channels this kind uses (keys of notices.channels); unset: see Playbook.notice_channels_for
    notice_channels: tuple[str, ...] | None = None
    # who may read an incident's details (status, timeline, deadlines) outside its channel
    visible_to: Literal["participants", "everyone"] = "participants"
    # the plan's departments, keyed by the role that is each (seed 004; bot/surge/plan.py posts their duties)
    departments: dict[str, DepartmentSpec] = {}

    def name_in(self, locale: str) -> str:
        """The kind's name for staff reading `locale`: `name` (the English one staff know) in English, else the
        customer-facing name in that language from `names:`, else `name`."""
        return name_in(self.name, self.names, locale)


class ChannelSpec(_Strict):
    name_pattern: str = "inc-{date}-{number}-{slug}"
    invite_role_owners: bool = True
    archive_on_close: bool = True  # after the final summary is posted

    @field_validator("name_pattern")
    @classmethod
    def _pattern(cls, pattern: str) -> str:
        try:
            pattern.format(date="20260101", number=1, slug="x", kind="complaint", severity="sev1")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"unknown placeholder {exc}; use {{date}}, {{number}}, {{slug}}, {{kind}}, {{severity}}"
            ) from None
        if "{number}" not in pattern:
            raise ValueError("must contain {number} so every incident gets its own channel")
        return pattern


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class WorkingHoursSpec(_Strict):
    """When business-hours deadlines run: days, hours (in the playbook's timezone) and holidays."""

    days: tuple[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], ...] = ("mon", "tue", "wed", "thu", "fri")
    start: time = time(9, 0)
    end: time = time(18, 0)
    holidays: tuple[date, ...] = ()

    @model_validator(mode="after")
    def _sane(self) -> WorkingHoursSpec:
        if not self.days:
            raise ValueError("days: name at least one working day")
        if self.start >= self.end:
            raise ValueError("start must be before end, e.g. start: '09:00', end: '18:00'")
        return self


class ReviewSpec(_Strict):
    """The post-incident review: when its draft is posted after resolution, and whether close waits for it."""

    day: Literal["next_working_day", "same_day"] = "next_working_day"
    at: time = time(10, 0)
    template: str = "review/draft.md.j2"
    required_before_close: bool = True


class SatisfactionSpec(_Strict):
    good_at_least: int = Field(default=4, ge=1, le=5)  # a rating this high or higher counts as satisfied
    target: float = Field(default=0.9, gt=0, le=1)
    ask_participants: bool = True  # DM every role owner for a 1-5 rating of the response itself


class WeeklyReportSpec(_Strict):
    cron: str = "0 9 * * mon"  # crontab fields in the playbook's timezone
    channel: str | None = "incident-reports"  # None: no weekly report

    @field_validator("cron")
    @classmethod
    def _cron(cls, expression: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(expression)
        except ValueError as exc:
            raise ValueError(f"{expression!r} is not a crontab line ({exc}); e.g. '0 9 * * mon'") from None
        return expression


# `diversion` (客户分流, seed 004): tells customers which other channels to use; drafted when a surge plan starts
NOTICE_STAGES = ("initial", "update", "resolved", "diversion")
# Channels everyone can read: a kind whose notices answer one customer never uses them.
PUBLIC_NOTICE_CHANNELS = ("status_page", "social")
# Channels a customer-audience kind uses by default: straight back to the customer, plus the staff broadcast.
CUSTOMER_NOTICE_CHANNELS = ("hotline", "email", "complaint_system", "internal")


class NoticeChannelSpec(_Strict):
    """Where one notice channel publishes: the bot's status page, a webhook, e-mail, or a Slack channel."""

    webhook_url_env: str | None = None  # the URL comes from this environment variable (never the playbook)
    recipients: tuple[str, ...] = ()
    sender: str | None = None
    slack_channel: str | None = None


class NoticeApprovalSpec(_Strict):
    severities: tuple[str, ...] = ("sev1", "sev2")
    roles: tuple[str, ...] = ("legal_compliance", "pr")


class NoticesSpec(_Strict):
    bank_name: dict[str, str] = {"en": "Example Bank", "zh-CN": "示例银行"}
    locales: tuple[str, ...] = ("zh-CN", "en")
    channels: dict[
        Literal["status_page", "social", "hotline", "email", "internal", "complaint_system"], NoticeChannelSpec
    ] = {"status_page": NoticeChannelSpec()}
    approval: NoticeApprovalSpec = NoticeApprovalSpec()
    webhook_secret_env: str = "INCIDENT_DESK_WEBHOOK_SECRET"

    @field_validator("locales")
    @classmethod
    def _locales(cls, locales: tuple[str, ...]) -> tuple[str, ...]:
        if not locales:
            raise ValueError("name at least one locale, e.g. [zh-CN, en]")
        return locales

    def template(self, locale: str, stage: str, channel: str) -> str:
        return f"notices/{locale}/{stage}/{channel}.j2"


class MaskPatternSpec(_Strict):
    """One of the bank's own identifier formats (a policy or account number), masked in every output."""

    name: str = Field(min_length=1, max_length=40)
    regex: str = Field(min_length=1)

    @field_validator("regex")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"{value!r} is not a regular expression ({exc}); e.g. 'PL[0-9]{{10}}'") from None
        if compiled.search("") is not None:
            raise ValueError(f"{value!r} matches empty text, so it would mask nothing useful; e.g. 'PL[0-9]{{10}}'")
        return value


class MaskingSpec(_Strict):
    """Identifiers masked on top of the built-in ones (cards, accounts, resident IDs, phones, e-mails)."""

    patterns: tuple[MaskPatternSpec, ...] = ()


# ---- the surge plan (seed 004) -------------------------------------------------------------------------------


class WarningLineSpec(_Strict):
    """A warning line: `count` complaints received within `window`, overall or for one category or contact
    channel (at most one of the two)."""

    count: int = Field(ge=1)
    window: Duration
    category: str | None = None
    contact_channel: str | None = None

    @model_validator(mode="after")
    def _one_filter(self) -> WarningLineSpec:
        if self.category is not None and self.contact_channel is not None:
            raise ValueError("a warning line watches one category or one contact channel, not both")
        return self


class HighPrioritySpec(_Strict):
    """Which customers are served first in a surge (seed 004: 高优先级客户): any rule that matches flags one."""

    min_amount: Decimal | None = None
    severities: tuple[str, ...] = ("sev1", "sev2")
    keywords: tuple[str, ...] = ()  # words in the complaint's summary, e.g. 媒体, 监管, 起诉
    products: tuple[str, ...] = ()


class SurgeSpec(_Strict):
    """Seed 004: a warning line crossed → a proposal to the leadership group, who activate or dismiss it; the
    activated plan runs as an incident of `kind`; it ends when the leadership group says so."""

    enabled: bool = True
    leadership_channel: str = "incident-leadership"
    # The leadership group (预案领导小组): Slack user IDs and/or a user group. With neither, the members of
    # leadership_channel decide (check-config warns).
    leaders: tuple[str, ...] = ()
    leaders_usergroup: str | None = None
    warning_lines: tuple[WarningLineSpec, ...] = (WarningLineSpec(count=100, window=timedelta(minutes=10)),)
    kind: str = "surge"
    severity: str = "sev2"
    # End is suggested once volume has stayed below every warning line this long.
    end_after: Duration = timedelta(minutes=30)
    # How often the live volume chart in the surge channel is refreshed.
    chart_every: Duration = timedelta(minutes=5)
    high_priority: HighPrioritySpec = HighPrioritySpec()


# ---- the plan's life cycle: its changelog, the announcement of a new version, the yearly review ----------------


class ChangelogEntry(_Strict):
    """One version of the plan: when it was made, why, and what changed (required when the content changes)."""

    version: str = Field(min_length=1)
    date: date
    reason: str = Field(min_length=1)
    changes: tuple[str, ...] = ()


class PlanChangesSpec(_Strict):
    """Who is told of a new version of the plan, how often those who have not confirmed reading it are
    reminded, and when the plan is due for its review."""

    channel: str | None = None  # None: the weekly report's channel
    remind_every: Duration = timedelta(days=1)
    review_every: Duration = timedelta(days=365)
    owners: UserIds = ()  # the plan's owners (reminded of its review); none: the admins
    review_severities: tuple[str, ...] = ("sev1", "sev2")  # their review drafts get a "plan changes" section


# ---- Alertmanager's webhook (POST /api/v1/alerts/alertmanager) --------------------------------------------------

ALERT_TITLE_FIELDS = ("summary", "alertname", "labels")


class AlertsSpec(_Strict):
    """What a firing Alertmanager group opens: an incident of `kind`, its severity read from the label
    `severity_label` through `severities` (label value → playbook severity; `default_severity` for a value not
    listed, else the kind's default), its title from `title` ({summary}: commonAnnotations.summary, else the
    alert name and the group's labels; {alertname}; {labels}), its category from `category_label` when that
    label holds one of the kind's categories. `resolve_on_resolved`: a resolved notification also resolves it."""

    kind: str = "outage"
    severity_label: str = "severity"
    severities: dict[str, str] = {
        "critical": "sev1",
        "major": "sev2",
        "error": "sev2",
        "warning": "sev3",
        "info": "sev4",
    }
    default_severity: str | None = None
    resolve_on_resolved: bool = False
    title: str = "{summary}"
    category_label: str | None = None

    @field_validator("severities")
    @classmethod
    def _lower(cls, value: dict[str, str]) -> dict[str, str]:
        return {str(k).strip().lower(): v for k, v in value.items()}  # label values are matched ignoring case

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        try:
            fields = {name for _text, name, _spec, _conv in string.Formatter().parse(value) if name is not None}
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a title template ({exc})") from None
        unknown = fields - set(ALERT_TITLE_FIELDS)
        if unknown or not value.strip():
            raise ValueError(
                f"{value!r}: use the placeholders {', '.join('{' + f + '}' for f in ALERT_TITLE_FIELDS)} only"
            )
        return value


def _alerts_problems(alerts: dict[str, Any], kinds: dict[str, Any], severities: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    kind = alerts.get("kind", "outage")
    if kinds and "kind" in alerts and kind not in kinds:  # unwritten: the webhook is refused (503) until it is
        problems.append(f"alerts.kind: {kind!r} is not one of kinds ({', '.join(kinds)})")
    mapped = alerts.get("severities")
    named = [(f"alerts.severities.{label}", sev) for label, sev in mapped.items()] if isinstance(mapped, dict) else []
    if alerts.get("default_severity") is not None:
        named.append(("alerts.default_severity", alerts["default_severity"]))
    for where, sev in named:
        if severities and sev not in severities:
            problems.append(f"{where}: {sev!r} is not one of severities ({', '.join(severities)})")
    return problems


# ---- complaint routing: which complaints from the complaint system open an incident ---------------------------


class ClusterSpec(_Strict):
    """`count` complaints matching the rule with the same `by` (category or product) received within `window`
    open ONE incident; later ones join it while it is open."""

    count: int = Field(ge=2)
    window: Duration
    by: Literal["category", "product"] = "category"


class IntakeRuleSpec(_Strict):
    """One routing rule: every condition given must hold (a rule with none matches every complaint). Without
    `cluster:` a matching complaint opens its own incident; with it, the cluster decides."""

    name: str = Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")
    severities: tuple[str, ...] = ()  # the complaint's own severity, as the complaint system sent it
    categories: tuple[str, ...] = ()  # the kind's categories (after intake.categories mapped the sent one)
    products: tuple[str, ...] = ()
    min_amount: Decimal | None = Field(default=None, ge=0)
    keywords: tuple[str, ...] = ()  # any of these words in the summary, e.g. 媒体, 监管, 起诉
    cluster: ClusterSpec | None = None
    kind: str = "complaint"
    severity: str | None = None  # None: the complaint's own severity, else the kind's default


class IntakeSpec(_Strict):
    """Routing complaints from the complaint system (POST /api/v1/complaints): the first rule that matches
    decides; a complaint no rule matches is recorded only (with its deadlines), listed with
    `/incident complaints` and escalated by a person."""

    enabled: bool = True
    # who leads incidents the intake opens (rotating): Slack user IDs; none → the lead role's default owners
    leads: UserIds = ()
    # where the team SEES that a complaint opened an incident (created by the bot if missing)
    channel: str = Field(default="incident-intake", pattern=r"^[a-z0-9][a-z0-9_-]{0,79}$")
    # the complaint system's free-form categories → the complaint kind's categories (matched ignoring case);
    # a category sent as one of the kind's own names needs no entry; an unknown one is recorded, never refused
    categories: dict[str, str] = {}
    rules: tuple[IntakeRuleSpec, ...] = ()

    @model_validator(mode="after")
    def _unique_names(self) -> IntakeSpec:
        names = [rule.name for rule in self.rules]
        if len(names) != len(set(names)):
            raise ValueError("intake.rules: each rule needs its own name (it keys its clusters)")
        return self


def _intake_problems(intake: dict[str, Any], kinds: dict[str, Any], severities: dict[str, Any]) -> list[str]:
    """Rules must name kinds and severities the playbook has; mapped categories must be the kind's own."""
    problems: list[str] = []
    rules = intake.get("rules") or ()
    for i, rule in enumerate(rules if isinstance(rules, list | tuple) else ()):
        if not isinstance(rule, dict):
            continue
        kind = rule.get("kind", "complaint")
        if kinds and kind not in kinds:
            problems.append(f"intake.rules.{i}.kind: {kind!r} is not one of kinds ({', '.join(kinds)})")
        for sev in [rule.get("severity"), *(rule.get("severities") or ())]:
            if severities and sev is not None and sev not in severities:
                problems.append(f"intake.rules.{i}: {sev!r} is not one of severities ({', '.join(severities)})")
        own = (kinds.get(kind) or {}).get("categories") or () if isinstance(kinds.get(kind), dict) else ()
        for category in rule.get("categories") or ():
            if own and category not in own:
                problems.append(f"intake.rules.{i}.categories: {category!r} is not one of {kind}'s ({', '.join(own)})")
    complaint = kinds.get("complaint")
    own = complaint.get("categories") or () if isinstance(complaint, dict) else ()
    for sent, category in (intake.get("categories") or {}).items():
        if own and category not in own:
            problems.append(f"intake.categories.{sent}: {category!r} is not one of complaint's ({', '.join(own)})")
    return problems


# ---- drills: rehearsal scenarios of the plan (issue 13) --------------------------------------------------------

DRILL_CUE_KINDS = ("complaint", "alert", "volume", "callback", "journalist")
DRILL_ACTIONS = (
    "role_taken",
    "notice_drafted",
    "notice_approved",
    "ack",
    "update",
    "customer_answered",
    "resolved",
)


def parse_plan_offset(value: object) -> timedelta:
    """A moment of a drill's plan, from its start: '0m' (at once), '5m', '2h'."""
    if value in (0, "0", "0m", "0h", "0s"):
        return timedelta(0)
    return parse_duration(value)


class DrillCueSpec(_Strict):
    """Something that happens to the team during a drill, at a moment of the plan's time."""

    at: timedelta
    kind: Literal["complaint", "alert", "volume", "callback", "journalist"]
    text: dict[str, str] = Field(min_length=1)  # per locale: {zh-CN: …, en: …}

    @field_validator("at", mode="before")
    @classmethod
    def _at(cls, value: object) -> timedelta:
        return parse_plan_offset(value)

    def text_in(self, locale: str) -> str:
        return self.text.get(locale) or self.text.get("en") or next(iter(self.text.values()))


class DrillExpectSpec(_Strict):
    """An action the plan expects of the team, and the plan time it has from the drill's start."""

    action: Literal["role_taken", "notice_drafted", "notice_approved", "ack", "update", "customer_answered", "resolved"]
    role: str | None = None  # role_taken: the role to be taken; otherwise who is expected to act
    within: Duration


class DrillScenarioSpec(_Named):
    """A named script: what incident it rehearses, the cues over time and the actions expected."""

    kind: str
    severity: str | None = None
    title: dict[str, str] = Field(min_length=1)  # the drill incident's title per locale
    cues: tuple[DrillCueSpec, ...] = ()
    expect: tuple[DrillExpectSpec, ...] = Field(min_length=1)

    def title_in(self, locale: str) -> str:
        return self.title.get(locale) or self.title.get("en") or next(iter(self.title.values()))

    @property
    def length(self) -> timedelta:
        """The plan time the drill runs: until its last expectation (or cue) is due."""
        return max([e.within for e in self.expect] + [c.at for c in self.cues])


class DrillsSpec(_Strict):
    """Quarterly drills (seeds 002, 003): the scenarios, the default speed and who is reminded to run them."""

    speed: float = Field(default=60, gt=0, le=100000)  # plan seconds per real second: 60 = an hour a minute
    owners: UserIds = ()  # reminded when a quarter passes with no drill of a kind; else the lead's owners
    scenarios: dict[str, DrillScenarioSpec] = {}

    @field_validator("scenarios")
    @classmethod
    def _scenario_keys(cls, scenarios: dict[str, DrillScenarioSpec]) -> dict[str, DrillScenarioSpec]:
        for key in scenarios:
            if not re.fullmatch(r"[a-z][a-z0-9_-]*", key):
                raise ValueError(f"{key!r} must be lowercase letters, digits, '-' and '_' (e.g. payment-outage)")
        return scenarios


def drill_problems(data: dict[str, Any]) -> list[str]:
    """A scenario must rehearse a kind, severity and roles the playbook has."""
    drills = data.get("drills")
    if not isinstance(drills, dict) or not isinstance(drills.get("scenarios"), dict):
        return []
    roles: dict[str, Any] = data["roles"] if isinstance(data.get("roles"), dict) else {}
    kinds: dict[str, Any] = data["kinds"] if isinstance(data.get("kinds"), dict) else {}
    severities: dict[str, Any] = data["severities"] if isinstance(data.get("severities"), dict) else {}
    problems: list[str] = []
    for key, scenario in drills["scenarios"].items():
        if not isinstance(scenario, dict):
            continue
        where = f"drills.scenarios.{key}"
        kind = scenario.get("kind")
        if kinds and kind is not None and kind not in kinds:
            problems.append(f"{where}.kind: unknown kind {kind!r} (kinds: {', '.join(kinds)})")
        severity = scenario.get("severity")
        if severities and severity is not None and severity not in severities:
            problems.append(f"{where}.severity: unknown severity {severity!r} ({', '.join(severities)})")
        for i, expect in enumerate(scenario.get("expect") or ()):
            role = expect.get("role") if isinstance(expect, dict) else None
            spec = kinds.get(kind) if isinstance(kind, str) else None
            kind_roles = list(spec.get("roles") or ()) if isinstance(spec, dict) else []
            taken = isinstance(expect, dict) and expect.get("action") == "role_taken"
            if roles and role is not None and role not in roles:
                problems.append(f"{where}.expect.{i}.role: unknown role {role!r} (roles: {', '.join(roles)})")
            elif taken and role is None:
                problems.append(f"{where}.expect.{i}.role: role_taken names the role to be taken, e.g. role: lead")
            elif taken and kind_roles and role not in kind_roles:
                problems.append(
                    f"{where}.expect.{i}.role: {role!r} is not one of the {kind} kind's roles "
                    f"({', '.join(kind_roles)}), so nobody could take it in this drill"
                )
    return problems


def drill_warnings(playbook: Playbook) -> list[str]:
    """Nobody to remind of the quarterly drill: a warning, like a role without owners."""
    if not playbook.drills.scenarios or playbook.drills.owners:
        return []
    lead = playbook.roles.get(playbook.lead_role)
    if lead is not None and lead.default_owners:
        return []
    return [
        "drills.owners: nobody is reminded when a quarter passes without a drill; add owners: [U012ABCDEF] "
        f"(or default_owners for roles.{playbook.lead_role})"
    ]


def _default_escalation() -> EscalationSpec:
    return EscalationSpec(levels=(EscalationLevel(name="Owner", owner=True, ack_timeout=timedelta(minutes=15)),))


class Playbook(_Strict):
    version: str = Field(min_length=1)
    timezone: str = "Asia/Shanghai"
    # a folder of the bank's own templates, searched before the shipped templates/ (relative to the working dir)
    template_folder: Path | None = None
    locale: str = "en"  # the default language (zh-CN or en): channel messages, and readers Slack gives none for
    admins: tuple[str, ...] = ()
    lead_role: str = "lead"
    channel: ChannelSpec = ChannelSpec()
    roles: dict[str, RoleSpec]
    severities: dict[str, SeveritySpec]
    kinds: dict[str, KindSpec]
    reminders: ReminderSpec = ReminderSpec()
    working_hours: WorkingHoursSpec = WorkingHoursSpec()
    notices: NoticesSpec = NoticesSpec()
    review: ReviewSpec = ReviewSpec()
    satisfaction: SatisfactionSpec = SatisfactionSpec()
    weekly_report: WeeklyReportSpec = WeeklyReportSpec()
    escalation: EscalationSpec = Field(default_factory=_default_escalation)
    masking: MaskingSpec = MaskingSpec()
    surge: SurgeSpec = SurgeSpec()
    # the plan's versions (newest last or first, any order): an entry is required for every new version
    changelog: tuple[ChangelogEntry, ...] = ()
    plan_changes: PlanChangesSpec = PlanChangesSpec()

    @field_validator("changelog")
    @classmethod
    def _one_entry_per_version(cls, entries: tuple[ChangelogEntry, ...]) -> tuple[ChangelogEntry, ...]:
        seen = [e.version for e in entries]
        twice = sorted({v for v in seen if seen.count(v) > 1})
        if twice:
            raise ValueError(f"version {', '.join(twice)} has more than one entry; keep one per version")
        return entries

    def changelog_entry(self, version: str | None = None) -> ChangelogEntry | None:
        """The changelog entry of `version` (default: this playbook's own)."""
        wanted = self.version if version is None else version
        return next((e for e in self.changelog if e.version == wanted), None)

    alerts: AlertsSpec = AlertsSpec()
    intake: IntakeSpec = IntakeSpec()
    drills: DrillsSpec = DrillsSpec()  # rehearsals of the plan (bot/drills)

    @field_validator("template_folder")
    @classmethod
    def _templates(cls, folder: Path | None) -> Path | None:
        if folder is not None and not folder.is_dir():
            raise ValueError(
                f"{str(folder)!r} is not a folder; create it, or remove `template_folder:` to use the shipped ones"
            )
        return folder

    @field_validator("locale")
    @classmethod
    def _locale(cls, locale: str) -> str:
        if locale not in ("zh-CN", "en"):
            raise ValueError(f"{locale!r} is not a language the bot speaks; use zh-CN or en")
        return locale

    @field_validator("timezone")
    @classmethod
    def _tz(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{name!r} is not a time zone name such as Asia/Shanghai") from None
        return name

    @field_validator("severities")
    @classmethod
    def _sev_keys(cls, sevs: dict[str, SeveritySpec]) -> dict[str, SeveritySpec]:
        for key in sevs:
            if not SEVERITY_RE.match(key):
                raise ValueError(f"{key!r} must be named sev1 … sev9")
        if not sevs:
            raise ValueError("at least one severity is needed")
        return sevs

    @field_validator("roles", "kinds")
    @classmethod
    def _keys(cls, items: dict[str, Any]) -> dict[str, Any]:
        for key in items:
            if not KEY_RE.match(key):
                raise ValueError(f"{key!r} must be lowercase letters, digits and underscores")
        if not items:
            raise ValueError("must not be empty")
        return items

    @model_validator(mode="after")
    def _cross_refs(self) -> Playbook:
        problems = cross_reference_problems(self.model_dump(exclude_unset=True))  # never blame a default
        if problems:
            raise ValueError("\n".join(problems))
        if self.surge.enabled and self.surge.kind not in self.kinds:  # only a default can get here
            object.__setattr__(self, "surge", self.surge.model_copy(update={"enabled": False}))  # frozen model
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def notice_channels_for(self, kind: str) -> tuple[str, ...]:
        """The notice channels a kind uses: its own list, else every configured channel fit for its audience
        (a customer-audience kind never gets a public one; a public kind never gets the complaint system)."""
        spec = self.kinds.get(kind)
        if spec is None:
            return ()
        if spec.notice_channels is not None:
            return tuple(c for c in spec.notice_channels if c in self.notices.channels)
        if spec.notice_audience == "customer":
            return tuple(c for c in self.notices.channels if c in CUSTOMER_NOTICE_CHANNELS)
        return tuple(c for c in self.notices.channels if c != "complaint_system")

    @property
    def approval_roles(self) -> tuple[str, ...]:
        """The roles that approve customer notices (the default names only those this playbook has)."""
        return tuple(r for r in self.notices.approval.roles if r in self.roles)

    def role_name(self, role: str) -> str:
        """A role's name in the current language (bot.core.i18n): the card, announcements, replies, the review."""
        spec = self.roles.get(role)
        return spec.name_in(current_locale()) if spec else role

    def deadline_name(self, kind: str, key: str, stored: str) -> str:
        """A deadline's name in the current language. The row keeps the name it was created with (`stored`,
        also an action item's typed text); a plan deadline of the incident's kind is named from the playbook."""
        spec = self.kinds.get(kind)
        for deadline in spec.deadlines if spec else ():
            if deadline.key == key:
                return deadline.name_in(current_locale()) if current_locale() != "en" else stored
        return stored

    def role_for(self, word: str) -> str | None:
        """The role key a user's word (key, alias, or name) refers to."""
        norm = normalise_word(word)
        for key, role in self.roles.items():
            words = (key, role.name, *role.names.values(), *role.aliases)
            if norm in {normalise_word(w) for w in words}:
                return key
        return None


def _route_problems(kind_key: str, kind: dict[str, Any], roles: dict[str, Any]) -> list[str]:
    """A category route must name a role the kind has: its deadlines would go to a role nobody can hold."""
    problems = []
    kind_roles = list(kind.get("roles") or ())
    for category, role in (kind.get("category_routes") or {}).items():
        if roles and role not in roles:
            problems.append(f"kinds.{kind_key}.category_routes.{category}: unknown role {role!r}")
        elif kind_roles and role not in kind_roles:
            problems.append(
                f"kinds.{kind_key}.category_routes.{category}: {role!r} is not one of this kind's roles "
                f"({', '.join(kind_roles)}); add it to kinds.{kind_key}.roles"
            )
    return problems


def cross_reference_problems(data: dict[str, Any]) -> list[str]:
    """Checks between sections (a kind naming an unknown role…), on raw data so they run even when a
    field elsewhere is invalid and every problem is reported at once."""

    def section(name: str) -> dict[str, Any]:
        value = data.get(name)
        return value if isinstance(value, dict) else {}

    roles, severities, kinds = section("roles"), section("severities"), section("kinds")
    problems: list[str] = []
    lead_role = data.get("lead_role", "lead")
    if roles and lead_role not in roles:
        if "lead_role" in data:
            problems.append(f"lead_role: {lead_role!r} is not one of roles ({', '.join(roles)})")
        else:  # the default: say what to write rather than blame a field the user never wrote
            problems.append(
                f"roles: add a `lead` role, or name the role that leads with `lead_role:` ({', '.join(roles)})"
            )
    for kind_key, kind in kinds.items():
        if not isinstance(kind, dict):
            continue
        sev = kind.get("default_severity")
        if severities and sev is not None and sev not in severities:
            problems.append(
                f"kinds.{kind_key}.default_severity: {sev!r} is not one of severities ({', '.join(severities)})"
            )
        for i, role in enumerate(kind.get("roles") or ()):
            if roles and role not in roles:
                problems.append(f"kinds.{kind_key}.roles.{i}: unknown role {role!r} (roles: {', '.join(roles)})")
        problems += _route_problems(kind_key, kind, roles)
        for role in kind.get("departments") or {}:
            if kind.get("roles") and role not in kind["roles"]:
                problems.append(f"kinds.{kind_key}.departments.{role}: {role!r} is not one of this kind's roles")
        for i, deadline in enumerate(kind.get("deadlines") or ()):
            if not isinstance(deadline, dict):
                continue
            owner = deadline.get("owner")
            if roles and owner is not None and owner not in roles:
                problems.append(
                    f"kinds.{kind_key}.deadlines.{i}.owner: unknown role {owner!r} (roles: {', '.join(roles)})"
                )
            named = [*(deadline.get("by_severity") or {}), *(deadline.get("only_severities") or ())]
            for sev in named:
                if severities and sev not in severities:
                    problems.append(f"kinds.{kind_key}.deadlines.{i}: unknown severity {sev!r}")
    notice_channels = section("notices").get("channels")
    configured = list(notice_channels) if isinstance(notice_channels, dict) else ["status_page"]
    for kind_key, kind in kinds.items():
        if not isinstance(kind, dict) or not isinstance(kind.get("notice_channels"), list | tuple):
            continue
        for i, channel in enumerate(kind["notice_channels"]):
            if channel not in configured:
                problems.append(
                    f"kinds.{kind_key}.notice_channels.{i}: {channel!r} is not one of notices.channels "
                    f"({', '.join(configured)})"
                )
            elif kind.get("notice_audience") == "customer" and channel in PUBLIC_NOTICE_CHANNELS:
                problems.append(
                    f"kinds.{kind_key}.notice_channels.{i}: {channel!r} is public, and this kind's notices answer "
                    f"one customer (notice_audience: customer); use {', '.join(CUSTOMER_NOTICE_CHANNELS)}"
                )
    approval = section("notices").get("approval") or {}
    for i, role in enumerate(approval.get("roles") or ()):
        if roles and role not in roles:
            problems.append(f"notices.approval.roles.{i}: unknown role {role!r} (roles: {', '.join(roles)})")
    escalation = section("escalation")
    for i, level in enumerate(escalation.get("levels") or ()):
        role = level.get("role") if isinstance(level, dict) else None
        if roles and role is not None and role not in roles:
            problems.append(f"escalation.levels.{i}.role: unknown role {role!r} (roles: {', '.join(roles)})")
    seen: dict[str, str] = {}
    for role_key, role in roles.items():
        aliases = role.get("aliases") or () if isinstance(role, dict) else ()
        for name in (role_key, *aliases):
            norm = normalise_word(str(name))
            if norm in seen and seen[norm] != role_key:
                problems.append(f"roles.{role_key}.aliases: {name!r} already names role {seen[norm]!r}")
            seen[norm] = role_key
    return (
        problems
        + _alerts_problems(section("alerts"), kinds, severities)
        + _intake_problems(section("intake"), kinds, severities)
        + _surge_problems(section("surge"), kinds, severities)
        + drill_problems(data)
    )


def _surge_problems(surge: dict[str, Any], kinds: dict[str, Any], severities: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    if not surge:  # not written: the surge plan is off where the playbook has no surge kind (see Playbook)
        return problems
    surge_kind = surge.get("kind", "surge")
    if kinds and surge.get("enabled", True) and surge_kind not in kinds:
        problems.append(f"surge.kind: {surge_kind!r} is not one of kinds ({', '.join(kinds)})")
    if severities and "severity" in surge and surge["severity"] not in severities:
        problems.append(f"surge.severity: {surge['severity']!r} is not one of severities ({', '.join(severities)})")
    return problems


def leadership_level_gaps(playbook: Playbook, i: int, level: EscalationLevel) -> list[str]:
    """How a `leadership: true` level falls back when the surge plan names no leaders (nothing when it names
    some): the leadership channel's members and the admins are paged, as for a surge proposal. For the operator
    (check-config), like the other warnings."""
    surge = playbook.surge
    if surge.leaders or surge.leaders_usergroup:
        return []
    return [
        f"escalation.levels.{i} ({level.name}): pages the leadership group, which names nobody, so the members "
        f"of #{surge.leadership_channel} and the admins are paged; add surge.leaders: [U012ABCDEF] or "
        "surge.leaders_usergroup:"
    ]


def playbook_warnings(playbook: Playbook) -> list[str]:
    """What loads but leaves nobody in charge or nobody to page, one line per problem, field path first.

    Warnings, not errors: the shipped playbook has no people in it until a bank fills them in.
    """
    warnings: list[str] = []
    if not playbook.admins:
        warnings.append("admins: nobody; add Slack user IDs (admins: [U012ABCDEF]) so someone can act on any incident")
    for key, role in playbook.roles.items():
        if role.default_owners or role.usergroup:
            continue
        if key == playbook.lead_role:
            why = "the reporter leads each incident until someone takes over"
        elif key in playbook.approval_roles:
            why = "it approves notices, so only the lead or an admin can give it to someone"
        else:
            why = "it stays open until someone takes it"
        warnings.append(f"roles.{key}.default_owners: nobody by default ({why}); add default_owners: or usergroup:")
    for i, level in enumerate(playbook.escalation.levels):
        if level.owner or level.users or level.usergroup:
            continue
        if level.role == playbook.lead_role:
            continue  # there is always a lead (the reporter at least)
        if level.leadership:
            warnings += leadership_level_gaps(playbook, i, level)
            continue
        if level.role is not None:
            spec = playbook.roles.get(level.role)
            if spec is not None and (spec.default_owners or spec.usergroup):
                continue
            warnings.append(
                f"escalation.levels.{i} ({level.name}): reaches only whoever holds {level.role!r}, which has no "
                "default owner; add users: [U012ABCDEF] or usergroup:"
            )
            continue
        warnings.append(f"escalation.levels.{i} ({level.name}): reaches nobody; add users: [U012ABCDEF] or usergroup:")
    if playbook.surge.enabled and not (playbook.surge.leaders or playbook.surge.leaders_usergroup):
        warnings.append(
            "surge.leaders: nobody; the members of #"
            f"{playbook.surge.leadership_channel} decide on surge proposals, and the bot creates that channel public "
            "with nobody in it: nobody is paged or can Activate until people join it, then anyone who joins can; "
            "add leaders: [U012ABCDEF] or leaders_usergroup:"
        )
    if playbook.alerts.kind not in playbook.kinds:
        warnings.append(
            f"alerts.kind: {playbook.alerts.kind!r} is not one of kinds; Alertmanager's webhook is refused until "
            "alerts.kind names one"
        )
    warnings += _intake_warnings(playbook)
    return warnings + drill_warnings(playbook)


def _intake_warnings(playbook: Playbook) -> list[str]:
    """An incident the intake opens is reported by the bot, which never leads: someone else must."""
    intake = playbook.intake
    if not intake.enabled or not intake.rules or intake.leads:
        return []
    lead = playbook.roles.get(playbook.lead_role)
    if lead is not None and (lead.default_owners or lead.usergroup):
        return []
    return [
        f"intake.leads: nobody leads the incidents complaints open (roles.{playbook.lead_role} has no default "
        f"owner either); they wait in #{intake.channel} until someone takes the lead; add leads: [U012ABCDEF]"
    ]


def normalise_word(word: str) -> str:
    return re.sub(r"[\s_\-&]+", "", word.strip().lower())


def _node_at(node: yaml.Node | None, loc: tuple[int | str, ...]) -> yaml.Node | None:
    """Follow a pydantic error location through the composed YAML to find its line."""
    best = node
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            nxt = node.value[part]
        else:
            nxt = None
        if nxt is None:
            break
        node = best = nxt
    return best


def _path(problem: str) -> tuple[int | str, ...]:
    """The field path a 'a.b.0: message' problem line starts with."""
    return tuple(int(p) if p.isdigit() else p for p in problem.split(":", 1)[0].split("."))


def _format_loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def load_playbook_text(text: str, source: str = "config.yaml") -> Playbook:
    """Parse and validate playbook YAML; raise ConfigError listing every problem with field and line."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(source, [f"(yaml){where}: {getattr(exc, 'problem', None) or exc}"]) from None
    if not isinstance(data, dict):
        raise ConfigError(source, ["(top level): the playbook must be a mapping with version, roles, kinds…"])
    try:
        return Playbook.model_validate(data)
    except ValidationError as exc:
        problems: list[str] = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            msg = str(err["msg"]).removeprefix("Value error, ")
            if not loc:  # cross-reference errors name their own field paths, one per line
                problems.extend(_with_line(line, _node_at(root, _path(line))) for line in msg.splitlines())
                continue
            problems.append(_with_line(f"{_format_loc(loc)}: {msg}", _node_at(root, loc)))
        for line in cross_reference_problems(data):
            located = _with_line(line, _node_at(root, _path(line)))
            if located not in problems:
                problems.append(located)
        raise ConfigError(source, problems) from None


def _with_line(message: str, node: yaml.Node | None) -> str:
    if node is None:
        return message
    path, _, rest = message.partition(":")
    return f"{path} (line {node.start_mark.line + 1}):{rest}"


def load_playbook(path: str | Path) -> Playbook:
    """Load the playbook file; a missing or unreadable file is a ConfigError too."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(p), [f"(file): cannot read it ({exc.strerror}); set INCIDENT_DESK_CONFIG"]) from None
    return load_playbook_text(text, str(p))


@dataclass(frozen=True)
class Settings:
    """Runtime settings from the environment; secrets are never shown by repr."""

    bot_token: str | None = field(default=None, repr=False)
    signing_secret: str | None = field(default=None, repr=False)
    app_token: str | None = field(default=None, repr=False)
    slack_api_url: str = DEFAULT_SLACK_API_URL
    database_url: str = "sqlite:///incident-desk.db"
    config_path: Path = Path("config.yaml")
    port: int = 3000
    public_url: str | None = None  # the status page's address from outside (links and Atom ids)
    # the bearer token of the intake API (POST /api/v1/complaints); the API is off without it
    intake_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        port_text = env.get("PORT", "3000")
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ConfigError("environment", [f"PORT: {port_text!r} is not a port number; use e.g. PORT=3000"])
        api_url = env.get("SLACK_API_URL") or DEFAULT_SLACK_API_URL
        if not re.match(r"^https?://", api_url):
            raise ConfigError("environment", [f"SLACK_API_URL: {api_url!r} must start with http:// or https://"])
        public_url = (env.get("INCIDENT_DESK_PUBLIC_URL") or "").strip().rstrip("/") or None
        if public_url is not None:
            parts = urllib.parse.urlsplit(public_url)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
                raise ConfigError(
                    "environment",
                    [
                        f"INCIDENT_DESK_PUBLIC_URL: {public_url!r} is not a base URL; "
                        "use e.g. https://status.example-bank.com"
                    ],
                )
        return cls(
            bot_token=env.get("SLACK_BOT_TOKEN") or None,
            signing_secret=env.get("SLACK_SIGNING_SECRET") or None,
            app_token=env.get("SLACK_APP_TOKEN") or None,
            slack_api_url=api_url if api_url.endswith("/") else api_url + "/",
            database_url=env.get("DATABASE_URL") or "sqlite:///incident-desk.db",
            config_path=Path(env.get("INCIDENT_DESK_CONFIG") or "config.yaml"),
            port=int(port_text),
            public_url=public_url,
            intake_token=(env.get("INCIDENT_DESK_INTAKE_TOKEN") or "").strip() or None,
        )

    def require_slack(self) -> None:
        """Refuse to start against Slack without the credentials that mode needs."""
        missing = [name for name, value in (("SLACK_BOT_TOKEN", self.bot_token),) if not value]
        if not self.app_token and not self.signing_secret:
            missing.append("SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN for Socket Mode)")
        if missing:
            raise ConfigError(
                "environment",
                [
                    f"{name}: not set; export it, or run `incident-desk run --offline` to try the bot"
                    for name in missing
                ],
            )
