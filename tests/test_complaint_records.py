"""Complaint records, through real HTTP requests to the running bot: a recorded complaint carries the seed's
deadlines (first response 24 h, investigation and solution 48 h, satisfaction 72 h after closing); the
complaint system's events meet them (repeats change nothing, out-of-order events are refused); the sweep
marks overdue ones missed on the injected clock; the KPI report and the weekly report count them."""

from __future__ import annotations

import csv
import io
import json
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy.orm import Session

from bot.core.clock import FixedClock
from bot.core.config import Playbook, Settings
from bot.core.i18n import use_locale
from bot.review.kpi import as_csv
from bot.sandbox.server import SlackSandbox
from bot.slack.web import HttpServer, make_wsgi
from store.complaint_records import list_complaint_deadlines, list_complaint_events
from store.queries import get_complaint_by_external_id
from tests.conftest import LEAD, Stack, running_stack
from tests.test_web_front import Answer, fetch

TOKEN = "intake-5d1e-records-token"
CARD = "6222021234567890123"
NOTE = f"已电话回复客户，客户卡号{CARD}被重复扣款，承诺两日内退款"


def complaint(external_id: str, received_at: str = "2026-11-24T10:00:00+08:00", **extra: Any) -> dict[str, Any]:
    return {
        "external_id": external_id,
        "received_at": received_at,
        "contact_channel": "phone",
        "category": "payments",
        "product": "借记卡",
        "summary": f"客户卡号{CARD}被重复扣款",
        "customer_ref": f"卡号{CARD}",
        **extra,
    }


@contextmanager
def running_front(
    sandbox: SlackSandbox, playbook: Playbook, db_url: str, clock: FixedClock
) -> Iterator[tuple[Stack, str]]:
    token = Settings.from_env({"INCIDENT_DESK_INTAKE_TOKEN": TOKEN}).intake_token
    with running_stack(sandbox, playbook, db_url, clock) as stack:
        server = HttpServer(make_wsgi(stack.bot, intake_token=token)).start()
        try:
            yield stack, server.url
        finally:
            server.stop()


@pytest.fixture
def front(
    sandbox: SlackSandbox, general: str, playbook: Playbook, stack_db_url: str, clock: FixedClock
) -> Iterator[tuple[Stack, str]]:
    """The running bot (SQLite and PostgreSQL) behind a front with the intake API on."""
    with running_front(sandbox, playbook, stack_db_url, clock) as running:
        yield running


@pytest.fixture
def sqlite_front(
    sandbox: SlackSandbox, general: str, playbook: Playbook, sqlite_url: str, clock: FixedClock
) -> Iterator[tuple[Stack, str]]:
    """The same on SQLite only, for what does not depend on the store (the deadline arithmetic)."""
    with running_front(sandbox, playbook, sqlite_url, clock) as running:
        yield running


