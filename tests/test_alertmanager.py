"""Alertmanager's webhook (POST /api/v1/alerts/alertmanager), through real HTTP requests to the running bot, with
payloads mirroring Alertmanager's documented webhook JSON (version 4) — and, where Debian's
prometheus-alertmanager is installed (`make test` installs it), with the real Alertmanager as the client.

What is checked is what people see: the answer, the incident channel's lines, the incident's state."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core.clock import FixedClock
from bot.core.config import ConfigError, Playbook, load_playbook_text, playbook_warnings
from bot.intake.alerts import AlertIntake
from bot.sandbox.server import SlackSandbox
from bot.slack.web import HttpServer, make_wsgi
from store.alert_groups import find_alert_group
from store.models import AlertGroup, Incident
from store.queries import get_incident
from tests.conftest import SHIPPED_LOCALE, Stack, playbook_text, running_stack
from tests.test_web_front import Answer, fetch

TOKEN = "alerts-5d1e0b-secret-token"
PATH = "/api/v1/alerts/alertmanager"
GROUP_KEY = '{}:{alertname="PaymentGatewayDown"}'
CARD = "6222021234567890123"
RESOLVES = {"resolve_on_resolved: false": "resolve_on_resolved: true"}


def alert(
    instance: str,
    *,
    status: str = "firing",
    severity: str = "major",
    fingerprint: str | None = None,
    summary: str = "Payment gateway is down",
) -> dict[str, Any]:
    """One alert as Alertmanager's webhook documents it."""
    return {
        "status": status,
        "labels": {"alertname": "PaymentGatewayDown", "severity": severity, "instance": instance, "job": "gateway"},
        "annotations": {"summary": summary, "description": f"{instance} answers no health check"},
        "startsAt": "2026-11-24T01:58:00.123456789Z",
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-24T02:30:00Z",
        "generatorURL": "http://prometheus.example:9090/graph?g0.expr=up%7Bjob%3D%22gateway%22%7D+%3D%3D+0",
        "fingerprint": fingerprint or f"fp-{instance}",
    }


def notification(*alerts: dict[str, Any], status: str | None = None, group_key: str = GROUP_KEY) -> dict[str, Any]:
    """A notification as Alertmanager's webhook documents it (version 4)."""
    summaries = {a["annotations"]["summary"] for a in alerts}
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": status or ("firing" if any(a["status"] == "firing" for a in alerts) else "resolved"),
        "receiver": "incident-desk",
        "groupLabels": {"alertname": "PaymentGatewayDown"},
        "commonLabels": {"alertname": "PaymentGatewayDown", "job": "gateway"},
        "commonAnnotations": {"summary": summaries.pop()} if len(summaries) == 1 else {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": list(alerts),
    }


