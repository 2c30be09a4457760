"""The command line's grammar: typed arguments, and the parser the registry's declarations drive.

Pure: no I/O, so every input can be checked by property tests and answered inside the ack. The commands
themselves (their arguments, permission, service call and help line) are declared once, in
bot/slack/registry.py; this module only knows how to read words into their typed arguments.

Every refusal says what to type instead, in the reader's language (`bot.core.i18n`).
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import Enum
from typing import Any, Generic, TypeVar, cast

from bot.core.config import NOTICE_STAGES, Playbook
from bot.core.errors import UserInputError
from bot.core.i18n import N_, _
from bot.core.inputs import FIRST_DAY, LAST_DAY, check_text, day_in_range
from bot.core.text import escape_mrkdwn, fold_digits, safe_snippet

MENTION_RE = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
GLUED_MENTION_RE = re.compile(r"^(.+?)(<@[UW][A-Z0-9]+(?:\|[^>]*)?>)$")  # Chinese needs no space before it
HANDLE_RE = re.compile(r"^@([\w.\-]{1,80})$")
SEV_TOKEN_RE = re.compile(r"^sev\d*$", re.IGNORECASE)
NUMBER_RE = re.compile(r"^#?(\d{1,9})$")
TITLE_MAX = 2000
TEXT_MAX = 3000
ACTION_TEXT_MAX = 200
CHANNEL_ALIASES = {
    "status": "status_page",
    "status-page": "status_page",
    "statuspage": "status_page",
    "e-mail": "email",
    "mail": "email",
    "broadcast": "internal",
    "complaint-system": "complaint_system",
    "complaints": "complaint_system",
}
INCIDENT = "/incident"

T = TypeVar("T")


def _q(word: str) -> str:
    """A user's word quoted back in an error: masked, escaped, backticks removed, kept short."""
    return safe_snippet(word.replace("`", "'"), 40)


@dataclass(frozen=True)
class UserRef:
    """Who a command names: a Slack user ID from an escaped mention, a bare @handle, or `me`."""

    user_id: str | None = None
    handle: str | None = None
    is_me: bool = False


@dataclass(frozen=True)
class NoticeTargets:
    """The channels and locales a notice is drafted for; empty means every one the playbook configures."""

    channels: tuple[str, ...] = ()
    locales: tuple[str, ...] = ()


# ---- typed arguments --------------------------------------------------------------------------------------


class Place(Enum):
    """Where an argument's words are: taken from the front, the free text in the middle, or from the back."""

    FRONT = "front"
    REST = "rest"
    BACK = "back"


@dataclass(frozen=True)
class Context:
    """What an argument's parser sees: the playbook, and the arguments parsed before it."""

    playbook: Playbook
    values: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class Arg(Generic[T]):
    """One typed argument: where its words are, how they become a value, and how usage shows it."""

    key: str
    usage: str  # e.g. N_("<title>"), translated where shown; literal keywords (`[sev1-4]`) are not marked
    parse: Callable[[str, Context], T]  # the word (or the free text) → value, or a UserInputError
    place: Place = Place.FRONT
    required: bool = True  # missing → the command's own refusal (a REST arg that is not required may be empty)
    fits: Callable[[str], bool] | None = None  # an optional FRONT word is this argument only if it fits
    raw: bool = False  # REST: the text as typed (spacing and line breaks kept), not the words re-joined
    glued: Callable[[str], tuple[str, str] | None] | None = None  # BACK: split it off a word it is glued to


@dataclass(frozen=True)
class Command:
    """A parsed command: its name and its arguments' values (absent optional ones are left out)."""

    name: str
    values: Mapping[str, Any] = field(default_factory=dict)

    def get(self, arg: Arg[T]) -> T:
        """The value of `arg` (None for an optional argument not given)."""
        return cast(T, self.values.get(arg.key))

    def __getitem__(self, key: str) -> Any:
        return self.values.get(key)


