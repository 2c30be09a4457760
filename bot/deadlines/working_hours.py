"""Working-hours arithmetic: add a duration of working time to a moment, and measure working time
between two moments, in the playbook's timezone with its working days, hours and holidays. Naive moments
are refused (bot.core.clock.utc): read in the host's zone they would move a deadline by hours."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.core.clock import utc
from bot.core.config import WEEKDAYS, Playbook

MAX_DAYS = 3 * 366  # a deadline further than this in working time is a playbook mistake


class WorkingHours:
    def __init__(self, tz: str, days: set[int], start: time, end: time, holidays: set[date]) -> None:
        if not days or start >= end:
            raise ValueError("working hours need at least one working day and start before end")
        self.tz = ZoneInfo(tz)
        self.days, self.start, self.end, self.holidays = days, start, end, holidays

    @classmethod
    def of(cls, playbook: Playbook) -> WorkingHours:
        """The playbook's working days, hours and holidays in its timezone (built here, so the core's config
        does not depend on the clock's arithmetic)."""
        spec = playbook.working_hours
        days = {WEEKDAYS.index(d) for d in spec.days}
        return cls(playbook.timezone, days, spec.start, spec.end, set(spec.holidays))

    def _intervals(self, since: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working intervals (UTC) from the day of `since` on, in order."""
        day = utc(since).astimezone(self.tz).date()
        for _ in range(MAX_DAYS):
            if day.weekday() in self.days and day not in self.holidays:
                opens = datetime.combine(day, self.start, self.tz).astimezone(UTC)
                closes = datetime.combine(day, self.end, self.tz).astimezone(UTC)
                yield opens, closes
            day += timedelta(days=1)

    def next_working_day_at(self, moment: datetime, at: time) -> datetime:
        """`at` o'clock (local) on the first working day after the day of `moment` (UTC)."""
        day = utc(moment).astimezone(self.tz).date() + timedelta(days=1)
        for _ in range(MAX_DAYS):
            if day.weekday() in self.days and day not in self.holidays:
                return datetime.combine(day, at, self.tz).astimezone(UTC)
            day += timedelta(days=1)
        raise ValueError("no working day within three years")

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The moment `duration` of working time after `start` (UTC)."""
        cursor, remaining = utc(start), duration
        for opens, closes in self._intervals(cursor):
            if closes <= cursor:
                continue
            cursor = max(cursor, opens)
            available = closes - cursor
            if remaining <= available:
                return cursor + remaining
            remaining -= available
        raise ValueError(f"{duration} of working time does not fit in {MAX_DAYS} days")

    def measure(self, start: datetime, end: datetime) -> timedelta:
        """Working time between two moments (zero if end is not after start)."""
        start, end = utc(start), utc(end)
        total = timedelta(0)
        for opens, closes in self._intervals(start):
            if opens >= end:
                break
            overlap = min(closes, end) - max(opens, start)
            if overlap > timedelta(0):
                total += overlap
        return total

    def is_working(self, moment: datetime) -> bool:
        """Inside working time (the closing instant counts: a deadline may fall due at closing time)."""
        moment = utc(moment)
        opens, closes = next(self._intervals(moment))
        local_day = moment.astimezone(self.tz).date()
        same_day = opens.astimezone(self.tz).date() == local_day
        return same_day and opens <= moment <= closes