def post(url: str, body: Any, token: str | None = TOKEN, *, raw: bytes | None = None) -> tuple[Answer, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else json.dumps(body, ensure_ascii=False).encode()
    answer = fetch(url, PATH, headers, method="POST", data=data)
    return answer, json.loads(answer.text)


def _behind_the_front(
    sandbox: SlackSandbox, playbook: Playbook, db_url: str, clock: FixedClock
) -> Iterator[tuple[Stack, str]]:
    """The running bot behind a front with the intake token, and the front's address."""
    with running_stack(sandbox, playbook, db_url, clock) as stack:
        server = HttpServer(make_wsgi(stack.bot, intake_token=TOKEN)).start()
        try:
            yield stack, server.url
        finally:
            stack.bot.executor.wait_idle()
            server.stop()


@pytest.fixture
def desk(
    sandbox: SlackSandbox, general: str, playbook: Playbook, sqlite_url: str, clock: FixedClock
) -> Iterator[tuple[Stack, str]]:
    """On SQLite."""
    yield from _behind_the_front(sandbox, playbook, sqlite_url, clock)


@pytest.fixture
def desk_any(
    sandbox: SlackSandbox, general: str, playbook: Playbook, stack_db_url: str, clock: FixedClock
) -> Iterator[tuple[Stack, str]]:
    """On SQLite and on PostgreSQL."""
    yield from _behind_the_front(sandbox, playbook, stack_db_url, clock)


def sent(stack: Stack, url: str, body: Any) -> dict[str, Any]:
    """Post a notification, expect 200, and let the work after the answer (set-up, lines) finish."""
    answer, shown = post(url, body)
    assert answer.status == 200, answer.text
    assert stack.bot.executor.wait_idle()
    return dict(shown)


def incident(stack: Stack, number: int) -> Incident:
    with Session(stack.engine) as s:
        row = get_incident(s, number)
        assert row is not None
        return row


def incidents(stack: Stack) -> int:
    with Session(stack.engine) as s:
        return int(s.scalar(select(func.count(Incident.id))) or 0)


def test_firing_repeat_new_alert_resolved_and_firing_again_keep_one_incident(desk: tuple[Stack, str]) -> None:
    stack, url = desk
    bot = stack.sandbox.bot_user_id
    # the answer does not wait for Slack (Alertmanager gives up after 10 s): the channel is created after it
    hold = stack.sandbox.hold("conversations.create", timeout=10)
    answer, shown = post(url, notification(alert("gw-1")))
    assert answer.status == 200 and shown["action"] == "opened"
    assert hold.reached.wait(5)
    number, name = shown["incident"]["number"], shown["incident"]["channel"]
    assert name.startswith("inc-") and stack.sandbox.channel_by_name(name) is None
    hold.release()
    assert stack.bot.executor.wait_idle()
    channel = stack.incident_channel(number)
    assert channel.name == name
    opened = incident(stack, number)
    assert (opened.kind, opened.severity, opened.title, opened.reporter_id) == (
        "outage",
        "sev2",
        "Payment gateway is down",
        bot,
    )
    assert opened.description == "gw-1 answers no health check"
    assert (
        next(r.user_id for r in opened.roles if r.role == "lead")
        == stack.bot.services.playbook.roles["lead"].default_owners[0]
    )  # the playbook's lead, never the bot
    assert bot in channel.members
    before = stack.texts(channel.id)
    assert before, "the card and the plan are posted"

    # Alertmanager's repeat_interval: the same group, the same alert — nothing opens, nothing is posted
    again = sent(stack, url, notification(alert("gw-1")))
    assert again == {"incident": {"number": number, "channel": name, "channel_id": channel.id}, "action": "repeat"}
    assert stack.texts(channel.id) == before

    # a new, more severe alert joins the group: one line, and the severity goes up
    severe = alert("gw-2", severity="critical", summary="网关 gw-2 无响应")
    joined = sent(stack, url, notification(alert("gw-1"), severe))
    assert joined["action"] == "joined" and joined["incident"]["number"] == number
    lines = stack.texts(channel.id)[len(before) :]
    assert lines[0] == (
        ":rotating_light: Alertmanager: 1 new alert joined this incident's group:\n"
        "• *PaymentGatewayDown (instance=gw-2)* — 网关 gw-2 无响应"
    )
    assert lines[1] == f":rotating_light: <@{bot}> changed the severity from *SEV2* to *SEV1*."
    assert incident(stack, number).severity == "sev1"
    assert sent(stack, url, notification(alert("gw-1"), alert("gw-2", severity="critical")))["action"] == "repeat"

    # one alert of the group resolves while the other still fires: one line
    partly = sent(stack, url, notification(alert("gw-1"), alert("gw-2", status="resolved", severity="critical")))
    assert partly["action"] == "joined"
    assert stack.texts(channel.id)[-1] == (
        ":white_check_mark: Alertmanager: resolved while the group still fires: PaymentGatewayDown (instance=gw-2)."
    )
    assert incident(stack, number).severity == "sev1"  # a person lowers it; monitoring does not
    count = len(stack.texts(channel.id))

    # resolved: posted, and (as shipped) the incident stays open for a person to resolve
    done = sent(stack, url, notification(alert("gw-1", status="resolved"), alert("gw-2", status="resolved")))
    assert done["action"] == "resolved"
    assert stack.texts(channel.id)[count:] == [
        ":white_check_mark: Alertmanager: every alert of this group is resolved (PaymentGatewayDown). "
        "Resolve the incident with `/incident resolve &lt;summary&gt;` once the service is confirmed back."
    ]
    assert incident(stack, number).status == "reported"
    assert sent(stack, url, notification(alert("gw-1", status="resolved")))["action"] == "repeat"

    # it fires again while the incident is still worked on: the same incident, one line
    back = sent(stack, url, notification(alert("gw-1")))
    assert back["action"] == "joined" and back["incident"]["number"] == number
    assert stack.texts(channel.id)[-1] == ":rotating_light: Alertmanager: the group fires again: PaymentGatewayDown."
    assert incidents(stack) == 1


@pytest.mark.playbook(RESOLVES)
def test_a_resolved_notification_resolves_when_the_playbook_says_so_and_a_new_firing_opens_anew(
    desk: tuple[Stack, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack, url = desk
    bot = stack.sandbox.bot_user_id
    first = sent(stack, url, notification(alert("gw-1")))["incident"]["number"]
    channel = stack.incident_channel(first).id
    assert sent(stack, url, notification(alert("gw-1", status="resolved")))["action"] == "resolved"
    resolved = incident(stack, first)
    assert resolved.status == "resolved"
    assert resolved.resolution_summary == "Alertmanager: every alert of the group is resolved (PaymentGatewayDown)."
    assert stack.texts(channel)[2:4] == [
        f":white_check_mark: <@{bot}> resolved the incident: {resolved.resolution_summary}",
        "When customer comms has called the customer back (满意度回访), record their rating for #1: click below, "
        "or `/incident satisfaction <1-5> [comment]`.",
    ]

    # the group fires again after its incident was resolved: a new incident, and the old channel says which
    again = sent(stack, url, notification(alert("gw-1")))
    assert again["action"] == "opened" and again["incident"]["number"] == first + 1
    assert stack.texts(channel)[-1] == (
        f":repeat: Alertmanager: this group fires again; it opened a new incident, #{first + 1}."
    )
    assert incident(stack, first).status == "resolved"
    with Session(stack.engine) as s:
        group = find_alert_group(s, GROUP_KEY)
        assert group is not None and group.incident_id == first + 1

    # resolved again, and a firing whose look before the lock still saw the incident worked on: the decision
    # under the lock opens anew all the same (prepared on a second try)
    assert sent(stack, url, notification(alert("gw-1", status="resolved")))["action"] == "resolved"
    monkeypatch.setattr(AlertIntake, "_worked_on", lambda self, key: True)
    third = sent(stack, url, notification(alert("gw-1")))
    assert third["action"] == "opened" and third["incident"]["number"] == first + 2
    assert incident(stack, first + 2).title == "Payment gateway is down"


def test_bad_tokens_payloads_and_versions_are_refused_naming_the_field(desk: tuple[Stack, str]) -> None:
    stack, url = desk
    good = notification(alert("gw-1"))
    for token in (None, "wrong", TOKEN + "x", ""):
        assert post(url, good, token)[0].status == 401
    assert fetch(url, PATH, {"Authorization": f"Bearer {TOKEN}"}).status == 405
    refusals = {
        "version": {**good, "version": "3"},
        "groupKey": {k: v for k, v in good.items() if k != "groupKey"},
        "status": {**good, "status": "pending"},
        "alerts": {**good, "alerts": []},
        "alerts.0.labels": {**good, "alerts": [{**alert("gw-1"), "labels": None}]},
        "alerts.1.status": {**good, "alerts": [alert("gw-1"), {**alert("gw-2"), "status": "ok"}]},
        "alerts.0.annotations.summary": {**good, "alerts": [{**alert("gw-1"), "annotations": {"summary": 5}}]},
        "commonLabels": {**good, "commonLabels": ["alertname"]},
        "truncatedAlerts": {**good, "truncatedAlerts": -1},
    }
    for field, body in refusals.items():
        answer, refused = post(url, body)
        assert (answer.status, refused["field"]) == (422, field), (field, answer.text)
        assert refused["error"].startswith(field + ": ")
    answer, refused = post(url, {k: v for k, v in good.items() if k != "version"})
    assert (answer.status, refused["error"]) == (422, "version: missing")
    assert post(url, None, raw=b"{not json")[1]["field"] == "body"
    assert incidents(stack) == 0
    assert post(url, notification(alert("gw-1", status="resolved")))[1] == {"incident": None, "action": "ignored"}


@pytest.mark.playbook({SHIPPED_LOCALE: SHIPPED_LOCALE})
def test_chinese_annotations_with_glued_card_numbers_are_masked_everywhere_shown(desk: tuple[Stack, str]) -> None:
    stack, url = desk
    summary = f"客户卡号{CARD}被重复扣款"
    shown = sent(stack, url, notification(alert("gw-1", summary=summary)))
    number = shown["incident"]["number"]
    assert CARD not in json.dumps(shown)
    title = incident(stack, number).title
    assert CARD not in title and title.startswith("客户卡号") and "0123" in title
    channel = stack.incident_channel(number).id
    sent(stack, url, notification(alert("gw-1", summary=summary), alert("gw-9", summary=f"卡号{CARD}扣款失败")))
    line = stack.texts(channel)[-1]
    assert line.startswith(":rotating_light: Alertmanager：本事件的告警组新增 1 条告警：\n")
    assert line.split("\n")[1] == "• *PaymentGatewayDown (instance=gw-9)* — 卡号****0123扣款失败"
    assert CARD not in line and "0123" in line
    sent(stack, url, notification(alert("gw-1", status="resolved", summary=summary)))
    assert stack.texts(channel)[-1].startswith(":white_check_mark: Alertmanager：该告警组的所有告警均已恢复")
    assert all(CARD not in text for text in stack.texts(channel))  # and the sandbox's leak check saw no call


def test_concurrent_deliveries_of_one_group_open_one_incident(desk_any: tuple[Stack, str]) -> None:
    """Alertmanager in a cluster (or retrying) may deliver the same group at once: the group key decides."""
    stack, url = desk_any
    body = notification(alert("gw-1"), alert("gw-2"))
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: post(url, body), range(6)))
    assert [a.status for a, _ in answers] == [200] * 6
    actions = sorted(shown["action"] for _, shown in answers)
    assert actions == ["opened"] + ["repeat"] * 5, actions
    assert len({shown["incident"]["number"] for _, shown in answers}) == 1
    assert stack.bot.executor.wait_idle()
    assert incidents(stack) == 1
    assert len([c for c in stack.sandbox.channels.values() if c.name.startswith("inc-")]) == 1


def test_the_playbooks_alerts_section_is_checked_against_its_kinds_and_severities() -> None:
    edits = {
        "  kind: outage\n  severity_label": "  kind: incident\n  severity_label",
        "info: sev4}\n  default_severity: sev3": "info: sev9}\n  default_severity: sev0",
        'title: "{summary}"': 'title: "{summary} {instance}"',
    }
    with pytest.raises(ConfigError) as exc:
        load_playbook_text(playbook_text(**edits))
    problems = " | ".join(exc.value.problems)
    assert "alerts.kind" in problems and "'incident' is not one of kinds" in problems
    assert "alerts.severities.info" in problems and "alerts.default_severity" in problems
    assert "alerts.title" in problems and "{summary}, {alertname}, {labels}" in problems


def test_a_playbook_without_the_alerts_kind_loads_and_warns() -> None:
    """No `alerts:` section and no outage kind: the playbook still loads; check-config says the webhook is off."""
    small = load_playbook_text(
        'version: "1"\n'
        "roles: {lead: {name: Lead, description: Runs it}}\n"
        "severities: {sev1: {name: Critical, description: Bad}}\n"
        "kinds: {complaint: {name: Complaint, description: One customer, default_severity: sev1, roles: [lead],"
        " welcome_template: slack/welcome_complaint.j2}}\n"
        "surge: {enabled: false}\n"
    )
    assert any(w.startswith("alerts.kind: 'outage' is not one of kinds") for w in playbook_warnings(small))


# ---- the real Alertmanager as the client ---------------------------------------------------------------------

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _until(check: Any, timeout: float = 8.0) -> Any:
    """Poll an outside process's effect (Alertmanager runs on its own clock), bounded."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("Alertmanager did not deliver in time")


@pytest.mark.skipif(
    ALERTMANAGER is None,
    reason="Alertmanager is not installed (Debian: apt-get install prometheus-alertmanager; `make test` does)",
)
def test_the_real_alertmanager_opens_and_resolves_through_the_webhook(desk: tuple[Stack, str], tmp_path: Path) -> None:
    stack, url = desk
    port = _free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        "route:\n"
        "  receiver: desk\n"
        "  group_by: [alertname]\n"
        "  group_wait: 0s\n"
        "  group_interval: 300ms\n"
        "  repeat_interval: 1h\n"
        "receivers:\n"
        "  - name: desk\n"
        "    webhook_configs:\n"
        f"      - url: {url}{PATH}\n"
        "        send_resolved: true\n"
        "        http_config:\n"
        "          authorization:\n"
        f"            credentials: {TOKEN}\n",
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [
            str(ALERTMANAGER),
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    api = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            try:
                with urllib.request.urlopen(f"{api}/-/ready", timeout=1) as response:
                    return bool(response.status == 200)
            except OSError:
                return False

        _until(ready)

        def push(ends: datetime | None) -> None:
            now = datetime.now(UTC)
            alert_in: dict[str, Any] = {
                "labels": {"alertname": "CoreBankingDown", "severity": "critical", "instance": "core-1"},
                "annotations": {"summary": "核心系统无响应", "description": f"客户卡号{CARD}交易失败"},
                "startsAt": (now - timedelta(minutes=1)).isoformat(),
            }
            if ends is not None:
                alert_in["endsAt"] = ends.isoformat()
            request = urllib.request.Request(
                f"{api}/api/v2/alerts",
                data=json.dumps([alert_in]).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                assert response.status == 200

        def group() -> Any:
            with Session(stack.engine) as s:
                return s.scalars(select(AlertGroup)).first()

        push(None)
        opened = _until(lambda: (g := group()) is not None and g.incident_id is not None and g)
        number = opened.incident_id
        row = incident(stack, number)
        assert (row.kind, row.severity, row.title) == ("outage", "sev1", "核心系统无响应")
        assert CARD not in (row.description or "")
        push(datetime.now(UTC) - timedelta(seconds=1))
        _until(lambda: group().last_status == "resolved")
        assert stack.bot.executor.wait_idle()
        texts = stack.texts(stack.incident_channel(number).id)
        assert texts[-1].startswith(":white_check_mark: Alertmanager: every alert of this group is resolved")
        assert incidents(stack) == 1
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
