"""The HTTP front: Slack's events at /slack/events, /healthz, and the public status page
(/status, /status.json, /status/feed.atom).

Slack's requests are verified here, before bolt parses a byte of them (bot/slack/signing.py): a request that
fails gets 401 and reaches no listener, no error handler and no outgoing call. The status page's links
come from INCIDENT_DESK_PUBLIC_URL or are relative; nothing in a response is taken from the Host header.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import threading
import urllib.parse
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from slack_bolt.adapter.wsgi import SlackRequestHandler
from waitress.server import create_server

from bot.core.i18n import use_locale
from bot.intake.service import (
    IntakeConflictError,
    IntakeError,
    IntakeNotFoundError,
    IntakeOrderError,
    control_in,
    parse_complaint,
)
from store.db import ping

if TYPE_CHECKING:
    from bot.app import Bot

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
EVENTS_PATH = "/slack/events"
MAX_EVENT_BYTES = 2 * 1024 * 1024  # Slack's payloads are far smaller; refuse to buffer more
COMPLAINTS_PATH = "/api/v1/complaints"
MAX_COMPLAINT_BYTES = 64 * 1024  # one complaint; a bigger body is refused before it is read
ALERTMANAGER_PATH = "/api/v1/alerts/alertmanager"
MAX_ALERT_BYTES = 1024 * 1024  # one notification of a large group; Alertmanager's max_alerts can cap it
# Revalidate every time: the page changes the moment a notice is published, and no cache (shared or not)
# keeps a copy it may serve without asking; the ETag makes the revalidation cheap.
STATUS_CACHE_CONTROL = "no-cache"

log = logging.getLogger(__name__)


def _status_route(bot: Bot, environ: dict[str, Any], base: str) -> tuple[str, str, bytes] | None:
    path = environ.get("PATH_INFO", "")
    if path not in ("/status", "/status/", "/status.json", "/status/feed.atom"):
        return None
    if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
        return "405 Method Not Allowed", "text/plain; charset=utf-8", b"GET only"
    status = bot.services.status_page
    if path == "/status.json":
        return "200 OK", "application/json; charset=utf-8", json.dumps(status.json(), ensure_ascii=False).encode()
    if path == "/status/feed.atom":
        return "200 OK", "application/atom+xml; charset=utf-8", status.atom(base)
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    lang = (query.get("lang") or [None])[0]
    return "200 OK", "text/html; charset=utf-8", status.html(lang, base).encode()


def _respond(start_response: Callable[..., Any], status: str, payload: dict[str, Any]) -> list[bytes]:
    data = json.dumps(payload, ensure_ascii=False).encode()
    start_response(status, [("Content-Type", "application/json; charset=utf-8"), ("Content-Length", str(len(data)))])
    return [data]


def _bearer_ok(environ: dict[str, Any], token: str) -> bool:
    """Whether the request carries `Authorization: Bearer <token>`, compared in constant time."""
    header = environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


class _RefusedError(Exception):
    """An intake API request answered before it reaches a service: its status and JSON payload."""

    def __init__(self, status: str, payload: dict[str, Any]) -> None:
        super().__init__(status)
        self.status, self.payload = status, payload


def _intake_body(environ: dict[str, Any], token: str, path: str, limit: int = MAX_COMPLAINT_BYTES) -> Any:
    """The intake API's common gate: POST only, the bearer token, the body's size, JSON. Nothing is logged
    from the body or the header."""
    if environ.get("REQUEST_METHOD") != "POST":
        raise _RefusedError("405 Method Not Allowed", {"error": "POST only"})
    if not _bearer_ok(environ, token):
        log.warning("refused a request to %s: missing or wrong bearer token", path)
        raise _RefusedError("401 Unauthorized", {"error": "missing or wrong bearer token"})
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = -1
    if not 0 <= length <= limit:
        raise _RefusedError("413 Content Too Large", {"error": "body too large", "field": "body"})
    raw = environ["wsgi.input"].read(length) if length else b""
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # also an integer of >4300 digits, or deep nesting
        raise _RefusedError("422 Unprocessable Content", {"error": "body is not JSON", "field": "body"}) from None
    control = control_in(body)
    if control is not None:
        field, code = control
        raise _RefusedError(
            "422 Unprocessable Content", {"error": f"{field}: remove the control character {code}", "field": field}
        )
    return body


def _intake_api(route: Callable[[], tuple[str, dict[str, Any]]]) -> tuple[str, dict[str, Any]]:
    """Run an intake route, answering its refusals and the domain's errors the same way on every route:
    422 naming the field, 404 for what is not recorded, 409 for a conflict."""
    try:
        return route()
    except _RefusedError as refused:
        return refused.status, refused.payload
    except IntakeError as exc:
        return "422 Unprocessable Content", {"error": f"{exc.field}: {exc.message}", "field": exc.field}
    except IntakeNotFoundError as exc:
        return "404 Not Found", {"error": exc.message, "field": exc.field}
    except IntakeOrderError as exc:
        return "409 Conflict", {"error": exc.message, "field": exc.field}


def _complaint_route(bot: Bot, environ: dict[str, Any], token: str) -> tuple[str, dict[str, Any]]:
    """POST /api/v1/complaints: record one complaint."""
    body = _intake_body(environ, token, COMPLAINTS_PATH)
    try:
        recorded = bot.services.intake.record(parse_complaint(body))
    except IntakeConflictError as exc:
        return "409 Conflict", {"error": "external_id is recorded with another body", "field": exc.field}
    answer: dict[str, Any] = {
        "number": recorded.number,
        "external_id": recorded.external_id,
        "summary": recorded.summary,
    }
    answer |= recorded.routed.answer()  # routed: opened | joined | escalated | recorded, and the incident
    if recorded.created:
        log.info("recorded complaint %d", recorded.number)
    return ("201 Created" if recorded.created else "200 OK"), answer


def _complaint_event_external_id(path: str) -> str | None:
    """`<external id>` of /api/v1/complaints/<external id>/events (WSGI hands the path over as latin-1)."""
    prefix, suffix = COMPLAINTS_PATH + "/", "/events"
    if not (path.startswith(prefix) and path.endswith(suffix)) or len(path) <= len(prefix) + len(suffix):
        return None
    try:
        return path[len(prefix) : -len(suffix)].encode("latin-1").decode("utf-8")
    except UnicodeError:
        return None


def _complaint_event_route(
    bot: Bot, environ: dict[str, Any], token: str, external_id: str
) -> tuple[str, dict[str, Any]]:
    """POST /api/v1/complaints/<external id>/events: the complaint system's update meets its deadlines."""
    body = _intake_body(environ, token, COMPLAINTS_PATH + "/…/events")
    control = control_in(external_id)  # a NUL in the path (`%00`) was a 500 on PostgreSQL
    if control is not None:
        raise _RefusedError(
            "422 Unprocessable Content",
            {"error": f"external_id: remove the control character {control[1]}", "field": "external_id"},
        )
    answer = bot.services.complaint_records.record_event(external_id, body)
    return ("201 Created" if answer.created else "200 OK"), answer.complaint


