"""Builds the bolt App and everything behind it. No globals: every test builds its own."""

from __future__ import annotations

import contextvars
import json
import logging
from dataclasses import dataclass
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse
from slack_sdk import WebClient
from sqlalchemy.orm import Session, sessionmaker

import handlers.actions
import handlers.commands
import handlers.complaints
import handlers.notices
import handlers.plan
import handlers.review
import handlers.surge
import handlers.surge_run
import handlers.views
from bot.core.clock import Clock, SystemClock
from bot.core.config import Playbook
from bot.core.errors import BotError
from bot.core.executor import TrackingExecutor
from bot.core.i18n import normalize, set_locale, use_locale
from bot.core.text import set_bank_patterns
from bot.deadlines.scheduler import Scheduler, Sweeper
from bot.services import Services
from bot.slack.gateway import SlackGateway
from bot.slack.ids import BlockId
from bot.slack.replies import error_message, tell
from bot.slack.signing import RequestVerifier

log = logging.getLogger(__name__)

# Set on a request's context once bolt's own checks (signature verification among them) have passed; the
# error handler acts on a body only when it is there.
VERIFIED = "incident_desk_verified"


@dataclass
class Bot:
    app: App
    services: Services
    executor: TrackingExecutor
    sweeper: Sweeper  # acts on what is due: tests call sweep() after moving the clock
    scheduler: Scheduler  # the timer around it: `incident-desk run` starts it
    verifier: RequestVerifier | None  # HTTP mode's front (bot/slack/web.py); None in Socket Mode


def create_app(
    playbook: Playbook,
    session_factory: sessionmaker[Session],
    *,
    client: WebClient,
    signing_secret: str | None,
    clock: Clock | None = None,
    executor: TrackingExecutor | None = None,
) -> Bot:
    """The composition root, top to bottom: the gateway, the services (bot/services.py), bolt, the listeners
    and the one error handler."""
    set_bank_patterns(p.regex for p in playbook.masking.patterns)
    clock = clock or SystemClock()
    gateway = SlackGateway(client, sleep=clock.sleep)  # retry waits are time too: a test clock moves instead
    services = Services.build(playbook, session_factory, gateway, clock)
    executor = executor or TrackingExecutor()
    app = _App(
        name="incident-desk",  # named, so bolt does not walk the call stack to name it (slow in deep stacks)
        client=client,
        signing_secret=signing_secret,
        request_verification_enabled=signing_secret is not None,
        listener_executor=executor,
        process_before_response=False,
        logger=logging.getLogger("bolt"),
    )
    app.use(_mark_verified)  # custom middleware runs after bolt's built-in ones, verification included
    app.use(_readers_language(gateway, playbook))
    handlers.commands.register(app, services)
    handlers.actions.register(app, services)
    handlers.views.register(app, services)
    handlers.notices.register(app, services)
    handlers.review.register(app, services)
    handlers.plan.register(app, services)
    handlers.surge_run.register(app, services)
    handlers.surge.register(app, services)
    handlers.complaints.register(app, services)
    app.error(_error_handler(services, gateway, playbook))
    verifier = RequestVerifier(signing_secret, session_factory) if signing_secret else None
    return Bot(app, services, executor, services.sweeper, services.scheduler, verifier)


def resume_unfinished(bot: Bot) -> int:
    """At start-up: finish the side effects a previous process committed but did not carry out (a channel
    half set up, a close whose archive never ran). Each post looks for its key in Slack first, so nothing
    is posted twice; a reporter whose channel is finished now is told by DM. Leases still held (another
    replica at work, or a lease not yet run out) are left to the scheduler's sweep."""
    ran = bot.services.outbox.resume()
    if ran:
        log.info("start-up: resumed %d unfinished side effect(s)", ran)
    return ran


def _mark_verified(context: dict[str, Any], next: Any) -> Any:
    context[VERIFIED] = True
    return next()


class _App(App):
    """bolt's App, each request dispatched in a context of its own: the middleware below sets the reader's
    language for that request only (bolt runs middleware one after another, not around the listener, so a
    `with` block in a middleware would end before the listener starts), and the listener executor copies it."""

    def dispatch(self, req: BoltRequest) -> BoltResponse:
        return contextvars.copy_context().run(super().dispatch, req)


def reader_locale(gateway: SlackGateway, playbook: Playbook, user_id: str | None) -> str:
    """The language of the person a request came from: their Slack locale, else the playbook's."""
    return normalize(gateway.user_locale(user_id) if user_id else None, normalize(playbook.locale))


def _readers_language(gateway: SlackGateway, playbook: Playbook) -> Any:
    """Middleware: the listener (and what it submits to the executor, which copies the context) speaks the
    reader's language: ephemeral replies, refusals, DMs to them and modals. Text a listener posts in a channel
    is built inside `in_channel_language(playbook)`, a DM to someone else inside `in_recipients_language`
    (see bot.core.i18n)."""

    def speak_readers_language(context: dict[str, Any], next: Any) -> Any:
        set_locale(reader_locale(gateway, playbook, context.get("user_id")))  # this request's context only
        return next()

    return speak_readers_language


def _json_response(payload: dict[str, Any]) -> BoltResponse:
    return BoltResponse(status=200, body=json.dumps(payload), headers={"content-type": "application/json"})


def _error_handler(services: Services, gateway: SlackGateway, playbook: Playbook) -> Any:
    def handle_error(
        error: Exception, body: dict[str, Any], context: dict[str, Any], response: BoltResponse | None
    ) -> BoltResponse | None:
        """Errors before the ack become the ack's answer (modal field errors, ephemeral text). An error
        before verification passed is refused: its body is anyone's, so nobody is told anything."""
        if not context.get(VERIFIED):
            log.warning("refused a request that failed before verification (%s)", type(error).__name__)
            return BoltResponse(status=401, body="") if response is not None else None
        with use_locale(reader_locale(gateway, playbook, context.get("user_id"))):  # a refusal is the reader's
            return _answer_error(services, error, body, response)

    return handle_error


def _answer_error(
    services: Services, error: Exception, body: dict[str, Any], response: BoltResponse | None
) -> BoltResponse | None:
    """What a failed request's user is told, in the language the caller chose."""
    message = error_message(error, str(body.get("command") or body.get("type") or ""))
    if response is not None and body.get("type") == "view_submission":
        field = error.field if isinstance(error, BotError) and error.field else BlockId.TITLE
        return _json_response({"response_action": "errors", "errors": {field: message}})
    if response is not None and "command" in body:
        return _json_response({"response_type": "ephemeral", "text": message})
    tell(services.slack, body, message)
    return BoltResponse(status=200, body="") if response is not None else None
