"""Parse slash-command text into a typed command, or raise UserInputError saying what to type.

Pure: no I/O, so every input can be checked by property tests and answered inside the ack.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from bot.core.config import NOTICE_STAGES, Playbook
from bot.core.errors import UserInputError
from bot.core.inputs import FIRST_DAY, LAST_DAY, check_text, day_in_range
from bot.core.text import fold_digits, safe_snippet

MENTION_RE = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
HANDLE_RE = re.compile(r"^@([\w.\-]{1,80})$")
SEV_TOKEN_RE = re.compile(r"^sev\d*$", re.IGNORECASE)
NUMBER_RE = re.compile(r"^#?(\d{1,9})$")
TITLE_MAX = 2000
TEXT_MAX = 3000

SUBCOMMANDS = (
    "open",
    "assign",
    "sev",
    "update",
    "resolve",
    "close",
    "status",
    "timeline",
    "list",
    "repair",
    "deadlines",
    "done",
    "solution",
    "ack",
    "pause",
    "resume",
    "notice",
    "satisfaction",
    "action",
    "review",
    "report",
    "help",
)
REVIEW_VERBS = ("post", "export", "done")
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
class Command:
    name: str
    kind: str | None = None
    severity: str | None = None
    category: str | None = None
    title: str | None = None
    role: str | None = None
    user: UserRef | None = None
    text: str | None = None
    number: int | None = None
    stage: str | None = None
    channels: tuple[str, ...] = ()  # notice channels; empty means every channel the playbook configures
    locales: tuple[str, ...] = ()
    due: str | None = None  # an action item's due time, as typed
    dates: tuple[date, ...] = ()  # a report's first and last day


def parse_severity(token: str, playbook: Playbook) -> str:
    """'2', 'sev2', 'SEV2' → 'sev2', if the playbook has it."""
    t = token.strip().lower()
    sev = f"sev{t}" if t.isdigit() else t
    if sev not in playbook.severities:
        allowed = ", ".join(playbook.severities)
        raise UserInputError(f"Unknown severity `{_q(token)}`. Use one of {allowed} (or just the number), e.g. `sev2`.")
    return sev


def parse_user_ref(token: str) -> UserRef:
    if token.lower() in ("me", "myself"):
        return UserRef(is_me=True)
    if m := MENTION_RE.match(token):
        return UserRef(user_id=m.group(1))
    if m := HANDLE_RE.match(token):
        return UserRef(handle=m.group(1))
    raise UserInputError(
        f"`{_q(token)}` is not a person. Mention them with @, e.g. `/incident assign lead @alice`, or say `me`."
    )


def _optional_number(rest: str, name: str) -> Command:
    if not rest:
        return Command(name)
    if m := NUMBER_RE.match(rest):
        return Command(name, number=int(m.group(1)))
    raise UserInputError(f"`/incident {name}` takes an incident number or nothing, e.g. `/incident {name} 42`.")


def _require_text(rest: str, name: str, example: str) -> str:
    if not rest:
        raise UserInputError(f"Say what to {name}: `/incident {name} {example}`.")
    if len(rest) > TEXT_MAX:
        raise UserInputError(
            f"That text is {len(rest)} characters; keep it under {TEXT_MAX} (put details in the channel)."
        )
    return rest


def parse_open(words: list[str], playbook: Playbook, *, kind: str | None = None) -> Command:
    """`[kind] [sevN] [cat:<category>] <title>`; with `kind` given (an alias command) the kind is fixed."""
    rest = list(words)
    if kind is None:
        if not rest:
            return Command("open_modal")
        word = rest.pop(0)
        kind = word.lower()
        if kind not in playbook.kinds:
            hint = difflib.get_close_matches(kind, list(playbook.kinds), n=1)
            suggestion = f" Did you mean `{hint[0]}`?" if hint else ""
            raise UserInputError(
                f"Unknown kind `{_q(word)}`.{suggestion} Kinds: {', '.join(playbook.kinds)}. "
                f"Example: `/incident open complaint sev2 Card payments failing`."
            )
    severity = None
    if rest and SEV_TOKEN_RE.match(rest[0]):
        severity = parse_severity(rest.pop(0), playbook)
    category = None
    if rest and rest[0].lower().startswith(("cat:", "category:")):
        category = rest.pop(0).split(":", 1)[1].lower()
        categories = playbook.kinds[kind].categories
        if category not in categories:
            allowed = ", ".join(categories) or "none for this kind"
            raise UserInputError(f"Unknown category `{_q(category)}` for {kind}. Categories: {allowed}.")
    title = " ".join(rest).strip()
    if not title:
        raise UserInputError(
            f"Give the incident a title: `/incident open {kind} {severity or 'sev3'} Card payments failing`."
        )
    if len(title) > TITLE_MAX:  # never cut silently: a cut can leave part of a number nobody recognises
        raise UserInputError(
            f"That title is {len(title)} characters; keep it under {TITLE_MAX} and put the details in the "
            "incident channel with `/incident update <text>`."
        )
    return Command("open", kind=kind, severity=severity, category=category, title=title)


def parse_notice(words: list[str], playbook: Playbook) -> Command:
    """`notice <stage> [channel…] [locale…]`."""
    example = "Example: `/incident notice initial status_page email zh-CN`."
    if not words:
        raise UserInputError(
            f"Say which notice: `/incident notice <{'|'.join(NOTICE_STAGES)}> [channels] [locales]`. {example}"
        )
    stage = words[0].lower()
    if stage not in NOTICE_STAGES:
        hint = difflib.get_close_matches(stage, NOTICE_STAGES, n=1)
        suggestion = f" Did you mean `{hint[0]}`?" if hint else ""
        raise UserInputError(
            f"Unknown stage `{_q(words[0])}`.{suggestion} Stages: {', '.join(NOTICE_STAGES)}. {example}"
        )
    spec = playbook.notices
    locales_by_lower = {loc.lower(): loc for loc in spec.locales}
    channels: list[str] = []
    locales: list[str] = []
    for word in words[1:]:
        lower = word.lower()
        channel = CHANNEL_ALIASES.get(lower, lower)
        if channel in spec.channels:
            channels.append(channel)
        elif lower in locales_by_lower:
            locales.append(locales_by_lower[lower])
        else:
            raise UserInputError(
                f"`{_q(word)}` is neither a notice channel ({', '.join(spec.channels)}) nor a locale "
                f"({', '.join(spec.locales)}). {example}"
            )
    return Command(
        "notice", stage=stage, channels=tuple(dict.fromkeys(channels)), locales=tuple(dict.fromkeys(locales))
    )


def parse_satisfaction(words: list[str]) -> Command:
    """`satisfaction <1-5> [comment]`."""
    score = unicodedata.normalize("NFKC", words[0]) if words else ""  # full-width ４ is a 4
    if score not in ("1", "2", "3", "4", "5"):
        raise UserInputError(
            "Give the customer's rating from 1 to 5, then any comment: "
            "`/incident satisfaction 4 Refund was quick, wanted an earlier call`."
        )
    return Command("satisfaction", number=int(score), text=" ".join(words[1:])[:TEXT_MAX])


GLUED_MENTION_RE = re.compile(r"^(.+?)(<@[UW][A-Z0-9]+(?:\|[^>]*)?>)$")


def parse_action(words: list[str]) -> Command:
    """`action <text> @owner <due>`; the due time is checked by the service (it needs the clock)."""
    example = "Example: `/incident action Add an alert on clearing retries @zhang.tao 5d`."
    if len(words) >= 2 and (glued := GLUED_MENTION_RE.match(words[-2])):  # Chinese needs no space before it
        words = [*words[:-2], glued.group(1), glued.group(2), words[-1]]
    if len(words) < 3:
        raise UserInputError(f"Say what, who and by when: `/incident action <text> @owner <due>`. {example}")
    user = parse_user_ref(words[-2])
    text = " ".join(words[:-2]).strip()
    if len(text) > ACTION_TEXT_MAX:
        raise UserInputError(f"Keep an action item under {ACTION_TEXT_MAX} characters (it is {len(text)}). {example}")
    return Command("action", text=text, user=user, due=words[-1])


def parse_report(words: list[str]) -> Command:
    """`report [from] [to]`: days as YYYY-MM-DD in the playbook's timezone, both included."""
    if len(words) > 2:
        raise UserInputError(
            "`/incident report [from] [to]` takes at most two dates, e.g. `/incident report 2026-11-01`."
        )
    days = []
    for word in words:
        try:
            days.append(date.fromisoformat(word))
        except ValueError:
            raise UserInputError(
                f"`{_q(word)}` is not a date. Use `/incident report 2026-11-01 2026-11-30` (from, to; both included)."
            ) from None
        if not day_in_range(days[-1]):
            raise UserInputError(
                f"Give days between {FIRST_DAY.isoformat()} and {LAST_DAY.isoformat()}, "
                "e.g. `/incident report 2026-11-01 2026-11-30`."
            )
    if len(days) == 2 and days[1] < days[0]:
        raise UserInputError("The report's end is before its start; give the earlier date first.")
    return Command("report", dates=tuple(days))