def post(url: str, path: str, body: Any, token: str | None = TOKEN, raw: bytes | None = None) -> tuple[Answer, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else json.dumps(body, ensure_ascii=False).encode()
    answer = fetch(url, path, headers, method="POST", data=data)
    return answer, json.loads(answer.text)


def event(url: str, external_id: str, body: Any, **kw: Any) -> tuple[Answer, Any]:
    return post(url, f"/api/v1/complaints/{external_id}/events", body, **kw)


def states(shown: dict[str, Any]) -> dict[str, tuple[str | None, str, str | None]]:
    return {d["key"]: (d["due_at"], d["state"], d["met_at"]) for d in shown["deadlines"]}


def test_a_complaint_gets_the_seeds_deadlines_and_the_complaint_systems_events_meet_them(
    front: tuple[Stack, str],
) -> None:
    stack, url = front
    answer, _ = post(url, "/api/v1/complaints", complaint("CMS-9001"))
    assert answer.status == 201, answer.text

    # the first response, 5.5 hours after registration, with a note that names the card
    first, shown = event(url, "CMS-9001", {"type": "first_response", "at": "2026-11-24T15:30:00+08:00", "note": NOTE})
    assert first.status == 201, first.text
    assert CARD not in first.text and "被重复扣款" in first.text
    assert shown["received_at"] == "2026-11-24T10:00:00+08:00" and shown["closed"] is False
    assert states(shown) == {
        "first_response": ("2026-11-25T10:00:00+08:00", "met", "2026-11-24T15:30:00+08:00"),
        "investigation": ("2026-11-26T10:00:00+08:00", "pending", None),
        "solution": ("2026-11-26T10:00:00+08:00", "pending", None),
        "satisfaction": (None, "pending", None),  # its clock starts when the complaint is closed
    }
    # the same event again changes nothing; the same type with another time is a conflict
    again, shown_again = event(
        url, "CMS-9001", {"type": "first_response", "at": "2026-11-24T07:30:00+00:00", "note": NOTE}
    )
    assert (again.status, shown_again) == (200, shown)
    other, refused = event(url, "CMS-9001", {"type": "first_response", "at": "2026-11-24T16:00:00+08:00"})
    assert other.status == 409 and "first_response event is recorded already" in refused["error"]

    # satisfaction before the complaint is closed is out of order
    early, refused = event(url, "CMS-9001", {"type": "satisfaction", "at": "2026-11-25T09:00:00+08:00", "score": 5})
    assert early.status == 409 and "send the closed event first" in refused["error"]

    event(url, "CMS-9001", {"type": "investigation_done", "at": "2026-11-25T18:00:00+08:00"})
    late, shown = event(url, "CMS-9001", {"type": "solution_given", "at": "2026-11-26T11:00:00+08:00"})
    assert late.status == 201
    closed, shown = event(url, "CMS-9001", {"type": "closed", "at": "2026-11-26T12:00:00+08:00"})
    assert closed.status == 201 and shown["closed"] is True
    assert states(shown) == {
        "first_response": ("2026-11-25T10:00:00+08:00", "met", "2026-11-24T15:30:00+08:00"),
        "investigation": ("2026-11-26T10:00:00+08:00", "met", "2026-11-25T18:00:00+08:00"),
        "solution": ("2026-11-26T10:00:00+08:00", "missed", "2026-11-26T11:00:00+08:00"),  # done an hour late
        "satisfaction": ("2026-11-29T12:00:00+08:00", "pending", None),  # 72 h after closing
    }

    for score, why in ((6, "from 1 to 5"), ("5", "from 1 to 5"), (True, "from 1 to 5"), (None, "missing")):
        body = {"type": "satisfaction", "at": "2026-11-27T10:00:00+08:00", "score": score}
        bad, refused = event(url, "CMS-9001", body)
        assert (bad.status, refused["field"]) == (422, "score") and why in refused["error"], score
    before, refused = event(url, "CMS-9001", {"type": "satisfaction", "at": "2026-11-26T11:59:00+08:00", "score": 4})
    assert before.status == 409 and "before the complaint was closed" in refused["error"]
    rated, shown = event(url, "CMS-9001", {"type": "satisfaction", "at": "2026-11-27T10:00:00+08:00", "score": 4})
    assert rated.status == 201
    assert states(shown)["satisfaction"] == ("2026-11-29T12:00:00+08:00", "met", "2026-11-27T10:00:00+08:00")
    assert {"type": "satisfaction", "at": "2026-11-27T10:00:00+08:00", "score": 4} in shown["events"]

    # the store keeps the raw note; everything shown is masked
    with Session(stack.engine) as s:
        row = get_complaint_by_external_id(s, "CMS-9001")
        assert row is not None
        (first_event, *_) = list_complaint_events(s, row.id)
        assert (first_event.type, first_event.note) == ("first_response", NOTE)
        assert len(list_complaint_deadlines(s, row.id)) == 4


def test_bad_requests_name_what_is_wrong_and_change_nothing_and_retries_are_recognised(
    front: tuple[Stack, str],
) -> None:
    stack, url = front
    post(url, "/api/v1/complaints", complaint("CMS-9002"))
    ok = {"type": "first_response", "at": "2026-11-24T11:00:00+08:00"}
    for token in (None, "wrong", TOKEN + "x"):
        assert event(url, "CMS-9002", ok, token=token)[0].status == 401
    unknown, refused = event(url, "CMS-404-13812345678", ok)
    assert unknown.status == 404 and refused["field"] == "external_id" and "external_id" in refused["error"]
    assert "13812345678" not in unknown.text
    cases = [
        ({"type": "replied", "at": ok["at"]}, "type"),
        ({"at": ok["at"]}, "type"),
        ({"type": "first_response", "at": "2026-11-24 11:00"}, "at"),
        ({"type": "first_response", "at": "2026-11-24T08:00:00+08:00"}, "at"),  # before it was received
        ({**ok, "score": 5}, "score"),
        ({**ok, "note": 12}, "note"),
        (["first_response"], "body"),
    ]
    for body, field in cases:
        bad, refused = event(url, "CMS-9002", body)
        assert (bad.status, refused["field"]) == (422, field), (body, refused)
    bad, refused = event(url, "CMS-9002", None, raw=b"{not json")
    assert (bad.status, refused["field"]) == (422, "body")
    huge, _ = event(url, "CMS-9002", None, raw=b"{" + b" " * (64 * 1024 + 1) + b"}")
    assert huge.status == 413
    # the complaint system's retries may overlap: one records the event, the others see it recorded
    closed = {"type": "closed", "at": "2026-11-24T12:00:00+08:00"}
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: event(url, "CMS-9002", closed), range(6)))
    assert sorted(answer.status for answer, _ in answers) == [200] * 5 + [201]
    assert len({json.dumps(shown, sort_keys=True) for _, shown in answers}) == 1
    # an external id with a slash, a space and Chinese travels percent-encoded in the path
    odd = "投诉/2026 9003"
    assert post(url, "/api/v1/complaints", complaint(odd))[0].status == 201
    found, shown = event(url, urllib.parse.quote(odd, safe=""), ok)
    assert found.status == 201 and states(shown)["first_response"][1] == "met"
    with Session(stack.engine) as s:
        row = get_complaint_by_external_id(s, "CMS-9002")
        assert row is not None and [e.type for e in list_complaint_events(s, row.id)] == ["closed"]
        assert {d.state for d in list_complaint_deadlines(s, row.id)} == {"pending"}


