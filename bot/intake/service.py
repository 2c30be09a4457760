"""Recording complaints sent by the bank's complaint system (POST /api/v1/complaints).

The body is checked field by field before anything is written, so a bad request stores nothing and its
answer names the field. The complaint system retries: the external id is unique, a retry with the same body
gets the complaint it made, and the same id with another body is a conflict rather than a silent overwrite.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot.core.clock import Clock
from bot.core.config import Playbook
from bot.core.inputs import control_character, day_in_range
from bot.core.text import mask_identifiers
from bot.intake.routing import RECORDED, ComplaintRouter, Routed
from bot.surge.watch import SurgeWatch
from store.db import write_turn
from store.models import Complaint
from store.queries import claim_complaint, get_complaint_by_external_id

CONTACT_CHANNELS = ("phone", "email", "online_chat", "branch", "app")
SEVERITIES = ("sev1", "sev2", "sev3", "sev4")
# (field, longest accepted text): the store's column widths, checked here so a long value is a 422, not a 500
TEXT_FIELDS = (
    ("external_id", 120),
    ("category", 60),
    ("product", 120),
    ("summary", 4000),
    ("customer_ref", 200),
)
MAX_AMOUNT = Decimal("1e16")


class IntakeError(ValueError):
    """A field the request got wrong (or left out); `field` is what the 422 names."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class IntakeConflictError(Exception):
    """The external id is recorded already, with another body."""

    field = "external_id"


