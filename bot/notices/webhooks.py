"""Signed JSON webhooks for the social-media, hotline and complaint systems, retried with backoff.

Redirects are not followed: a 3xx is a failure, so a notice never counts as delivered because some other
address (possibly one that drops the body) answered, and the signed body never travels to a host not configured."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.core.i18n import _
from bot.core.retry import RetryPolicy, TransientError

SIGNATURE_HEADER = "X-Incident-Desk-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"  # the outbox key: the same on every attempt and after a restart
TIMESTAMP_HEADER = "X-Incident-Desk-Timestamp"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over 'timestamp.body', so a receiver can check both origin and freshness."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Turn every redirect into an HTTPError carrying the 3xx status."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


@dataclass(frozen=True)
class Delivery:
    ok: bool
    attempts: int
    detail: str
    # False when drafting again cannot help (the kind does not use the channel, the customer has no address)
    worth_retrying: bool = True


class WebhookSender:
    def __init__(
        self, *, sleep: Callable[[float], None], attempts: int = 3, backoff: float = 0.5, timeout: float = 10.0
    ) -> None:
        self.retry = RetryPolicy(attempts=attempts, backoff=backoff, sleep=sleep)
        self.timeout = timeout

    def send(self, url: str, payload: dict[str, Any], secret: str, *, key: str = "") -> Delivery:
        """POST the payload; retry 5xx, 429 and connection errors; never raise. Every attempt, and a re-send
        after a crash, carries the same Idempotency-Key, so the receiving system can take it once."""
        body = json.dumps(payload, ensure_ascii=False).encode()

        def attempt(n: int) -> Delivery:
            timestamp = str(int(time.time()))
            request = urllib.request.Request(
                url,
                data=body,
                method="POST",
                headers={
                    "Content-Type": "application/json; charset=utf-8",
                    TIMESTAMP_HEADER: timestamp,
                    SIGNATURE_HEADER: signature(secret, timestamp, body),
                    **({IDEMPOTENCY_HEADER: key} if key else {}),
                },
            )
            try:
                with _OPENER.open(request, timeout=self.timeout) as response:
                    return Delivery(200 <= response.status < 300, n, f"http {response.status}")
            except urllib.error.HTTPError as exc:
                detail = f"http {exc.code}"
                if 300 <= exc.code < 400:
                    return Delivery(
                        False,
                        n,
                        _(
                            "{status}: a redirect, not followed; set the webhook URL to its final address",
                            status=detail,
                        ),
                    )
                if exc.code < 500 and exc.code != 429:
                    return Delivery(False, n, detail)
                raise TransientError(detail) from None
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                raise TransientError(_("connection error ({error})", error=type(exc).__name__)) from None

        try:
            return self.retry.run(attempt)
        except TransientError as exc:
            return Delivery(False, self.retry.attempts, exc.detail)