def test_the_sweep_marks_overdue_deadlines_missed_and_the_reports_count_complaints(
    front: tuple[Stack, str],
) -> None:
    stack, url = front
    reports = stack.sandbox.add_channel("incident-reports", [stack.sandbox.bot_user_id, LEAD])
    received = "2026-11-24T10:00:00+08:00"  # the clock's own moment
    post(url, "/api/v1/complaints", complaint("CMS-1", received))
    post(url, "/api/v1/complaints", complaint("CMS-2", received, contact_channel="email", category="service"))
    post(url, "/api/v1/complaints", complaint("CMS-3", received, contact_channel="app", category="service"))
    event(url, "CMS-1", {"type": "first_response", "at": "2026-11-24T12:00:00+08:00"})  # 2 h
    event(url, "CMS-2", {"type": "first_response", "at": "2026-11-24T14:00:00+08:00"})  # 4 h
    for number, score in (("CMS-1", 5), ("CMS-2", 3)):
        event(url, number, {"type": "closed", "at": "2026-11-24T16:00:00+08:00"})
        event(url, number, {"type": "satisfaction", "at": "2026-11-24T17:00:00+08:00", "score": score})

    stack.advance(hours=23, minutes=59)  # nothing is due yet
    _, shown = event(url, "CMS-3", {"type": "investigation_done", "at": "2026-11-24T18:00:00+08:00"})
    assert states(shown)["first_response"][1] == "pending"
    stack.advance(minutes=1)  # CMS-3's first response falls due: the sweep marks it missed
    _, shown = event(url, "CMS-3", {"type": "investigation_done", "at": "2026-11-24T18:00:00+08:00"})
    assert states(shown)["first_response"] == ("2026-11-25T10:00:00+08:00", "missed", None)
    assert states(shown)["solution"][1] == "pending"
    # reported late but done in time: it was met after all
    _, shown = event(url, "CMS-3", {"type": "first_response", "at": "2026-11-25T09:00:00+08:00"})
    assert states(shown)["first_response"] == ("2026-11-25T10:00:00+08:00", "met", "2026-11-25T09:00:00+08:00")
    stack.advance(days=1)
    _, shown = event(url, "CMS-3", {"type": "investigation_done", "at": "2026-11-24T18:00:00+08:00"})
    assert states(shown)["solution"] == ("2026-11-26T10:00:00+08:00", "missed", None)
    assert [m for m in stack.sandbox.calls if m[0] == "chat.postMessage"] == []  # no message per complaint

    with use_locale("en"):
        text = stack.bot.services.reports.kpi_text()
    assert "*Complaint records: 3 received*" in text
    assert "By contact channel: app (1), email (1), phone (1)" in text
    assert "By complaint category: service (2), payments (1)" in text
    # 2 h, 4 h and 23 h: the mean and the (nearest-rank) median from registration
    assert "Complaint first response: mean 9.7h, median 4.0h from registration" in text
    assert "Complaint satisfaction: 50% rated 4+ of 5 (2 rated; target 90%) :warning: below target" in text
    assert "first_response met 3, missed 0 (0 done late), pending 0" in text
    assert "investigation met 1, missed 2 (0 done late), pending 0" in text
    assert "solution met 0, missed 3 (0 done late), pending 0" in text
    assert text.startswith("*Incident KPIs")  # the incident figures stay first, untouched
    reports_service = stack.bot.services.reports
    start, end, _label = reports_service.period()
    rows = list(csv.DictReader(io.StringIO(as_csv(reports_service.report(start, end)))))
    total = next(r for r in rows if r["dimension"] == "complaints")
    assert (total["incidents"], total["first_response_median_s"], total["rated"], total["satisfied"]) == (
        "3",
        "14400.0",
        "2",
        "1",
    )
    assert {r["value"]: r["incidents"] for r in rows if r["dimension"] == "complaint_channel"} == {
        "app": "1",
        "email": "1",
        "phone": "1",
    }
    with use_locale("zh-CN"):
        zh = stack.bot.services.reports.kpi_text()
    assert "投诉记录：收到 3 件" in zh and "投诉首次回复：自登记起平均 9.7小时，中位数 4.0小时" in zh

    if stack.engine.dialect.name != "sqlite":
        return  # the weekly report renders the same text (and a chart, which costs time): once is enough
    # the weekly report on Monday 09:00 carries the same section
    stack.bot.services.reports.post_weekly(stack.bot.services.reports.next_fire(stack.clock.now()))
    (weekly, _chart) = stack.sandbox.channel_messages(reports)
    assert "Complaint first response: mean 9.7h, median 4.0h" in weekly.text


