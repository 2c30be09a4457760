"""Customer e-mail over SMTP: one message with a plain-text and an HTML part, settings from the environment."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from bot.core.i18n import _, ngettext
from bot.core.retry import RetryPolicy, TransientError
from bot.notices.webhooks import Delivery

SECURITY = ("starttls", "ssl", "none")


@dataclass(frozen=True)
class SmtpSettings:
    """SMTP_HOST, SMTP_PORT, SMTP_SECURITY (starttls|ssl|none), SMTP_USERNAME, SMTP_PASSWORD."""

    host: str
    port: int
    security: str = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SmtpSettings | str:
        """The settings, or what is wrong with them (a notice names the variable instead of crashing)."""
        host = env.get("SMTP_HOST", "").strip()
        if not host:
            return _("{setting} is not set", setting="SMTP_HOST")
        security = env.get("SMTP_SECURITY", "starttls").strip().lower() or "starttls"
        if security not in SECURITY:
            return _(
                "{setting} must be one of {choices}, not {value}",
                setting="SMTP_SECURITY",
                choices=", ".join(SECURITY),
                value=repr(security),
            )
        default_port = {"starttls": "587", "ssl": "465", "none": "25"}[security]
        port = env.get("SMTP_PORT", default_port).strip() or default_port
        if not port.isdigit() or not 0 < int(port) < 65536:
            return _("{setting} must be a port number, not {value}", setting="SMTP_PORT", value=repr(port))
        return cls(host, int(port), security, env.get("SMTP_USERNAME") or None, env.get("SMTP_PASSWORD") or None)


def build_message(*, sender: str, recipients: tuple[str, ...], subject: str, text: str, html: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


class Mailer:
    """Sends one message; retries connection failures and 4xx (temporary) replies, never raises."""

    def __init__(
        self, *, sleep: Callable[[float], None], attempts: int = 3, backoff: float = 0.5, timeout: float = 20.0
    ) -> None:
        self.retry = RetryPolicy(attempts=attempts, backoff=backoff, sleep=sleep)
        self.timeout = timeout

    def send(self, settings: SmtpSettings, message: EmailMessage) -> Delivery:
        def attempt(n: int) -> Delivery:
            try:
                self._send_once(settings, message)
                count = len(message["To"].split(","))
                return Delivery(True, n, ngettext("sent to {n} recipient", "sent to {n} recipients", count))
            except smtplib.SMTPResponseException as exc:
                if not 400 <= exc.smtp_code < 500:
                    return Delivery(False, n, f"smtp {exc.smtp_code}")
                raise TransientError(f"smtp {exc.smtp_code}") from None  # 4xx: temporary, by SMTP's own rules
            except smtplib.SMTPRecipientsRefused:
                return Delivery(False, n, _("every recipient was refused"))
            except (OSError, smtplib.SMTPException) as exc:
                raise TransientError(_("connection error ({error})", error=type(exc).__name__)) from None

        try:
            return self.retry.run(attempt)
        except TransientError as exc:
            return Delivery(False, self.retry.attempts, exc.detail)

    def _send_once(self, settings: SmtpSettings, message: EmailMessage) -> None:
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if settings.security == "ssl":
            smtp = smtplib.SMTP_SSL(settings.host, settings.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=self.timeout)
        with smtp:
            if settings.security == "starttls":
                smtp.starttls(context=context)
            if settings.username:
                smtp.login(settings.username, settings.password or "")
            smtp.send_message(message)
