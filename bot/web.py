"""The HTTP front: Slack's events at /slack/events, /healthz, and the public status page
(/status, /status.json, /status/feed.atom)."""

from __future__ import annotations

import json
import os
import threading
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker
from waitress.server import create_server

from bot.status_page import StatusPage

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _base_url(environ: dict[str, Any]) -> str:
    """Where the page is reached from outside: INCIDENT_DESK_PUBLIC_URL, else the request's own host."""
    configured = os.environ.get("INCIDENT_DESK_PUBLIC_URL", "").rstrip("/")
    if configured:
        return configured
    host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT', '80')}"
    return f"{environ.get('wsgi.url_scheme', 'http')}://{host}"


def _status_route(status: StatusPage, environ: dict[str, Any]) -> tuple[str, str, bytes] | None:
    path = environ.get("PATH_INFO", "")
    if path not in ("/status", "/status/", "/status.json", "/status/feed.atom"):
        return None
    if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
        return "405 Method Not Allowed", "text/plain; charset=utf-8", b"GET only"
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    base = _base_url(environ)
    if path == "/status.json":
        return "200 OK", "application/json; charset=utf-8", json.dumps(status.json(), ensure_ascii=False).encode()
    if path == "/status/feed.atom":
        return "200 OK", "application/atom+xml; charset=utf-8", status.atom(base)
    lang = (query.get("lang") or [None])[0]
    return "200 OK", "text/html; charset=utf-8", status.html(lang, base).encode()


def make_wsgi(app: App, db: sessionmaker[Session], status_page: StatusPage | None = None) -> WSGIApp:
    bolt = SlackRequestHandler(app, path="/slack/events")

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        routed = _status_route(status_page, environ) if status_page is not None else None
        if routed is not None:
            code, content_type, data = routed
            start_response(
                code,
                [
                    ("Content-Type", content_type),
                    ("Content-Length", str(len(data))),
                    ("Cache-Control", "public, max-age=30"),
                ],
            )
            return [data]
        if environ.get("PATH_INFO") == "/healthz":
            try:
                with db() as session:
                    session.execute(text("SELECT 1"))
                status, payload = "200 OK", {"ok": True, "database": "ok"}
            except Exception:  # the health check reports, it does not crash
                status, payload = "503 Service Unavailable", {"ok": False, "database": "unreachable"}
            data = json.dumps(payload).encode()
            start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
            return [data]
        return bolt(environ, start_response)

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