@dataclass(frozen=True, kw_only=True)
class Syntax:
    """How a subcommand is typed. The registry's declarations extend this with what the command does."""

    name: str
    args: tuple[Arg[Any], ...] = ()
    aliases: tuple[str, ...] = ()
    wrong: str = ""  # N_: the refusal when the words do not fit the arguments (default: the usage line)
    empty: Syntax | None = None  # what the command is with nothing after it (open: the form)
    shortcuts: tuple[str, ...] = ()  # slash commands that are this one with its first argument fixed

    def usage(self, command: str = INCIDENT, *, skip: int = 0) -> str:
        """`/incident assign <role> <@user|me>`, in the current language (not escaped)."""
        words = [command if command != INCIDENT else f"{INCIDENT} {self.name}"]
        words += [_(arg.usage) for arg in self.args[skip:]]
        return " ".join(words)

    def refusal(self) -> str:
        """What to say when the words do not fit: the declared message, else the usage line."""
        if self.wrong:
            return _(self.wrong, name=self.name)
        if not self.args:
            return _("`/incident {name}` takes nothing after it.", name=self.name)
        return _("Type it as `{usage}`.", usage=escape_mrkdwn(self.usage()))


# ---- the argument types -----------------------------------------------------------------------------------


def parse_severity(token: str, playbook: Playbook) -> str:
    """'2', 'sev2', 'SEV2' → 'sev2', if the playbook has it."""
    t = token.strip().lower()
    sev = f"sev{t}" if t.isdigit() else t
    if sev not in playbook.severities:
        raise UserInputError(
            _(
                "Unknown severity `{word}`. Use one of {allowed} (or just the number), e.g. `sev2`.",
                word=_q(token),
                allowed=", ".join(playbook.severities),
            )
        )
    return sev


def parse_user_ref(token: str, _context: Context | None = None) -> UserRef:
    """A mention (`<@U123>`), a bare `@handle`, or `me`."""
    if token.lower() in ("me", "myself"):
        return UserRef(is_me=True)
    if m := MENTION_RE.match(token):
        return UserRef(user_id=m.group(1))
    if m := HANDLE_RE.match(token):
        return UserRef(handle=m.group(1))
    raise UserInputError(
        _(
            "`{word}` is not a person. Mention them with @, e.g. `/incident assign lead @alice`, or say `me`.",
            word=_q(token),
        )
    )


def split_glued_mention(word: str) -> tuple[str, str] | None:
    """`增加告警<@U123>` → (`增加告警`, `<@U123>`): Chinese text needs no space before a mention."""
    m = GLUED_MENTION_RE.match(word)
    return (m.group(1), m.group(2)) if m else None


def parse_kind(word: str, context: Context) -> str:
    kinds = context.playbook.kinds
    kind = word.lower()
    if kind not in kinds:
        hint = difflib.get_close_matches(kind, list(kinds), n=1)
        suggestion = _(" Did you mean `{hint}`?", hint=hint[0]) if hint else ""
        raise UserInputError(
            _(
                "Unknown kind `{word}`.{suggestion} Kinds: {kinds}. "
                "Example: `/incident open complaint sev2 Card payments failing`.",
                word=_q(word),
                suggestion=suggestion,
                kinds=", ".join(kinds),
            )
        )
    return kind


def parse_category(word: str, context: Context) -> str:
    """`cat:<category>`, one of the categories of the kind given before it."""
    kind = str(context.values["kind"])
    category = word.split(":", 1)[1].lower()
    categories = context.playbook.kinds[kind].categories
    if category not in categories:
        raise UserInputError(
            _(
                "Unknown category `{category}` for {kind}. Categories: {allowed}.",
                category=_q(category),
                kind=kind,
                allowed=", ".join(categories) or _("none for this kind"),
            )
        )
    return category