def parse_command(text: str, playbook: Playbook, *, command: str = "/incident") -> Command:
    """Parse the text of `/incident`, `/complaint` or `/outage`."""
    text = check_text((text or "").strip())  # a pasted NUL would break PostgreSQL: say so, keep nothing
    words = fold_digits(text).split()  # what a Chinese keyboard types: ｓｅｖ２, ５ｄ, ２０２６-１１-０１
    if command in ("/complaint", "/outage"):
        kind = command.lstrip("/")
        if kind not in playbook.kinds:
            raise UserInputError(f"This playbook has no `{kind}` kind; use `/incident open <kind> <title>`.")
        if not words:
            raise UserInputError(f"Give a title: `{command} sev2 Card payments failing`.")
        return parse_open(words, playbook, kind=kind)
    if not words:
        return Command("help")
    name = words[0].lower()
    rest_words = words[1:]
    rest = text[len(words[0]) :].strip()
    if name == "open":
        return parse_open(rest_words, playbook)
    if name == "assign":
        if len(rest_words) < 2:
            raise UserInputError("Say which role and who: `/incident assign tech @alice` (or `me`).")
        user = parse_user_ref(rest_words[-1])
        role_word = " ".join(rest_words[:-1])
        role = playbook.role_for(role_word)
        if role is None:
            roles = ", ".join(playbook.roles)
            raise UserInputError(
                f"Unknown role `{_q(role_word)}`. Roles: {roles}. Example: `/incident assign tech @alice`."
            )
        return Command("assign", role=role, user=user)
    if name == "sev":
        if len(rest_words) != 1:
            raise UserInputError("Give one severity: `/incident sev 2` (1 is the most severe).")
        return Command("sev", severity=parse_severity(rest_words[0], playbook))
    if name == "update":
        return Command("update", text=_require_text(rest, "update", "Gateway restarted, watching error rates"))
    if name == "resolve":
        return Command("resolve", text=_require_text(rest, "resolve", "Rolled back the 10:05 release"))
    if name == "done":
        if not rest:
            raise UserInputError(
                "Say which deadline: `/incident done first_response` (`/incident deadlines` lists them)."
            )
        return Command("done", text=rest)
    if name == "pause":
        return Command("pause", text=_require_text(rest, "pause", "Waiting for the customer's bank statement"))
    if name == "solution":
        if not rest:
            raise UserInputError(
                "Say what solution the customer was given: `/incident solution Refunded the double debit`."
            )
        return Command("solution", text=_require_text(rest, "solution", "Refunded the double debit"))
    if name == "notice":
        return parse_notice(rest_words, playbook)
    if name in ("satisfaction", "csat"):
        return parse_satisfaction(rest_words)
    if name == "action":
        return parse_action(rest_words)
    if name == "report":
        return parse_report(rest_words)
    if name == "review":
        verb = rest_words[0].lower() if len(rest_words) == 1 else ""
        if verb not in REVIEW_VERBS:
            raise UserInputError(
                "`/incident review post` posts the draft now, `/incident review export` shares it as a Markdown "
                "file, `/incident review done` (the lead) marks the review complete."
            )
        return Command("review", text=verb)
    if name in ("close", "list", "help", "ack", "resume"):
        if rest:
            raise UserInputError(f"`/incident {name}` takes nothing after it.")
        return Command(name)
    if name in ("status", "timeline", "repair", "deadlines"):
        return _optional_number(rest, name)
    hint = difflib.get_close_matches(name, SUBCOMMANDS, n=1)
    suggestion = f"Did you mean `/incident {hint[0]}`? " if hint else ""
    raise UserInputError(f"I don't know `{_q(words[0])}`. {suggestion}Type `/incident help` for every command.")
