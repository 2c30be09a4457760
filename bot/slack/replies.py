"""The one policy for telling a user that something failed.

Before the ack, bolt's error handler (bot/app.py) answers in the ack itself. After the ack, bolt cannot
carry an error (it would reset the ack and Slack would show a 404), so listeners wrap their post-ack work
in `reporting_errors`, which applies the same policy through the response_url or a DM.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bot.core.errors import BotError
from bot.core.i18n import _
from bot.core.text import mask_identifiers
from bot.slack.gateway import SlackCallError, SlackGateway

log = logging.getLogger(__name__)


def error_message(error: BaseException, context: str = "") -> str:
    """A BotError's own message (masked: it may quote the user's text); for anything else a reference to the
    logged traceback, never str(error)."""
    if isinstance(error, BotError):
        return mask_identifiers(error.message)
    ref = secrets.token_hex(3)
    log.error("unhandled error (ref %s) in %s", ref, context or "listener", exc_info=error)
    return _("Something went wrong (ref {ref}); nothing was changed. Try again, or give the ref to an admin.", ref=ref)


def tell(slack: SlackGateway, body: dict[str, Any], message: str) -> None:
    """Reply privately to whoever sent `body`: its response_url if it has one, else a DM."""
    response_url = body.get("response_url") or next(
        (r.get("response_url") for r in body.get("response_urls", []) if r.get("response_url")), None
    )
    user = body.get("user_id") or body.get("user", {}).get("id")
    message = mask_identifiers(message)
    try:
        if response_url:
            slack.respond(response_url, message)
        elif user:
            slack.dm(user, message)
    except SlackCallError as exc:
        log.warning("could not tell the user about an error: %s", exc.error)


@contextmanager
def reporting_errors(slack: SlackGateway, body: dict[str, Any]) -> Iterator[None]:
    """Post-ack work: any failure is told to the user instead of escaping into bolt."""
    try:
        yield
    except Exception as exc:  # the single post-ack catch-all; see the module docstring
        tell(slack, body, error_message(exc, str(body.get("command") or body.get("type") or "")))
