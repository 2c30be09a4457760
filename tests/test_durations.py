"""One duration grammar for the playbook and the commands: what either accepted before is still read the same,
Chinese units and full-width digits are read too, and format/parse round-trip."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.config import parse_duration as playbook_duration
from bot.core.durations import UNITS, format_duration, parse_duration
from bot.review.service import parse_due

minutes = st.integers(min_value=-10_000_000, max_value=10_000_000)


@given(minutes)
def test_a_formatted_duration_reads_back_as_itself(n: int) -> None:
    value = timedelta(minutes=n)
    assert parse_duration(format_duration(value)) == value


@given(st.integers(min_value=0, max_value=9999), st.sampled_from(sorted(UNITS)), st.sampled_from(["", " ", "  "]))
def test_every_spelling_reads_the_same_as_its_canonical_form(amount: int, unit: str, space: str) -> None:
    value = parse_duration(f"{amount}{space}{unit}")
    assert value == timedelta(minutes=amount * UNITS[unit])
    assert parse_duration(format_duration(value)) == value
    assert parse_duration(f"{amount}{unit.upper()}") == value  # 2H as 2h


@given(st.text(alphabet="0123456789.-+mhdwx 天时分 ", max_size=8))
def test_no_input_raises_anything_but_value_error(text: str) -> None:
    try:
        value = parse_duration(text)
    except ValueError:
        return
    assert isinstance(value, timedelta)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("24h", timedelta(hours=24)),
        ("2d", timedelta(days=2)),
        ("1.5h", timedelta(minutes=90)),
        (" 2 d ", timedelta(days=2)),  # the playbook's grammar allowed spaces
        ("2w", timedelta(weeks=2)),  # the due time's grammar allowed weeks
        ("30分钟", timedelta(minutes=30)),
        ("2小时", timedelta(hours=2)),
        ("1天", timedelta(days=1)),
        ("2周", timedelta(weeks=2)),
        ("３天", timedelta(days=3)),  # full-width digits, as a Chinese keyboard types them
    ],
)
def test_what_both_grammars_accepted_and_chinese_units(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "m", "30", "30s", "3 days ago", "1e3h", "2小时30分钟", "6222021234567890123天"])
def test_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_the_playbook_and_the_due_time_use_the_one_grammar() -> None:
    assert playbook_duration("2小时") == timedelta(hours=2)
    assert playbook_duration(1.5) == timedelta(minutes=90)  # a YAML number is hours, as before
    with pytest.raises(ValueError, match="must be positive"):
        playbook_duration("-1h")
    with pytest.raises(ValueError, match="is not a duration"):
        playbook_duration("soon")
    assert parse_due("3天").after == timedelta(days=3)
    assert parse_due("90M").after == timedelta(minutes=90)
    assert parse_due("0m").after == timedelta(0)  # due now, as before
