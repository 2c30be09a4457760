"""The one grammar for a length of time, as the playbook and the commands write it: `30m`, `24h`, `1.5h`, `2d`,
`2w`, and the staff's own `30分钟`, `2小时`, `1天`, `2周`.

One grammar so the playbook's `snooze: 2h` and an action item's `/incident action … 2h` cannot drift apart;
what a caller allows (a positive playbook value, a due time of zero or more) stays with the caller."""

from __future__ import annotations

import re
from datetime import timedelta

from bot.core.text import fold_digits

# unit as written -> minutes in one unit; longest spellings first so `min` is not read as `m` + `in`
UNITS: dict[str, int] = {
    "minutes": 1,
    "minute": 1,
    "mins": 1,
    "min": 1,
    "m": 1,
    "分钟": 1,
    "分": 1,
    "hours": 60,
    "hour": 60,
    "hrs": 60,
    "hr": 60,
    "h": 60,
    "小时": 60,
    "时": 60,
    "days": 1440,
    "day": 1440,
    "d": 1440,
    "天": 1440,
    "日": 1440,
    "weeks": 10080,
    "week": 10080,
    "w": 10080,
    "周": 10080,
    "星期": 10080,
}
DURATION_RE = re.compile(
    r"^\s*([-+]?\d+(?:\.\d+)?)\s*(" + "|".join(sorted(map(re.escape, UNITS), key=len, reverse=True)) + r")\s*$",
    re.IGNORECASE,
)
# what `format_duration` writes, largest unit first
_CANONICAL = (("w", 10080), ("d", 1440), ("h", 60))


def parse_duration(text: str) -> timedelta:
    """`30m`, `2h`, `1.5d`, `2w`, `30分钟`, `2小时`, `1天` (full-width digits too) as a timedelta, negative
    when written with a minus; ValueError for anything else."""
    m = DURATION_RE.match(fold_digits(text))
    if not m:
        raise ValueError(f"{text!r} is not a duration such as 30m, 24h, 2d or 2小时")
    try:
        return timedelta(minutes=float(m.group(1)) * UNITS[m.group(2).lower()])
    except OverflowError:
        raise ValueError(f"{text!r} is longer than any deadline") from None


def format_duration(value: timedelta) -> str:
    """The shortest exact spelling in the largest unit (`90m`, `36h`, `2w`); what `parse_duration` reads back.
    Durations are whole minutes in this grammar; a remainder of seconds is dropped."""
    minutes = int(value.total_seconds() // 60)
    sign, minutes = ("-", -minutes) if minutes < 0 else ("", minutes)
    unit, size = next(((u, s) for u, s in _CANONICAL if minutes and minutes % s == 0), ("m", 1))
    return f"{sign}{minutes // size}{unit}"