def parse_title(text: str, context: Context) -> str:
    """Never cut silently: a cut can leave part of a number nobody recognises."""
    title = text.strip()
    if not title:
        severity = context.values.get("severity") or "sev3"
        raise UserInputError(
            _(
                "Give the incident a title: `/incident open {kind} {severity} Card payments failing`.",
                kind=context.values["kind"],
                severity=severity,
            )
        )
    if len(title) > TITLE_MAX:
        raise UserInputError(
            _(
                "That title is {length} characters; keep it under {limit} and put the details in the incident "
                "channel with `/incident update <text>`.",
                length=len(title),
                limit=TITLE_MAX,
            )
        )
    return title


def free_text(missing: str) -> Callable[[str, Context], str]:
    """Free text (Chinese with identifiers glued in is fine; it is masked wherever it is shown), required:
    `missing` (N_) is the refusal when there is none."""

    def parse(text: str, _context: Context) -> str:
        if not text:
            raise UserInputError(_(missing))
        if len(text) > TEXT_MAX:
            raise UserInputError(
                _(
                    "That text is {length} characters; keep it under {limit} (put details in the channel).",
                    length=len(text),
                    limit=TEXT_MAX,
                )
            )
        return text

    return parse


def parse_deadline_word(text: str, _context: Context) -> str:
    if not text:
        raise UserInputError(
            _("Say which deadline: `/incident done first_response` (`/incident deadlines` lists them).")
        )
    return text


def parse_role(text: str, context: Context) -> str:
    role = context.playbook.role_for(text)
    if role is None:
        raise UserInputError(
            _(
                "Unknown role `{word}`. Roles: {roles}. Example: `/incident assign tech @alice`.",
                word=_q(text),
                roles=", ".join(context.playbook.roles),
            )
        )
    return role


NUMBER_USAGE = N_("`/incident {name}` takes an incident number or nothing, e.g. `/incident {name} 42`.")


def incident_number(name: str) -> Callable[[str, Context], int]:
    """`42` or `#42`: the incident a read-only command is about, from any channel."""

    def parse(word: str, _context: Context) -> int:
        if m := NUMBER_RE.match(word):
            return int(m.group(1))
        raise UserInputError(_(NUMBER_USAGE, name=name))

    return parse


SATISFACTION_USAGE = N_(
    "Give the customer's rating from 1 to 5, then any comment: "
    "`/incident satisfaction 4 Refund was quick, wanted an earlier call`."
)


def parse_score(word: str, _context: Context) -> int:
    score = unicodedata.normalize("NFKC", word)  # full-width ４ is a 4
    if score not in ("1", "2", "3", "4", "5"):
        raise UserInputError(_(SATISFACTION_USAGE))
    return int(score)


NOTICE_EXAMPLE = N_("Example: `/incident notice initial status_page email zh-CN`.")


def parse_stage(word: str, _context: Context) -> str:
    stage = word.lower()
    if stage not in NOTICE_STAGES:
        hint = difflib.get_close_matches(stage, NOTICE_STAGES, n=1)
        suggestion = _(" Did you mean `{hint}`?", hint=hint[0]) if hint else ""
        raise UserInputError(
            _(
                "Unknown stage `{word}`.{suggestion} Stages: {stages}. {example}",
                word=_q(word),
                suggestion=suggestion,
                stages=", ".join(NOTICE_STAGES),
                example=_(NOTICE_EXAMPLE),
            )
        )
    return stage


def parse_notice_targets(text: str, context: Context) -> NoticeTargets:
    """Each word a notice channel (or one of its aliases) or a locale, in any order."""
    spec = context.playbook.notices
    locales_by_lower = {loc.lower(): loc for loc in spec.locales}
    channels: list[str] = []
    locales: list[str] = []
    for word in text.split():
        lower = word.lower()
        channel = CHANNEL_ALIASES.get(lower, lower)
        if channel in spec.channels:
            channels.append(channel)
        elif lower in locales_by_lower:
            locales.append(locales_by_lower[lower])
        else:
            raise UserInputError(
                _(
                    "`{word}` is neither a notice channel ({channels}) nor a locale ({locales}). {example}",
                    word=_q(word),
                    channels=", ".join(spec.channels),
                    locales=", ".join(spec.locales),
                    example=_(NOTICE_EXAMPLE),
                )
            )
    return NoticeTargets(tuple(dict.fromkeys(channels)), tuple(dict.fromkeys(locales)))


