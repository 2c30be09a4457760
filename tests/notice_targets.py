"""Real receivers for published notices: an SMTP server (aiosmtpd) and a webhook endpoint, both on loopback."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import socket
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from bot.sandbox.server import PromptHTTPServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.body))

    def signed_by(self, secret: str) -> bool:
        """Check the signature the way a receiving system would."""
        timestamp = self.headers.get("X-Incident-Desk-Timestamp", "")
        expected = hmac.new(secret.encode(), timestamp.encode() + b"." + self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(self.headers.get("X-Incident-Desk-Signature", ""), f"sha256={expected}")


@dataclass
class WebhookReceiver:
    """Answers 200, or a failure status for the next N requests to a path (`fail`), or always (`broken`), or
    a redirect to another path (`redirect`: path -> (status, target path)) as a moved system would.
    A path in `held` answers only once its event is set, so a test can act while a notice is publishing;
    `arrived` is set by every request."""

    fail: dict[str, int] = field(default_factory=dict)
    broken: set[str] = field(default_factory=set)
    redirect: dict[str, tuple[int, str]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    held: dict[str, threading.Event] = field(default_factory=dict)
    arrived: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.received.append(Received(self.path, dict(self.headers.items()), body))
                receiver.arrived.set()
                if self.path in receiver.held:
                    receiver.held[self.path].wait(30)
                status, location = 200, None
                if self.path in receiver.redirect:
                    status, target = receiver.redirect[self.path]
                    location = receiver.url(target)
                elif self.path in receiver.broken:
                    status = 500
                elif receiver.fail.get(self.path, 0) > 0:
                    receiver.fail[self.path] -= 1
                    status = 503
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = PromptHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = self.server.serve_in_thread("webhook-receiver")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def to(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Inbox:
    """An aiosmtpd handler that keeps every message it is given, parsed, and the login used."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.logins: list[tuple[str, str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            self.logins.append((auth_data.login.decode(), auth_data.password.decode()))
            return AuthResult(success=auth_data.password == b"smtp-secret")
        return AuthResult(success=False, handled=False)


class SmtpServer:
    def __init__(self) -> None:
        self.inbox = Inbox()
        self.port = free_port()
        self.controller = Controller(
            self.inbox,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=self.inbox.authenticate,
            auth_require_tls=False,
        )
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()


WEBHOOK_SECRET = "webhook-signing-secret"
WEBHOOK_ENV = {
    "social": "SOCIAL_WEBHOOK_URL",
    "hotline": "HOTLINE_WEBHOOK_URL",
    "complaints": "COMPLAINT_SYSTEM_WEBHOOK_URL",
}


def wire_targets(
    monkeypatch: Any,
    hooks: WebhookReceiver,
    *paths: str,
    smtp: SmtpServer | None = None,
    secret: str = WEBHOOK_SECRET,
) -> None:
    """Point the notice channels at real receivers through the environment, as production configures them:
    each webhook path named (`social`, `hotline`, `complaints`) to `hooks`, e-mail to `smtp` when given."""
    for path in paths:
        monkeypatch.setenv(WEBHOOK_ENV[path], hooks.url(f"/{path}"))
    monkeypatch.setenv("INCIDENT_DESK_WEBHOOK_SECRET", secret)
    if smtp is not None:
        for name, value in {
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp.port),
            "SMTP_SECURITY": "none",
            "SMTP_USERNAME": "notices",
            "SMTP_PASSWORD": "smtp-secret",
        }.items():
            monkeypatch.setenv(name, value)
