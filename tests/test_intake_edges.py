"""What a new user's fuzzing of the intake APIs found answering 500 (or storing what PostgreSQL refuses): an
integer of more digits than Python reads, JSON nested deeper than the parser goes, a NUL or an escape in any
field, a `received_at` with no UTC time (year 1 at +14:00). Each is now a 422 naming the field, nothing stored,
and no traceback in the log. One running bot on SQLite, both endpoints."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core.clock import FixedClock
from bot.core.config import Playbook
from bot.sandbox.server import SlackSandbox
from bot.slack.web import HttpServer, make_wsgi
from store.models import AlertGroup, Complaint
from tests.conftest import Stack, running_stack
from tests.test_web_front import fetch

TOKEN = "intake-edges-token-91c2"
COMPLAINT: dict[str, Any] = {
    "external_id": "CMS-EDGE-1",
    "received_at": "2026-11-24T10:00:00+08:00",
    "contact_channel": "phone",
    "category": "service",
    "product": "借记卡",
    "summary": "客户卡号6222021234567890123被重复扣款",
    "customer_ref": "手机13812345678",
}
ALERT: dict[str, Any] = {
    "version": "4",
    "groupKey": '{}:{alertname="支付网关超时"}',
    "status": "firing",
    "receiver": "incident-desk",
    "groupLabels": {"alertname": "支付网关超时"},
    "commonLabels": {},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "支付网关超时", "severity": "warning"},
            "annotations": {"summary": "支付失败"},
            "startsAt": "2026-11-24T02:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "fingerprint": "f1",
        }
    ],
}


def _with(body: dict[str, Any], path: list[Any], value: Any) -> bytes:
    copy = json.loads(json.dumps(body))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return json.dumps(copy).encode()


CASES: list[tuple[str, bytes, str]] = [
    ("/api/v1/complaints", b'{"external_id": ' + b"9" * 5000 + b"}", "body"),
    ("/api/v1/complaints", b"[" * 20000 + b"]" * 20000, "body"),
    ("/api/v1/complaints", _with(COMPLAINT, ["summary"], "客户\x00被重复扣款"), "summary"),
    ("/api/v1/complaints", _with(COMPLAINT, ["external_id"], "CMS-\x1b[31m"), "external_id"),
    ("/api/v1/complaints", _with(COMPLAINT, ["product"], "借记卡\ud800"), "product"),
    ("/api/v1/complaints", _with(COMPLAINT, ["received_at"], "0001-01-01T00:00:00+14:00"), "received_at"),
    ("/api/v1/complaints", _with(COMPLAINT, ["received_at"], "9999-12-31T23:00:00-05:00"), "received_at"),
    ("/api/v1/alerts/alertmanager", b'{"version": "4", "alerts": ' + b"9" * 5000 + b"}", "body"),
    ("/api/v1/alerts/alertmanager", b"[" * 20000 + b"]" * 20000, "body"),
    ("/api/v1/alerts/alertmanager", _with(ALERT, ["groupKey"], "g\x00"), "groupKey"),
    (
        "/api/v1/alerts/alertmanager",
        _with(ALERT, ["alerts", 0, "labels", "alertname"], "a\x00"),
        "alerts.0.labels.alertname",
    ),
    (
        "/api/v1/alerts/alertmanager",
        _with(ALERT, ["alerts", 0, "annotations"], {"sum\x00": "x"}),
        "alerts.0.annotations",
    ),
]


@pytest.fixture
def front(
    sandbox: SlackSandbox, general: str, playbook: Playbook, sqlite_url: str, clock: FixedClock
) -> Iterator[tuple[Stack, str]]:
    """The running bot (SQLite) behind a front with the intake API on."""
    with running_stack(sandbox, playbook, sqlite_url, clock) as stack:
        server = HttpServer(make_wsgi(stack.bot, intake_token=TOKEN)).start()
        try:
            yield stack, server.url
        finally:
            server.stop()


def test_odd_bodies_are_a_422_naming_the_field_and_nothing_is_stored(
    front: tuple[Stack, str], caplog: pytest.LogCaptureFixture
) -> None:
    stack, url = front
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    for path, data, field in CASES:
        answer = fetch(url, path, headers, method="POST", data=data)
        assert answer.status == 422, (path, field, answer.status, answer.text[:200])
        assert json.loads(answer.text)["field"] == field, answer.text
    # a control character is named by its code point, so the sender knows what to strip
    answer = fetch(url, CASES[2][0], headers, method="POST", data=CASES[2][1])
    assert json.loads(answer.text)["error"] == "summary: remove the control character U+0000"
    # the same body without the odd bytes is taken: the checks refuse only what they name
    assert fetch(url, CASES[2][0], headers, method="POST", data=json.dumps(COMPLAINT).encode()).status == 201
    # the complaint system's updates of it: a NUL in the path's external id, a moment with no UTC time
    event = {"type": "first_response", "at": "2026-11-24T11:00:00+08:00"}
    for path, data, field in [
        ("/api/v1/complaints/CMS-EDGE-1%00/events", json.dumps(event).encode(), "external_id"),
        ("/api/v1/complaints/CMS-EDGE-1/events", _with(event, ["at"], "0001-01-01T00:00:00+14:00"), "at"),
        ("/api/v1/complaints/CMS-EDGE-1/events", _with(event, ["note"], "已回复\x00"), "note"),
    ]:
        answer = fetch(url, path, headers, method="POST", data=data)
        assert answer.status == 422, (path, field, answer.status, answer.text[:200])
        assert json.loads(answer.text)["field"] == field, answer.text
    with Session(stack.engine) as s:
        assert s.scalar(select(func.count()).select_from(Complaint)) == 1
        assert s.scalar(select(func.count()).select_from(AlertGroup)) == 0
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def test_many_new_alerts_are_counted_in_full_and_named_five_at_most(front: tuple[Stack, str]) -> None:
    stack, url = front
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}

    def notify(n: int) -> None:
        alerts = [
            {
                **ALERT["alerts"][0],
                "labels": {"alertname": "支付网关超时", "instance": f"pay-{i}"},
                "fingerprint": f"f{i}",
            }
            for i in range(n)
        ]
        answer = fetch(
            url,
            "/api/v1/alerts/alertmanager",
            headers,
            method="POST",
            data=json.dumps({**ALERT, "alerts": alerts}).encode(),
        )
        assert answer.status == 200, answer.text
        assert stack.bot.executor.wait_idle()

    notify(1)
    notify(60)  # a thousand said the same; sixty keep the test fast
    texts = stack.texts(stack.incident_channel(1).id)
    lines = [t for t in texts if "joined this incident's group" in t]
    assert len(lines) == 1, texts
    line = lines[0]
    assert line.startswith(":rotating_light: Alertmanager: 59 new alerts joined this incident's group:\n"), line
    assert line.count("• *支付网关超时 (instance=pay-") == 5 and line.endswith("…and 54 more.")