REPORT_EXAMPLE = "`/incident report 2026-11-01 2026-11-30`"


def parse_day(word: str, context: Context) -> date:
    """A day as YYYY-MM-DD in the playbook's timezone; a second one may not be before the first."""
    try:
        day = date.fromisoformat(word)
    except ValueError:
        raise UserInputError(
            _("`{word}` is not a date. Use {example} (from, to; both included).", word=_q(word), example=REPORT_EXAMPLE)
        ) from None
    if not day_in_range(day):
        raise UserInputError(
            _(
                "Give days between {first} and {last}, e.g. {example}.",
                first=FIRST_DAY.isoformat(),
                last=LAST_DAY.isoformat(),
                example=REPORT_EXAMPLE,
            )
        )
    start = context.values.get("from")
    if start is not None and day < start:
        raise UserInputError(_("The report's end is before its start; give the earlier date first."))
    return day


# ---- the parser ---------------------------------------------------------------------------------------------


@dataclass
class _Word:
    """A word as folded for reading (`ｓｅｖ２` → `sev2`), and where it is in the text as typed."""

    text: str
    start: int
    end: int


def _words(folded: str) -> list[_Word]:
    return [_Word(m.group(), m.start(), m.end()) for m in re.finditer(r"\S+", folded)]


def _split_glued(syntax: Syntax, words: list[_Word]) -> None:
    """Split a BACK argument off the word it is glued to (a mention typed straight after Chinese text)."""
    back = [arg for arg in syntax.args if arg.place is Place.BACK]
    for i, arg in enumerate(back):
        at = len(words) - len(back) + i
        if arg.glued is None or at < 0:
            continue
        parts = arg.glued(words[at].text)
        if parts:
            head, tail = parts
            word = words[at]
            cut = word.start + len(head)
            words[at : at + 1] = [_Word(head, word.start, cut), _Word(tail, cut, word.end)]


def parse_arguments(
    syntax: Syntax, words: list[_Word], typed: str, playbook: Playbook, preset: Mapping[str, Any] | None = None
) -> Command:
    """Read `words` (after the command's name) into `syntax`'s arguments, or refuse saying what to type."""
    args = [arg for arg in syntax.args if preset is None or arg.key not in preset]
    if not words and syntax.empty is not None and preset is None:
        return Command(syntax.empty.name)
    _split_glued(syntax, words)
    front = [a for a in args if a.place is Place.FRONT]
    back = [a for a in args if a.place is Place.BACK]
    rest = next((a for a in args if a.place is Place.REST), None)
    needed = sum(a.required for a in front) + len(back) + (1 if rest is not None and rest.required else 0)
    most = len(front) + len(back)
    if len(words) < needed or (rest is None and len(words) > most):
        raise UserInputError(syntax.refusal())
    values: dict[str, Any] = dict(preset or {})
    tail = words[len(words) - len(back) :] if back else []
    words = words[: len(words) - len(back)]
    for arg, word in zip(back, tail, strict=True):
        values[arg.key] = arg.parse(word.text, Context(playbook, values))
    for arg in front:
        if not words or (arg.fits is not None and not arg.fits(words[0].text)):
            if arg.required:
                raise UserInputError(syntax.refusal())
            continue
        values[arg.key] = arg.parse(words.pop(0).text, Context(playbook, values))
    if rest is not None:
        text = typed[words[0].start : words[-1].end].strip() if rest.raw and words else " ".join(w.text for w in words)
        values[rest.key] = rest.parse(text, Context(playbook, values))
    elif words:
        raise UserInputError(syntax.refusal())
    return Command(syntax.name, {k: v for k, v in values.items() if v is not None})


