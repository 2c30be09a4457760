"""Text rules shared by everything the bot writes: Slack escaping, identifier masking, control characters,
channel names.

Masking works on digits, not words: in Python regexes `\\w` matches CJK characters, so a word boundary
never fires inside Chinese text (`卡号6222…被扣款`). Numbers are folded to ASCII (NFKC), bounded by
digits and joined across the separators people type (spaces, dashes, dots; slashes, underscores, full-width
commas, middle dots and `。` only into an identifier's shape; single digits spaced out), then judged by their
shape.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from datetime import date
from functools import lru_cache

CHANNEL_NAME_MAX = 80
SLUG_MAX = 40  # long enough to recognise, short enough to read in the sidebar
CHANNEL_NAME_RE = re.compile(r"^[a-z0-9_-]{1,80}$")

# C0 and C1 controls, DEL, lone surrogates and the two non-characters: invalid in XML, invisible or
# harmful elsewhere. Newline and tab are kept (they carry meaning in messages, e-mail and Markdown).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
# Invisible format characters pasted from web pages and chat apps (zero-width spaces and joiners, soft
# hyphens, bidirectional overrides, the BOM): they can split a number past the masking or spoof text.
FORMAT_CHARACTERS = "\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff"
_FORMAT = re.compile(f"[{FORMAT_CHARACTERS}]")

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})"
)
_DIGITS = re.compile(r"[0-9]+")
# What people type between the groups of one number: spaces (also no-break and ideographic), dashes, dots.
SEPARATORS = " \t\u00a0\u2007\u202f\u3000-\u2010\u2011\u2012\u2013\u2014\u2015\u2212."
_GAP = re.compile(f"[{re.escape(SEPARATORS)}]{{1,3}}")
# Separators that also divide the items of a list or a path (`1001/1002`, `1001，1002`, `a_1_2`) or end a
# sentence typed in Chinese punctuation mode (`。`): a number written with them is read as one only when it
# has the shape of a card, an ID or a mobile (see `_weak_ok`), and always with the same separator.
WEAK_SEPARATORS = "/\uff0f_\uff0c\u00b7\u30fb\u3002\uff61"
_WEAK_GAP = re.compile(f"[ \u3000]?([{re.escape(WEAK_SEPARATORS)}])[ \u3000]?")
# Digits with any of those separators between them: the only places a number can be (a fast pre-filter).
_CLUSTER = re.compile(f"[0-9]+(?:[{re.escape(SEPARATORS + WEAK_SEPARATORS)}]{{1,3}}[0-9]+)*")
# What every identifier in a cluster shows (see `_joins`, `_single_digits`): two groups of three digits or more,
# ten digits in a row, or many single digits spaced out. Clusters without it (dates, times) are not read.
_MAYBE = re.compile(
    f"[0-9]{{3}}[{re.escape(SEPARATORS + WEAK_SEPARATORS)}]{{1,3}}[0-9]{{3}}|[0-9]{{10}}"
    f"|(?:[0-9][{re.escape(SEPARATORS + WEAK_SEPARATORS)}]){{10}}[0-9]"
)
SINGLE_DIGITS_MIN = 11  # `1 3 8 1 2 3 4 5 6 7 8`: a list of single digits is never this long
# A Slack mention or channel link the bot wrote (`<@U0123ABCD>`, `<#C0123456789>`): its ID stays. An ID is
# at most 11 characters, so it can never hide an 11-digit mobile, an 18-character ID or a card number.
_SLACK_TOKEN = re.compile(r"<(?:[@#]|!subteam\^)[A-Z][A-Z0-9]{1,10}(?=[|>])")
_MOBILE = re.compile(r"((?:00)?86)?(1[3-9][0-9])[0-9]{4}([0-9]{4})")

_bank_patterns: tuple[re.Pattern[str], ...] = ()


def set_bank_patterns(patterns: Iterable[str]) -> None:
    """The playbook's own identifier formats (`masking.patterns`), masked before the built-in ones.

    Process-wide on purpose: masking runs at every output edge (templates, blocks, log records), deep in
    helpers that do not carry the playbook; the composition root sets it once per app."""
    global _bank_patterns
    _bank_patterns = tuple(re.compile(p, re.IGNORECASE) for p in patterns)  # people type pl12345678 too
    _mask_cached.cache_clear()  # what was masked under the old patterns is masked again


def strip_control(text: str) -> str:
    """Remove control and invisible format characters (keeping newline and tab) from text bound for any
    output format."""
    return _FORMAT.sub("", _CONTROL.sub("", text))


def strip_format(text: str) -> str:
    """Remove invisible format characters (zero-width spaces, bidi overrides…) from text people typed."""
    return _FORMAT.sub("", text)


@lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    decimal = unicodedata.decimal(ch, None)
    if decimal is not None:
        return str(decimal)
    folded = unicodedata.normalize("NFKC", ch)
    if folded.isascii() and (folded.isdigit() or (len(folded) == 1 and (folded.isalnum() or folded in "+-.@_%"))):
        return folded
    return ch


def fold_digits(text: str) -> str:
    """Full-width and other digits (and full-width letters, `＋`, `－`, `．`, `＠`) as ASCII; the rest as typed,
    so Chinese punctuation stays Chinese."""
    if text.isascii():
        return text
    return _FOLDABLE.sub(lambda m: _fold_char(m.group(0)), text)


# Characters that may fold: not ASCII, not CJK ideographs or CJK punctuation (none of which fold to ASCII
# digits, letters or `+-.@_%`; tests/test_masking.py checks every one). Skipping them keeps a 4 KB Chinese
# summary fast: masking runs on every message.
_FOLDABLE = re.compile("[^\x00-\x7f\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff]")


def escape_mrkdwn(text: str) -> str:
    """Escape the three characters Slack treats as control: no `<!channel>`, no injected links."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _keep_tail(match: str, keep: int = 4) -> str:
    chars = [c for c in match if c.isalnum()]
    return "****" + ("".join(chars[-keep:]) if len(chars) >= 2 * keep else "")


