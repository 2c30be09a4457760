"""The complaint intake API, through real HTTP requests to the running bot: who may call it, what a bad
body gets (a 422 naming the field, nothing stored), how a retry is recognised, and that what is shown is
masked while the store keeps the raw customer reference."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from bot.cli import build_runtime
from bot.core.clock import FixedClock
from bot.core.config import Playbook, Settings
from bot.sandbox.server import SlackSandbox
from bot.slack.web import HttpServer, make_wsgi
from store.queries import get_complaint, get_complaint_by_external_id
from tests.conftest import Stack, running_stack, test_playbook
from tests.test_web_front import Answer, fetch

TOKEN = "intake-7f3c9a-secret-token"
PATH = "/api/v1/complaints"
CARD = "6222021234567890123"
SUMMARY = f"客户卡号{CARD}被重复扣款"
BODY: dict[str, Any] = {
    "external_id": "CMS-000123",
    "received_at": "2026-11-28T09:30:00+08:00",
    "contact_channel": "phone",
    "category": "payments",
    "product": "借记卡",
    "summary": SUMMARY,
    "customer_ref": f"卡号{CARD}",
    "severity": "sev3",
    "amount": "1288.50",
}
REQUIRED = ("external_id", "received_at", "contact_channel", "category", "product", "summary", "customer_ref")


@pytest.fixture
def intake(
    sandbox: SlackSandbox, general: str, playbook: Playbook, stack_db_url: str, clock: FixedClock
) -> Iterator[tuple[Stack, str]]:
    """The running bot (SQLite and PostgreSQL) behind a front with the intake token the environment gives."""
    token = Settings.from_env({"INCIDENT_DESK_INTAKE_TOKEN": TOKEN}).intake_token
    with running_stack(sandbox, playbook, stack_db_url, clock) as stack:
        server = HttpServer(make_wsgi(stack.bot, intake_token=token)).start()
        try:
            yield stack, server.url
        finally:
            server.stop()


def post(url: str, body: Any, token: str | None = TOKEN, *, raw: bytes | None = None) -> tuple[Answer, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else json.dumps(body, ensure_ascii=False).encode()
    answer = fetch(url, PATH, headers, method="POST", data=data)
    return answer, json.loads(answer.text)


def stored(stack: Stack, external_id: str) -> tuple[int, str, str] | None:
    with Session(stack.engine) as s:
        row = get_complaint_by_external_id(s, external_id)
        return None if row is None else (row.id, row.summary, row.customer_ref)


def without(field: str) -> dict[str, Any]:
    return {k: v for k, v in BODY.items() if k != field}


def test_a_complaint_is_recorded_and_shown_masked(intake: tuple[Stack, str], caplog: pytest.LogCaptureFixture) -> None:
    stack, url = intake
    caplog.set_level(logging.DEBUG)
    answer, shown = post(url, BODY)
    assert answer.status == 201, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    assert shown["external_id"] == BODY["external_id"]
    assert isinstance(shown["number"], int)
    assert CARD not in answer.text
    assert shown["summary"].startswith("客户卡号") and shown["summary"].endswith("被重复扣款")
    assert shown["summary"] != SUMMARY and "0123" in shown["summary"]  # masked, with a hint kept
    assert set(shown) == {"number", "external_id", "summary", "routed"}  # the customer reference is not shown
    assert shown["routed"] == "recorded"  # no rule of the playbook matches it: recorded only
    # the store keeps the raw text; masking happens on output
    assert stored(stack, BODY["external_id"]) == (shown["number"], SUMMARY, f"卡号{CARD}")
    with Session(stack.engine) as s:
        row = get_complaint(s, shown["number"])
        assert row is not None
        assert row.received_at.isoformat() == "2026-11-28T01:30:00+00:00"
        assert (row.contact_channel, row.severity, str(row.amount)) == ("phone", "sev3", "1288.50")
    logged = caplog.text
    assert TOKEN not in logged and CARD not in logged
    # no Slack call: this slice records, it opens no incident
    assert [name for name, _ in stack.sandbox.calls if name != "auth.test"] == []


def test_a_retry_gets_the_same_complaint_and_another_body_is_a_conflict(intake: tuple[Stack, str]) -> None:
    stack, url = intake
    first, shown = post(url, BODY)
    assert first.status == 201
    reordered = dict(reversed(list(BODY.items())))
    reordered["received_at"] = "2026-11-28T01:30:00+00:00"  # the same moment, written in UTC
    again, shown_again = post(url, reordered)
    assert (again.status, shown_again) == (200, shown)
    other, refused = post(url, {**BODY, "summary": "另一个投诉"})
    assert other.status == 409
    assert refused["field"] == "external_id"
    assert stored(stack, BODY["external_id"]) == (shown["number"], SUMMARY, f"卡号{CARD}")
    second, shown_second = post(url, {**BODY, "external_id": "CMS-000124"})
    assert second.status == 201 and shown_second["number"] != shown["number"]


def test_concurrent_retries_record_one_complaint(intake: tuple[Stack, str]) -> None:
    """The complaint system's retries may overlap: the unique external id lets exactly one of them create."""
    stack, url = intake
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: post(url, BODY), range(6)))
    assert sorted(answer.status for answer, _ in answers) == [200] * 5 + [201]
    assert len({shown["number"] for _, shown in answers}) == 1
    assert stored(stack, BODY["external_id"]) == (answers[0][1]["number"], SUMMARY, f"卡号{CARD}")


