"""The one retry policy for every outbound call: Slack's Web API and response URLs, webhooks, SMTP.

A call site says what one attempt is and how its outcome reads: it returns, raises `TransientError` (worth another
attempt, with the server's Retry-After when it gave one), or raises anything else (final). The policy decides
how many attempts and how long between them: Retry-After when given, else exponential backoff from `backoff`
up to `max_backoff` (a rate-limit wait does not grow the backoff). Waits go through the injected `sleep`, the
clock's in the bot, so a test clock moves instead of a test sleeping. Built on tenacity.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

T = TypeVar("T")


class TransientError(Exception):
    """An attempt failed in a way another attempt may fix. `detail` says how (reported if none succeeds);
    `retry_after` is the server's own wait, in seconds."""

    def __init__(self, detail: str, *, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    backoff: float = 0.5
    max_backoff: float = 8.0
    sleep: Callable[[float], None] = time.sleep

    def run(self, attempt: Callable[[int], T]) -> T:
        """`attempt(n)` for n = 1, 2, … until it returns or raises something other than `TransientError`; after the
        last attempt its `TransientError` propagates, for the caller to report."""
        backoffs, made = 0, 0

        def once() -> T:
            nonlocal made
            made += 1
            return attempt(made)

        def wait(state: RetryCallState) -> float:
            nonlocal backoffs
            failure = state.outcome.exception() if state.outcome else None
            if isinstance(failure, TransientError) and failure.retry_after is not None:
                return failure.retry_after
            delay = min(self.backoff * 2**backoffs, self.max_backoff)
            backoffs += 1
            return delay

        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait,
            sleep=self.sleep,
            retry=retry_if_exception_type(TransientError),
            reraise=True,
        )
        return retrying(once)


def retry_after(headers: object, default: float = 1.0) -> float:
    """Seconds from a Retry-After header (any case; a list when the client gives several); `default` if absent
    or not a number."""
    values = {str(k).lower(): v for k, v in dict(headers or {}).items()}  # type: ignore[call-overload]
    raw = values.get("retry-after", default)
    raw = raw[0] if isinstance(raw, list) else raw
    try:
        return max(0.0, float(raw))
    except (TypeError, ValueError):
        return default
