"""Log records carry no customer identifier: a titled incident, a failed call or a traceback quoting the
user's text is masked like every other output before any handler sees it."""

from __future__ import annotations

import logging
from typing import Any

from bot.core.text import mask_identifiers

_FORMATTER = logging.Formatter()


class MaskingFilter(logging.Filter):
    """Masks a record's message, traceback and stack in place; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: let logging report it as it always does
            return True
        masked = mask_identifiers(message)
        if masked != message:  # otherwise msg and args stay as they were (handlers may group by msg)
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_identifiers(_FORMATTER.formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = mask_identifiers(record.stack_info)
        return True


def install_log_masking() -> None:
    """Mask every record from every logger, whatever handlers exist now or later.

    A filter on a handler misses handlers added afterwards (pytest adds its own per test phase) and a filter
    on a logger misses its children, so the filter runs where records are made: in the record factory."""
    current = logging.getLogRecordFactory()
    if getattr(current, "masks_identifiers", False):
        return
    mask = MaskingFilter()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        mask.filter(record)
        return record

    factory.masks_identifiers = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