def test_an_external_id_that_carries_an_identifier_is_shown_masked(intake: tuple[Stack, str]) -> None:
    stack, url = intake
    phone_id = "13812345678-01"  # some complaint systems key on the caller's number
    answer, shown = post(url, {**BODY, "external_id": phone_id})
    assert answer.status == 201 and "13812345678" not in answer.text
    again, shown_again = post(url, {**BODY, "external_id": phone_id})
    assert (again.status, shown_again) == (200, shown)
    assert stored(stack, phone_id) is not None


def test_without_the_right_token_the_api_refuses(intake: tuple[Stack, str], caplog: pytest.LogCaptureFixture) -> None:
    stack, url = intake
    caplog.set_level(logging.DEBUG)
    for token in (None, "wrong-token", TOKEN + "x", "", TOKEN[:-1]):
        answer, _ = post(url, BODY, token)
        assert answer.status == 401, token
    basic = fetch(url, PATH, {"Authorization": f"Basic {TOKEN}"}, method="POST", data=json.dumps(BODY).encode())
    assert basic.status == 401
    assert stored(stack, BODY["external_id"]) is None
    assert TOKEN not in caplog.text


@pytest.mark.parametrize("field", REQUIRED)
def test_a_missing_field_is_named_and_nothing_is_stored(intake: tuple[Stack, str], field: str) -> None:
    stack, url = intake
    answer, refused = post(url, without(field))
    assert answer.status == 422
    assert refused["field"] == field and field in refused["error"]
    assert CARD not in answer.text
    if field != "external_id":
        assert stored(stack, BODY["external_id"]) is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("received_at", "2026-11-28T09:30:00"),  # naive: its zone is unknown
        ("received_at", "yesterday"),
        ("received_at", 1764293400),
        ("contact_channel", "fax"),
        ("severity", "sev9"),
        ("amount", "-5"),
        ("amount", "12.345"),
        ("amount", "lots"),
        ("summary", "   "),
        ("category", 42),
    ],
)
def test_an_invalid_field_is_named_and_nothing_is_stored(intake: tuple[Stack, str], field: str, value: Any) -> None:
    stack, url = intake
    answer, refused = post(url, {**BODY, field: value})
    assert answer.status == 422, answer.text
    assert refused["field"] == field
    assert stored(stack, BODY["external_id"]) is None


def test_a_body_that_is_not_json_is_refused(intake: tuple[Stack, str]) -> None:
    stack, url = intake
    for raw in (b"{not json", "客户".encode("gbk"), b"[1, 2]", b""):
        answer, refused = post(url, None, raw=raw)
        assert (answer.status, refused["field"]) == (422, "body"), raw
    assert stored(stack, BODY["external_id"]) is None
    assert fetch(url, PATH, {"Authorization": f"Bearer {TOKEN}"}).status == 405
    huge, refused = post(url, {**BODY, "summary": "投" * 70_000})
    assert (huge.status, refused["field"]) == (413, "body")
    long, refused = post(url, {**BODY, "summary": "投" * 4001})
    assert (long.status, refused["field"]) == (422, "summary")
    assert stored(stack, BODY["external_id"]) is None


def test_the_optional_fields_may_be_left_out(intake: tuple[Stack, str]) -> None:
    stack, url = intake
    answer, shown = post(url, {k: v for k, v in BODY.items() if k not in ("severity", "amount")})
    assert answer.status == 201
    with Session(stack.engine) as s:
        row = get_complaint(s, shown["number"])
        assert row is not None and (row.severity, row.amount) == (None, None)


def test_the_api_is_off_when_no_token_is_set(stack: Stack) -> None:
    answer, _ = post(stack.http.url, BODY)
    assert answer.status == 404
    assert stored(stack, BODY["external_id"]) is None


def test_the_token_comes_from_the_environment(
    sandbox: SlackSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`incident-desk run`'s own wiring: the variable turns the API on; Settings never show the token."""
    monkeypatch.setenv("INCIDENT_DESK_INTAKE_TOKEN", TOKEN)
    monkeypatch.setenv("SLACK_BOT_TOKEN", sandbox.bot_token)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s3cret")
    monkeypatch.setenv("SLACK_API_URL", sandbox.api_url)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'intake.db'}")
    monkeypatch.setenv("PORT", "1")
    settings = Settings.from_env()
    assert settings.intake_token == TOKEN and TOKEN not in repr(settings)
    runtime = build_runtime(dataclasses.replace(settings, port=0), test_playbook(), host="127.0.0.1")
    runtime.http.start()
    try:
        assert post(runtime.http.url, BODY, "wrong")[0].status == 401
        answer, shown = post(runtime.http.url, BODY)
        assert answer.status == 201 and shown["external_id"] == BODY["external_id"]
    finally:
        runtime.http.stop()
        runtime.bot.executor.shutdown(wait=True)
        runtime.bot.sweeper.close()
        runtime.engine.dispose()