def _alertmanager_route(bot: Bot, environ: dict[str, Any], token: str) -> tuple[str, dict[str, Any]]:
    """POST /api/v1/alerts/alertmanager: one webhook notification (bot/intake/alerts.py). The answer does not
    wait for Slack: the channel set-up and the lines run on the bot's executor after it."""
    body = _intake_body(environ, token, ALERTMANAGER_PATH, MAX_ALERT_BYTES)
    playbook = bot.services.playbook
    if playbook.alerts.kind not in playbook.kinds:  # a playbook without that kind and no `alerts:` section
        missing = f"the playbook has no kind {playbook.alerts.kind!r}; set alerts.kind"
        return "503 Service Unavailable", {"error": missing}
    outcome = bot.services.alerts.receive(body)
    if outcome.set_up is not None or outcome.flush:
        bot.executor.submit(bot.services.alerts.follow_up, outcome)
    return "200 OK", outcome.answer()


def make_wsgi(
    bot: Bot, *, public_url: str | None = None, slack_events: bool = True, intake_token: str | None = None
) -> WSGIApp:
    """The bot's HTTP front. `public_url` is where the status page is reached from outside (links are
    relative without it). `slack_events=False` (Socket Mode's side server) serves no /slack/events at all.
    `intake_token` (INCIDENT_DESK_INTAKE_TOKEN) turns the intake API on; without it the API is not there."""
    verifier = bot.verifier
    if slack_events and verifier is None:
        raise ValueError("serving /slack/events needs a signing secret to verify requests")
    bolt = SlackRequestHandler(bot.app, path=EVENTS_PATH) if slack_events else None
    base = (public_url or "").rstrip("/")

    def slack_event(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        assert bolt is not None and verifier is not None
        if environ.get("REQUEST_METHOD") != "POST":
            return _respond(start_response, "405 Method Not Allowed", {"error": "POST only"})
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_EVENT_BYTES:
            return _respond(start_response, "413 Content Too Large", {"error": "invalid request"})
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {
            key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key.startswith("HTTP_")
        }
        refusal = verifier.check(headers, body)
        if refusal is not None:
            log.warning("refused a request to %s: %s", EVENTS_PATH, refusal.reason)
            status = "401 Unauthorized" if refusal.status == 401 else "503 Service Unavailable"
            return _respond(start_response, status, {"error": "invalid request"})
        environ["wsgi.input"] = io.BytesIO(body)  # bolt reads the body again (and verifies it again)
        environ["CONTENT_LENGTH"] = str(len(body))
        return bolt(environ, start_response)

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        with use_locale(bot.services.playbook.locale):  # the page's own words; notices carry their locales
            routed = _status_route(bot, environ, base)
        if routed is not None:
            code, content_type, data = routed
            etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
            headers = [("Content-Type", content_type), ("Cache-Control", STATUS_CACHE_CONTROL), ("ETag", etag)]
            if code.startswith("200") and environ.get("HTTP_IF_NONE_MATCH") == etag:
                start_response("304 Not Modified", headers)
                return [b""]
            start_response(code, [*headers, ("Content-Length", str(len(data)))])
            return [data]
        if path == "/healthz":
            try:
                with bot.services.db() as session:
                    ping(session)
                status, payload = "200 OK", {"ok": True, "database": "ok"}
            except Exception:  # the health check reports, it does not crash
                status, payload = "503 Service Unavailable", {"ok": False, "database": "unreachable"}
            return _respond(start_response, status, payload)
        if path == COMPLAINTS_PATH and intake_token:
            status, payload = _intake_api(lambda: _complaint_route(bot, environ, intake_token))
            return _respond(start_response, status, payload)
        if path == ALERTMANAGER_PATH and intake_token:
            status, payload = _intake_api(lambda: _alertmanager_route(bot, environ, intake_token))
            return _respond(start_response, status, payload)
        if intake_token and (external_id := _complaint_event_external_id(path)) is not None:
            status, payload = _intake_api(lambda: _complaint_event_route(bot, environ, intake_token, external_id))
            return _respond(start_response, status, payload)
        if path == EVENTS_PATH and bolt is not None:
            return slack_event(environ, start_response)
        return _respond(start_response, "404 Not Found", {"error": "not found"})

    return wsgi


class HttpServer:
    """A waitress server on a thread (tests, the demo) or in the foreground (`incident-desk run`)."""

    def __init__(self, wsgi: WSGIApp, host: str = "127.0.0.1", port: int = 0, threads: int = 8) -> None:
        self.server: Any = create_server(wsgi, host=host, port=port, threads=threads, ident="incident-desk")
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.effective_port}"

    def start(self) -> HttpServer:
        self._thread = threading.Thread(target=self.server.run, name="http", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.server.run()

    def stop(self) -> None:
        """Let in-flight requests finish, then close the socket (the loop thread then ends by itself)."""
        self.server.task_dispatcher.shutdown(cancel_pending=False, timeout=10)
        self.server.close()
