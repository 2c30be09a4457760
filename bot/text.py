"""Text rules shared by everything the bot writes: Slack escaping, identifier masking, channel names."""

from __future__ import annotations

import re
import unicodedata

CHANNEL_NAME_MAX = 80
SLUG_MAX = 40  # long enough to recognise, short enough to read in the sidebar
CHANNEL_NAME_RE = re.compile(r"^[a-z0-9_-]{1,80}$")

_EMAIL = re.compile(
    r"(?<![\w.+-])([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})"
)
# Mainland China resident ID: 17 digits and a check digit or X.
_CN_ID = re.compile(r"(?<![\w])(\d{17}[\dXx])(?![\w])")
# Mainland mobile numbers, with or without +86.
_CN_MOBILE = re.compile(r"(?<![\w+])((?:\+?86[ -]?)?)(1[3-9]\d)(\d{4})(\d{4})(?![\w])")
# International numbers written with a plus sign.
_INTL_PHONE = re.compile(r"(?<![\w])\+(?:\d[ -]?){7,14}\d(?![\w])")
# Bank card and account numbers: 10 to 23 digits in a row, or card-style groups of four
# (so dates and times such as 2026-11-24 10:00 are left alone).
_ACCOUNT = re.compile(r"(?<![\w])(?:\d{10,23}|\d{4}(?:[ -]\d{4}){2,4}(?:[ -]\d{1,4})?)(?![\w])")


def escape_mrkdwn(text: str) -> str:
    """Escape the three characters Slack treats as control: no `<!channel>`, no injected links."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _last4(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "****" + digits[-4:]


def mask_identifiers(text: str) -> str:
    """Mask customer identifiers (cards, accounts, ID numbers, phones, e-mails) keeping only a hint."""
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    text = _CN_ID.sub(lambda m: "*" * 14 + m.group(1)[-4:], text)
    text = _CN_MOBILE.sub(lambda m: f"{m.group(1)}{m.group(2)}****{m.group(4)}", text)
    text = _INTL_PHONE.sub(_last4, text)
    return _ACCOUNT.sub(_last4, text)


def safe_text(text: str) -> str:
    """User text as the bot may show it in Slack: identifiers masked, then escaped for mrkdwn."""
    return escape_mrkdwn(mask_identifiers(text))


def truncate(text: str, limit: int) -> str:
    """Cut text to at most `limit` characters, at a word boundary when one is near, with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit * 0.6:
        cut = cut[:space]
    return cut.rstrip() + "…"


def slugify(text: str) -> str:
    """A lowercase a-z0-9 slug of the (masked) title; non-Latin text folds away."""
    folded = unicodedata.normalize("NFKD", mask_identifiers(text)).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-")


def sanitize_channel_name(name: str) -> str:
    """Force a string into Slack's channel-name rules: a-z0-9-_, at most 80, not empty."""
    name = re.sub(r"[^a-z0-9_-]+", "-", name.lower())
    name = re.sub(r"-{2,}", "-", name).strip("-_")
    return name[:CHANNEL_NAME_MAX].rstrip("-_") or "incident"


def build_channel_name(
    pattern: str, *, date: str, number: int, title: str, kind: str, severity: str, suffix: str = ""
) -> str:
    """The incident channel's name from the playbook pattern; the slug absorbs all the truncation."""
    fixed = pattern.format(date=date, number=number, slug="", kind=kind, severity=severity) + suffix
    budget = min(SLUG_MAX, max(0, CHANNEL_NAME_MAX - len(sanitize_channel_name(fixed)) - 1))
    slug = slugify(title)
    if len(slug) > budget:
        cut = slug[: budget + 1].rfind("-")
        slug = slug[: cut if cut > budget * 0.6 else budget]
    slug = (slug.strip("-") or kind)[:budget].strip("-")
    name = sanitize_channel_name(
        pattern.format(date=date, number=number, slug=slug, kind=kind, severity=severity) + suffix
    )
    if suffix and not name.endswith(sanitize_channel_name(suffix)):
        name = sanitize_channel_name(name[: CHANNEL_NAME_MAX - len(suffix)] + suffix)
    return name