def _is_date(digits: str) -> bool:
    try:
        return 1900 <= int(digits[:4]) <= 2099 and bool(date(int(digits[:4]), int(digits[4:6]), int(digits[6:8])))
    except ValueError:
        return False


def _joins(
    text: str, run: list[tuple[int, int]], nxt: tuple[int, int], plus: bool, weak: list[str] | None = None
) -> bool:
    """Whether the next group of digits continues the number being read. `weak` (None: not allowed) collects
    the list-like separators used so far; a number keeps to one of them."""
    (ps, pe), (ns, ne) = run[-1], nxt
    gap = text[pe:ns]
    if not _GAP.fullmatch(gap):
        if plus or weak is None or not (m := _WEAK_GAP.fullmatch(gap)) or (weak and weak[0] != m.group(1)):
            return False
        weak.append(m.group(1))
    if plus:  # +44 20 7946 0958: phone numbers are grouped freely, up to E.164's 15 digits
        return sum(e - s for s, e in run) + ne - ns <= 15
    if len(run) == 1 and pe - ps == 8 and _is_date(text[ps:pe]):
        return False  # 20261124 10:00, inc-20261124-42: a date is not the start of an account number
    if ne - ns < 3 and sum(e - s for s, e in run) + ne - ns == 17 and text[ne : ne + 1] in ("X", "x"):
        return pe - ps >= 3  # 1101 0519 4912 3100 2X: an ID's last group may be short
    return pe - ps >= 3 and ne - ns >= 3  # 2026-11-24 10:00 stays; 6222 0212 3456, 138 1234 5678 join


