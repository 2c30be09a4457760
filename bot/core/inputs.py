"""Checks at the edge for what a client can send but no person means: control characters, numbers that no
row can have, dates outside any incident's life. Each failure is a UserInputError that says what to send
instead, so it is answered like any typo, never as a traceback (PostgreSQL refuses a NUL in text, and an
integer column refuses 99999999999999999999)."""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from bot.core.errors import UserInputError
from bot.core.i18n import _
from bot.core.text import strip_format

ALLOWED_CONTROLS = frozenset("\t\n\r")  # line breaks and tabs are part of pasted text
MAX_ROW_ID = 2**31 - 1  # the largest id an INTEGER column holds
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2099, 12, 31)
_ROW_ID = re.compile(r"[0-9]{1,10}")  # ASCII digits only: int() would also read "١٢" or fail on "²"


def control_character(text: str) -> str | None:
    """The first character no text should carry (C0/C1 controls but tab and line breaks, lone surrogates)."""
    for char in text:
        category = unicodedata.category(char)
        if (category == "Cc" and char not in ALLOWED_CONTROLS) or category == "Cs":
            return char
    return None


def check_text(text: str, *, field: str | None = None) -> str:
    """`text` without invisible format characters (zero-width spaces and the like, which would split a number
    past the masking), or a UserInputError naming the control character to remove (shown under `field`)."""
    text = strip_format(text)
    char = control_character(text)
    if char is not None:
        raise UserInputError(
            _(
                "Remove the control character `{code}` from your text (it often comes with pasted text) "
                "and send it again.",
                code=f"U+{ord(char):04X}",
            ),
            field=field,
        )
    return text


def parse_row_id(value: object, *, stale: str, field: str | None = None) -> int:
    """A row id carried by a button or a modal: ASCII digits within an INTEGER column, else `stale`."""
    text = value if isinstance(value, str) else ""
    if not _ROW_ID.fullmatch(text) or not 0 < int(text) <= MAX_ROW_ID:
        raise UserInputError(stale, field=field)
    return int(text)


def day_in_range(day: date) -> bool:
    """Whether a date typed for a report or a due date is one the bot can keep (2000-01-01 to 2099-12-31)."""
    return FIRST_DAY <= day <= LAST_DAY
