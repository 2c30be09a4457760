"""Complaint volume against the warning lines: counts in a sliding window, the peak over a stretch of time,
and buckets for the chart. Pure functions over arrival times (bot/surge/plan.py reads them from the store)."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core.config import WarningLineSpec


@dataclass(frozen=True)
class Arrival:
    at: datetime
    category: str
    contact_channel: str


def watched(line: WarningLineSpec, arrivals: Sequence[Arrival]) -> list[datetime]:
    """The arrival times a line counts (all, or its one category or contact channel), oldest first."""
    return [
        a.at
        for a in arrivals
        if (line.category is None or a.category == line.category)
        and (line.contact_channel is None or a.contact_channel == line.contact_channel)
    ]


def count_at(times: Sequence[datetime], end: datetime, window: timedelta) -> int:
    """How many arrived in the window ending at `end`: (end - window, end]."""
    return bisect_right(times, end) - bisect_right(times, end - window)


def peak(times: Sequence[datetime], start: datetime, end: datetime, window: timedelta) -> int:
    """The highest window count over windows ending anywhere in [start, end]: the count only rises when
    someone arrives, so the window ending at `start` and those ending at each arrival are enough."""
    best = count_at(times, start, window)
    for t in times[bisect_left(times, start) : bisect_right(times, end)]:
        best = max(best, count_at(times, t, window))
    return best


def quiet(lines: Sequence[WarningLineSpec], arrivals: Sequence[Arrival], now: datetime, for_: timedelta) -> bool:
    """Whether volume stayed below every warning line for the whole of the last `for_`."""
    return all(peak(watched(line, arrivals), now - for_, now, line.window) < line.count for line in lines)


def buckets(times: Sequence[datetime], start: datetime, end: datetime, size: timedelta) -> list[int]:
    """Arrivals per bucket of `size` from `start` up to `end` (the last bucket may be partial)."""
    counts: list[int] = []
    left = start
    while left < end:
        right = min(left + size, end)
        counts.append(bisect_left(times, right) - bisect_left(times, left))
        left = right
    return counts