class IntakeNotFoundError(LookupError):
    """The request names a complaint that is not recorded (404 naming the field). The API answers the
    complaint system, in English, like IntakeError: not a BotError, which speaks to staff in their language."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class IntakeOrderError(Exception):
    """An event out of order, or contradicting one recorded already (409 naming the field)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ComplaintInput:
    external_id: str
    received_at: datetime
    contact_channel: str
    category: str
    product: str
    summary: str
    customer_ref: str
    severity: str | None
    amount: Decimal | None

    def fingerprint(self) -> str:
        """The body's hash, the same for the same complaint whatever the JSON's key order or offset."""
        canon = {
            "external_id": self.external_id,
            "received_at": self.received_at.timestamp(),
            "contact_channel": self.contact_channel,
            "category": self.category,
            "product": self.product,
            "summary": self.summary,
            "customer_ref": self.customer_ref,
            "severity": self.severity,
            "amount": None if self.amount is None else str(self.amount),
        }
        return hashlib.sha256(json.dumps(canon, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@dataclass(frozen=True)
class Recorded:
    """What the answer shows: the number and the masked summary (never the raw customer reference)."""

    number: int
    external_id: str
    summary: str
    created: bool  # False: a retry found the complaint an earlier request recorded
    routed: Routed = field(
        default_factory=lambda: Routed(RECORDED)
    )  # the incident it opened or joined, if any (bot/intake/routing.py)


def _text(body: dict[str, Any], field: str, longest: int) -> str:
    value = body.get(field)
    if value is None:
        raise IntakeError(field, "missing")
    if not isinstance(value, str) or not value.strip():
        raise IntakeError(field, "must be a non-empty string")
    value = value.strip()
    if len(value) > longest:
        raise IntakeError(field, f"longer than {longest} characters")
    return value


def control_in(body: Any) -> tuple[str, str] | None:
    """(field path, the character as U+XXXX) of the first string holding a control character, or None: the
    intake APIs refuse it in any field (PostgreSQL refuses a NUL in text; no complaint or alert system means one).
    The path reads as the 422s of the parsers do (`alerts.0.labels.alertname`); walked without recursion, so
    a body nested as deep as the JSON parser allows is no trouble."""
    pending: list[tuple[str, Any]] = [("", body)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, str):
            char = control_character(value)
            if char is not None:
                return path or "body", f"U+{ord(char):04X}"
        elif isinstance(value, dict):
            for key, item in reversed(list(value.items())):
                name = f"{path}.{key}" if path else str(key)
                char = control_character(str(key))
                if char is not None:
                    return path or "body", f"U+{ord(char):04X}"
                pending.append((name, item))
        elif isinstance(value, list):
            pending.extend((f"{path}.{i}" if path else str(i), item) for i, item in reversed(list(enumerate(value))))
    return None


def parse_complaint(body: Any) -> ComplaintInput:
    """The request body as a complaint, or IntakeError naming the first field that is wrong."""
    if not isinstance(body, dict):
        raise IntakeError("body", "must be a JSON object")
    texts = {field: _text(body, field, longest) for field, longest in TEXT_FIELDS}
    raw_received = body.get("received_at")
    if raw_received is None:
        raise IntakeError("received_at", "missing")
    try:
        if not isinstance(raw_received, str):
            raise ValueError
        received_at = datetime.fromisoformat(raw_received)
    except ValueError:
        raise IntakeError("received_at", "must be an ISO 8601 date and time") from None
    if received_at.tzinfo is None or received_at.utcoffset() is None:
        raise IntakeError("received_at", "needs a UTC offset, e.g. 2026-11-28T09:30:00+08:00")
    if not day_in_range(received_at.date()):  # year 1 at +14:00 has no UTC time: it was a 500 at the INSERT
        raise IntakeError("received_at", "must lie between 2000-01-01 and 2099-12-31")
    channel = body.get("contact_channel")
    if channel is None:
        raise IntakeError("contact_channel", "missing")
    if channel not in CONTACT_CHANNELS:
        raise IntakeError("contact_channel", "must be one of " + ", ".join(CONTACT_CHANNELS))
    severity = body.get("severity")
    if severity is not None and severity not in SEVERITIES:
        raise IntakeError("severity", "must be one of " + ", ".join(SEVERITIES))
    raw_amount = body.get("amount")
    amount: Decimal | None = None
    if raw_amount is not None:
        try:
            if isinstance(raw_amount, bool) or not isinstance(raw_amount, int | float | str):
                raise InvalidOperation
            amount = Decimal(str(raw_amount))
        except InvalidOperation:
            raise IntakeError("amount", "must be a number") from None
        if not amount.is_finite() or amount < 0 or amount >= MAX_AMOUNT or amount != amount.quantize(Decimal("0.01")):
            raise IntakeError("amount", "must be a non-negative amount with at most two decimals")
        amount = amount.quantize(Decimal("0.01"))
    return ComplaintInput(
        received_at=received_at,
        contact_channel=channel,
        severity=severity,
        amount=amount,
        **texts,
    )


class ComplaintIntake:
    """Records complaints; one short unit of work each, no Slack call: the router opens or joins an incident in
    the same transaction, and the incident's channel is set up in the background after the answer."""

    def __init__(
        self,
        db: sessionmaker[Session],
        clock: Clock,
        playbook: Playbook,
        surge: SurgeWatch | None = None,
        *,
        router: ComplaintRouter | None = None,
        after_record: Sequence[Callable[[Session, int, ComplaintInput], None]] = (),
    ) -> None:
        self.db = db
        self.clock = clock
        self.playbook = playbook
        self.router = router  # None: record only (no routing rules applied)
        self.surge = surge  # the surge plan's warning lines, checked after each new complaint (no Slack call)
        # what else a new complaint gets in its own transaction (its deadlines: bot/intake/records.py)
        self.after_record = tuple(after_record)

    def record(self, complaint: ComplaintInput) -> Recorded:
        """Record it, or find the same complaint recorded by an earlier try; IntakeConflictError if the id is
        taken by a different complaint."""
        fingerprint = complaint.fingerprint()
        values = {
            "external_id": complaint.external_id,
            "fingerprint": fingerprint,
            "received_at": complaint.received_at,
            "contact_channel": complaint.contact_channel,
            "category": complaint.category,
            "product": complaint.product,
            "summary": complaint.summary,
            "customer_ref": complaint.customer_ref,
            "severity": complaint.severity,
            "amount": complaint.amount,
            "created_at": self.clock.now(),
        }
        # the rule it meets and its cluster, decided before the transaction (no lock held for Python work)
        new = Complaint(**values)
        rule = None
        if self.router is not None:
            rule, new.cluster_key = self.router.plan(new)
            values["cluster_key"] = new.cluster_key
        with write_turn(self.db), self.db.begin() as s:  # one short transaction; on SQLite, one writer at a time
            number = claim_complaint(s, values)
            if number is not None:
                new.id = number  # recorded: the answer is what was sent (not read back)
                for hook in self.after_record:
                    hook(s, number, complaint)
                routed = self.router.route(s, new, rule) if self.router is not None else Routed(RECORDED)
                recorded = Recorded(
                    number=number,
                    external_id=mask_identifiers(complaint.external_id),
                    summary=mask_identifiers(complaint.summary),
                    created=True,
                    routed=routed,
                )
            else:
                row = get_complaint_by_external_id(s, complaint.external_id)
                if row is None:  # the unique index refused it, yet the row is gone: it was deleted meanwhile
                    raise IntakeConflictError()
                if row.fingerprint != fingerprint:
                    raise IntakeConflictError()
                # a retry finds both: the complaint and where the first request routed it
                routed = self.router.routed_of(s, row) if self.router is not None else Routed(RECORDED)
                recorded = Recorded(
                    number=row.id,
                    external_id=mask_identifiers(row.external_id),
                    summary=mask_identifiers(row.summary),
                    created=False,
                    routed=routed,
                )
        if self.router is not None:
            self.router.after_commit(routed)  # the channel set-up runs in the background, not in this request
        if recorded.created and self.surge is not None:
            self.surge.observe()  # the warning lines, after the commit: a new proposal is posted off this request
        return recorded