def _weak_ok(text: str, run: list[tuple[int, int]]) -> bool:
    """Whether digits joined across list-like separators are an identifier: card or ID length, a mobile, an ID
    ending in X; never thousands groups (`1，288，500，000，000`)."""
    sizes = [e - s for s, e in run]
    if all(n == 3 for n in sizes[1:]) and sizes[0] <= 3:
        return False
    digits = "".join(text[s:e] for s, e in run)
    return len(digits) >= 15 or bool(_MOBILE.fullmatch(digits)) or (len(digits) == 17 and _x_after(text, run))


def _x_after(text: str, run: list[tuple[int, int]]) -> bool:
    """Whether the X of an ID follows the digits (`…002X`; `… 0 0 2 X` when they were spaced out)."""
    end = run[-1][1]
    return text[end : end + 1] in ("X", "x") or (
        len(run) > 1
        and text[end : end + 1] == text[run[-2][1] : run[-2][1] + 1]
        and text[end + 1 : end + 2] in ("X", "x")
    )


def _mask_number(text: str, run: list[tuple[int, int]], plus: bool) -> tuple[int, int, str] | None:
    """The span to replace and its masked form, or None to leave the number as it is."""
    start, end = run[0][0], run[-1][1]
    digits = "".join(text[s:e] for s, e in run)
    if len(digits) == 17 and _x_after(text, run):
        return start, text.index("X" if "X" in text[end : end + 2] else "x", end) + 1, "*" * 14 + digits[-3:] + "X"
    if len(digits) == 18:  # resident ID (also written 6-8-4)
        return start, end, "*" * 14 + digits[-4:]
    if m := _MOBILE.fullmatch(digits):
        prefix = ("+" if plus else "") + (m.group(1) + " " if m.group(1) else "")
        return (start - 1 if plus else start), end, f"{prefix}{m.group(2)}****{m.group(3)}"
    if plus and 7 <= len(digits) <= 15:
        return start - 1, end, "****" + digits[-4:]
    groups = text[start:end].split(".")
    if len(groups) == 4 and all(g.isdigit() and int(g) <= 255 for g in groups):
        return None  # an IPv4 address
    if [e - s for s, e in run] == [10, 6] and text[run[0][1] : run[1][0]] == ".":
        return None  # a Slack message timestamp (1764300000.123456), as logs quote it
    if len(digits) >= 10:  # card and account numbers
        return start, end, "****" + digits[-4:]
    return None


def _single_digits(text: str, groups: list[tuple[int, int]], i: int) -> int:
    """How many single digits from groups[i] on are spaced out with one and the same character
    (`6 2 2 2 0 2 1 2 …`, `1-3-8-…`); 0 when fewer than a number has."""
    if groups[i][1] - groups[i][0] != 1 or i + 1 >= len(groups):
        return 0
    sep = text[groups[i][1] : groups[i + 1][0]]
    j = i + 1
    while j < len(groups) and groups[j][1] - groups[j][0] == 1 and text[groups[j - 1][1] : groups[j][0]] == sep:
        j += 1
    return j - i if len(sep) == 1 and j - i >= SINGLE_DIGITS_MIN else 0


def _mask_numbers(text: str) -> str:
    protected = [m.span() for m in _SLACK_TOKEN.finditer(text)] if "<" in text else []
    out: list[str] = []
    done = 0
    for cluster in _CLUSTER.finditer(text):
        start, end = cluster.span()
        plus = start > 0 and text[start - 1] == "+"
        if end - start < (7 if plus else 10):
            continue  # too few characters for any identifier: most numbers in a message (dates, amounts)
        if not plus and not _MAYBE.search(text, start, end):
            continue
        groups = [(m.start() + start, m.end() + start) for m in _DIGITS.finditer(cluster.group(0))]
        if protected:
            groups = [g for g in groups if not any(s <= g[0] < e for s, e in protected)]
        i = 0
        while i < len(groups):
            masked, i = _read_number(text, groups, i)
            if masked is not None:
                s, e, replacement = masked
                out.append(text[done:s])
                out.append(replacement)
                done = e
    out.append(text[done:])
    return "".join(out)


