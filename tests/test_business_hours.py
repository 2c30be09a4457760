"""Working-hours arithmetic, property-tested: a deadline never lands in non-working time, and measuring
the working time from start to due gives back the duration."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.deadlines.working_hours import WorkingHours
from tests.conftest import test_playbook

PLAYBOOK = test_playbook()
HOURS = WorkingHours.of(PLAYBOOK)  # Mon–Fri 09:00–18:00 Asia/Shanghai, with holidays
SHANGHAI = PLAYBOOK.tz

MOMENTS = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC))
DURATIONS = st.integers(min_value=1, max_value=200 * 60).map(lambda m: timedelta(minutes=m))


@settings(max_examples=300, deadline=None)
@given(start=MOMENTS, duration=DURATIONS)
def test_a_business_deadline_is_never_in_non_working_time(start: datetime, duration: timedelta) -> None:
    due = HOURS.add(start, duration)
    local = due.astimezone(SHANGHAI)
    assert local.weekday() < 5
    assert time(9, 0) < local.time() <= time(18, 0)
    assert local.date() not in PLAYBOOK.working_hours.holidays


@settings(max_examples=300, deadline=None)
@given(start=MOMENTS, duration=DURATIONS)
def test_adding_then_measuring_gives_back_the_duration(start: datetime, duration: timedelta) -> None:
    assert HOURS.measure(start, HOURS.add(start, duration)) == duration


@settings(max_examples=200, deadline=None)
@given(a=MOMENTS, b=MOMENTS, c=MOMENTS)
def test_measuring_is_additive(a: datetime, b: datetime, c: datetime) -> None:
    a, b, c = sorted((a, b, c))
    assert HOURS.measure(a, c) == HOURS.measure(a, b) + HOURS.measure(b, c)


@pytest.mark.parametrize(
    ("start_local", "hours", "due_local"),
    [
        (datetime(2026, 11, 24, 10, 0), 4, datetime(2026, 11, 24, 14, 0)),  # same afternoon
        (datetime(2026, 11, 27, 16, 0), 4, datetime(2026, 11, 30, 11, 0)),  # Friday → Monday
        (datetime(2026, 11, 28, 12, 0), 1, datetime(2026, 11, 30, 10, 0)),  # reported on a Saturday
        (datetime(2026, 9, 30, 17, 0), 2, datetime(2026, 10, 8, 10, 0)),  # over the National Day holiday
        (datetime(2026, 11, 24, 20, 0), 9, datetime(2026, 11, 25, 18, 0)),  # after hours: a whole next day
    ],
)
def test_worked_examples(start_local: datetime, hours: int, due_local: datetime) -> None:
    due = HOURS.add(start_local.replace(tzinfo=SHANGHAI), timedelta(hours=hours))
    assert due.astimezone(SHANGHAI).replace(tzinfo=None) == due_local


def test_a_calendar_without_working_days_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one working day"):
        WorkingHours("Asia/Shanghai", set(), time(9), time(18), set())
    assert date(2026, 10, 1) in PLAYBOOK.working_hours.holidays


def test_arithmetic_refuses_naive_moments() -> None:
    """A naive moment means different instants on different hosts (Python reads it in the host's zone), so
    working-time arithmetic and the clock helpers refuse it instead of guessing."""
    from bot.core.clock import NaiveDatetimeError, utc

    naive = datetime(2026, 11, 24, 10, 0)
    with pytest.raises(NaiveDatetimeError):
        HOURS.add(naive, timedelta(hours=1))
    with pytest.raises(NaiveDatetimeError):
        HOURS.measure(naive, datetime(2026, 11, 25, 10, 0, tzinfo=UTC))
    with pytest.raises(NaiveDatetimeError):
        HOURS.is_working(naive)
    with pytest.raises(NaiveDatetimeError):
        utc(naive)
    shanghai_ten = datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI)
    assert utc(shanghai_ten) == datetime(2026, 11, 24, 2, 0, tzinfo=UTC) and utc(shanghai_ten).tzinfo is UTC