@pytest.mark.playbook(
    {
        "首次回复客户}, owner: customer_comms, after: 24h, on_resolve: keep,": (
            "首次回复客户}, owner: customer_comms, after: 24h, clock: business, on_resolve: keep,"
        )
    }
)
def test_a_business_hours_deadline_runs_in_working_time(sqlite_front: tuple[Stack, str]) -> None:
    """24 working hours (09:00–18:00 Shanghai, Monday to Friday) from Tuesday 10:00 end on Thursday 16:00; from
    Friday 17:00 they skip the weekend and end on Wednesday 14:00. The calendar deadlines stay 48 h."""
    _stack, url = sqlite_front
    for external_id, received, due in (
        ("CMS-B1", "2026-11-24T10:00:00+08:00", "2026-11-26T16:00:00+08:00"),
        ("CMS-B2", "2026-11-27T17:00:00+08:00", "2026-12-02T14:00:00+08:00"),
    ):
        post(url, "/api/v1/complaints", complaint(external_id, received))
        _, shown = event(url, external_id, {"type": "investigation_done", "at": received})
        first = next(d for d in shown["deadlines"] if d["key"] == "first_response")
        assert (first["clock"], first["due_at"]) == ("business", due)
        assert states(shown)["investigation"][0] is not None and states(shown)["investigation"][1] == "met"
