"""The HTTP front in HTTP mode: Slack's events at /slack/events, and /healthz."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker
from waitress.server import create_server

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def make_wsgi(app: App, db: sessionmaker[Session]) -> WSGIApp:
    bolt = SlackRequestHandler(app, path="/slack/events")

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
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
