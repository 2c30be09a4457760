"""Column types. Every datetime column is `UTCDateTime`: written as UTC, read back timezone-aware UTC on
every backend (SQLite keeps no zone and would hand back naive values that Python reads as local time)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class NaiveDatetimeError(ValueError):
    """A naive datetime reached the store: its zone is unknown, so writing it would store a wrong moment."""


class UTCDateTime(TypeDecorator[datetime]):
    """`DateTime(timezone=True)` that refuses naive values and always returns aware UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"a datetime column was given {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise NaiveDatetimeError(f"naive datetime {value.isoformat()} for a UTC column; give it a time zone")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # a raw value SQLite handed back without the column's processing
            value = datetime.fromisoformat(value)
        # SQLite stores the UTC wall time without a zone; PostgreSQL returns the session's zone
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