def _read_number(text: str, groups: list[tuple[int, int]], i: int) -> tuple[tuple[int, int, str] | None, int]:
    """Read one number from groups[i] on: its masked span (or None) and the index of the next group."""
    if n := _single_digits(text, groups, i):
        return _mask_number(text, groups[i : i + n], False), i + n
    first = i
    plus = groups[i][0] > 0 and text[groups[i][0] - 1] == "+"
    for allow_weak in (True, False):
        run = [groups[first]]
        weak: list[str] | None = [] if allow_weak else None
        i = first + 1
        while i < len(groups) and _joins(text, run, groups[i], plus, weak) and not _single_digits(text, groups, i):
            run.append(groups[i])
            i += 1
        if not weak or _weak_ok(text, run):
            break
    digits = "".join(text[s:e] for s, e in run)
    if plus and not _MOBILE.fullmatch(digits) and i < len(groups) and _joins(text, run, groups[i], False):
        # more digits than any phone number: a card or account written after a plus sign (+6222 0212 …)
        plus = False
        while i < len(groups) and _joins(text, run, groups[i], False) and not _single_digits(text, groups, i):
            run.append(groups[i])
            i += 1
    return _mask_number(text, run, plus), i


def mask_identifiers(text: str) -> str:
    """Mask customer identifiers (cards, accounts, ID numbers, phones, e-mails, the playbook's own formats),
    keeping only a hint; control characters go first, so none can split a number past the masking."""
    if len(text) > _CACHED_MAX:
        return _mask(text)
    return _mask_cached(text)


_CACHED_MAX = 2000  # titles, names and template values repeat across reminders and messages: mask each once


@lru_cache(maxsize=8192)
def _mask_cached(text: str) -> str:
    return _mask(text)


def _mask(text: str) -> str:
    text = fold_digits(strip_control(text))
    for pattern in _bank_patterns:
        text = pattern.sub(lambda m: _keep_tail(m.group(0)), text)
    if "@" in text:
        text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    if not any(c.isdigit() for c in text):
        return text
    return _mask_numbers(text)


def safe_text(text: str) -> str:
    """User text as the bot may show it in Slack: identifiers masked, then escaped for mrkdwn."""
    return escape_mrkdwn(mask_identifiers(text))


def safe_snippet(text: str, limit: int) -> str:
    """A shortened quote of user text for Slack: masked before it is cut (a cut could leave a number too
    short to recognise), escaped after."""
    return escape_mrkdwn(truncate(mask_identifiers(text), limit))


def truncate(text: str, limit: int) -> str:
    """Cut text to at most `limit` characters, at a word boundary when one is near, with an ellipsis.
    Identifiers are masked first: Chinese has no spaces to cut at, and a cut through a card number would
    leave digits too few to recognise as one."""
    text = mask_identifiers(text)
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit * 0.6:
        cut = cut[:space]
    return cut.rstrip() + "…"


_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def _transliterate(text: str) -> str:
    """Chinese characters as toneless pinyin, one syllable per character (pypinyin's phrase table picks
    the reading: 重复 → chong fu); other text is left to the ASCII folding."""
    if not _CJK.search(text):
        return text
    from pypinyin import lazy_pinyin  # its tables take a moment to load; only Chinese titles need them

    return "-".join(lazy_pinyin(text))


def slugify(text: str) -> str:
    """A lowercase a-z slug of the (masked) title, Chinese as pinyin; digits never: a channel name is seen
    by the whole workspace and kept forever, so it carries no number the user typed."""
    latin = _transliterate(mask_identifiers(_EMAIL.sub(" ", fold_digits(strip_control(text)))))  # no addresses
    folded = unicodedata.normalize("NFKD", latin).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z]+", "-", folded.lower()).strip("-")


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