def _by_name(syntaxes: Iterable[Syntax]) -> dict[str, Syntax]:
    table: dict[str, Syntax] = {}
    for syntax in syntaxes:
        for name in (syntax.name, *syntax.aliases):
            table[name] = syntax
    return table


HELP_WORDS = {"帮助", "帮忙", "命令", "用法", "说明", "?", "？"}  # what a Chinese keyboard types for help


def _kind_as_command(word: str, playbook: Playbook) -> UserInputError | None:
    """`/incident outage 手机银行登录失败`: a kind typed where the subcommand goes means `open` that kind;
    `/incident 帮助` means help. Say exactly what to type."""
    if word in HELP_WORDS:
        return UserInputError(_("To see every command, type `/incident help` (or just `/incident`)."))
    kind = next(
        (key for key, spec in playbook.kinds.items() if word.lower() == key or word in spec.names.values()),
        None,
    )
    if kind is None:
        return None
    return UserInputError(
        _(
            "To open an incident, start with `open`: `/incident open {kind} [sev1-4] <title>`, "
            "e.g. `/incident open {kind} sev2 Card payments failing`.",
            kind=kind,
        )
    )


def unknown_command(word: str, syntaxes: Sequence[Syntax]) -> UserInputError:
    """A refusal naming the closest command's usage line, if one is close."""
    table = _by_name(syntaxes)
    hint = difflib.get_close_matches(word.lower(), list(table), n=1)
    if hint:
        usage = escape_mrkdwn(table[hint[0]].usage())
        return UserInputError(
            _(
                "I don't know `{word}`. Did you mean `{usage}`? Type `/incident help` for every command.",
                word=_q(word),
                usage=usage,
            )
        )
    return UserInputError(_("I don't know `{word}`. Type `/incident help` for every command.", word=_q(word)))


def parse_command(
    text: str, playbook: Playbook, *, command: str = INCIDENT, syntaxes: Sequence[Syntax] | None = None
) -> Command:
    """Parse the text of `/incident` (or of a shortcut such as `/complaint`) with the registry's syntaxes."""
    if syntaxes is None:
        from bot.slack.registry import REGISTRY  # the registry imports the services, which import this module

        syntaxes = REGISTRY
    typed = check_text((text or "").strip())  # a pasted NUL would break PostgreSQL: say so, keep nothing
    folded = fold_digits(typed)  # what a Chinese keyboard types: ｓｅｖ２, ５ｄ, ２０２６-１１-０１
    if len(folded) != len(typed):  # folding is one character for one; if not, read the folded text as typed
        typed = folded
    words = _words(folded)
    if command != INCIDENT:
        return _shortcut(command, words, typed, playbook, syntaxes)
    if not words:
        return Command("help")
    table = _by_name(syntaxes)
    if len(words) > 1 and (pair := table.get(f"{words[0].text.lower()} {words[1].text.lower()}")) is not None:
        return parse_arguments(pair, words[2:], typed, playbook)  # a two-word subcommand: `surge end`
    syntax = table.get(words[0].text.lower())
    if syntax is None:
        raise _kind_as_command(words[0].text, playbook) or unknown_command(words[0].text, syntaxes)
    return parse_arguments(syntax, words[1:], typed, playbook)


def _shortcut(command: str, words: list[_Word], typed: str, playbook: Playbook, syntaxes: Sequence[Syntax]) -> Command:
    """`/complaint sev2 <title>` is `/incident open complaint sev2 <title>`."""
    syntax = next((s for s in syntaxes if command in s.shortcuts), None)
    kind = command.lstrip("/")
    if syntax is None or kind not in playbook.kinds:
        raise UserInputError(
            _("This playbook has no `{kind}` kind; use `/incident open <kind> <title>`.", kind=_q(kind))
        )
    if not words:
        raise UserInputError(_("Give a title: `{command} sev2 Card payments failing`.", command=command))
    return parse_arguments(syntax, words, typed, playbook, preset={syntax.args[0].key: kind})
