"""Slack request verification at the HTTP front, before bolt sees anything.

A request counts only if its timestamp is plain digits within five minutes of now, its `v0=` signature is
the HMAC-SHA256 of `v0:<timestamp>:<body>` under the signing secret, and that signature has not been seen
before. Anything else is refused with a reason; nothing of the body is read or acted upon.

The replay guard is a table keyed by signature (store.models.SeenRequest): with several replicas sharing one
database, a replay sent to a different replica still hits the unique key. Rows whose timestamp has left the
window are pruned, so the table holds at most five minutes of traffic. SQLite is one process by design (the
scheduler assumes it too), so there the guard is kept in memory: a write per request would make every ack
wait for SQLite's single write lock behind whatever the background work is committing.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from store.queries import claim_request_signature, count_request_signatures, delete_request_signatures_before

log = logging.getLogger(__name__)

WINDOW_SECONDS = 5 * 60  # Slack's own rule for a fresh request
PRUNE_EVERY_SECONDS = 30
TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")  # ASCII digits only: int() would also take "١٢٣", " 12" or "1_0"
SIGNATURE_RE = re.compile(r"v0=[0-9a-f]{64}")


@dataclass(frozen=True)
class Refusal:
    """Why a request was refused; `status` is the HTTP answer (401, or 503 when the guard is unreachable)."""

    reason: str
    status: int = 401


class RequestVerifier:
    def __init__(self, signing_secret: str, db: sessionmaker[Session], *, now: Callable[[], float] = time.time) -> None:
        if not signing_secret:
            raise ValueError("a signing secret is needed to verify requests")
        self._secret = signing_secret.encode()
        self._db = db
        self._now = now
        self._pruned_at = 0.0
        self._prune_lock = threading.Lock()
        bind = db.kw.get("bind")
        self._in_memory = bind is not None and bind.dialect.name == "sqlite"
        self._seen: dict[str, int] = {}  # signature -> timestamp, the guard on SQLite

    def check(self, headers: Mapping[str, str], body: bytes) -> Refusal | None:
        """None if the request is Slack's and new; otherwise why not. `headers` have lower-case names."""
        raw_ts = headers.get("x-slack-request-timestamp", "")
        signature = headers.get("x-slack-signature", "")
        if not TIMESTAMP_RE.fullmatch(raw_ts):
            return Refusal("missing or malformed timestamp")
        timestamp = int(raw_ts)
        now = self._now()
        if abs(now - timestamp) > WINDOW_SECONDS:
            return Refusal("stale timestamp")
        if not SIGNATURE_RE.fullmatch(signature):
            return Refusal("missing or malformed signature")
        expected = hmac.new(self._secret, b"v0:" + raw_ts.encode() + b":" + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest("v0=" + expected, signature):
            return Refusal("bad signature")
        if self._in_memory:
            return None if self._claim_in_memory(signature, timestamp, now) else Refusal("replayed signature")
        try:
            with self._db.begin() as session:
                self._prune(session, now)
                fresh = claim_request_signature(session, signature, timestamp)
        except SQLAlchemyError as exc:  # fail closed: without the guard a replay could not be told apart
            log.error("could not check the request against the replay guard (%s)", type(exc).__name__)
            return Refusal("replay guard unavailable", status=503)
        return None if fresh else Refusal("replayed signature")

    def remembered(self) -> int:
        """How many signatures the guard holds (in memory on SQLite, in its table otherwise)."""
        if self._in_memory:
            return len(self._seen)
        with self._db() as session:
            return count_request_signatures(session)

    def _claim_in_memory(self, signature: str, timestamp: int, now: float) -> bool:
        """The guard for one process: a signature seen within the window is refused (memory bounded by it)."""
        with self._prune_lock:
            if now - self._pruned_at >= PRUNE_EVERY_SECONDS:
                self._pruned_at = now
                self._seen = {sig: ts for sig, ts in self._seen.items() if ts >= now - WINDOW_SECONDS}
            if signature in self._seen:
                return False
            self._seen[signature] = timestamp
            return True

    def _prune(self, session: Session, now: float) -> None:
        """Drop signatures that can no longer be replayed, at most every PRUNE_EVERY_SECONDS per process."""
        with self._prune_lock:
            if now - self._pruned_at < PRUNE_EVERY_SECONDS:
                return
            self._pruned_at = now
        delete_request_signatures_before(session, int(now) - WINDOW_SECONDS)
