"""The one gateway to Slack's Web API.

Every call goes through `SlackGateway.call`, which retries 429s after Slack's Retry-After and
transient failures (5xx, connection errors) with bounded exponential backoff: bot.core.retry's policy, the
same as webhooks' and SMTP's. Posts to one channel are serialised so a retried message cannot be overtaken
by the next one. Each attempt first books its moment with the pacer, so the bot stays within Slack's published
limits instead of relying on 429s (bot/slack/pacing.py).
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.webhook import WebhookClient

from bot.core.retry import RetryPolicy, TransientError, retry_after
from bot.slack.pacing import Pacer

log = logging.getLogger(__name__)

PER_USER_INVITE_ERRORS = {
    "user_not_found",
    "cant_invite",
    "user_is_restricted",
    "user_is_ultra_restricted",
    "user_disabled",
    "already_in_channel",
}
# A trigger can be exchanged once: after an ambiguous first attempt, these mean the modal did open.
USED_TRIGGER_ERRORS = {"invalid_trigger_id", "expired_trigger_id", "exchanged_trigger_id"}
# Every message the bot posts carries its key here, so a retry can find a post that Slack already took.
POST_EVENT_TYPE = "incident_desk_post"
HISTORY_LOOKBACK = 50
TRANSIENT_ERRORS = {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"}


class SlackCallError(Exception):
    """A Slack call that failed for good; `error` is Slack's error code (e.g. `name_taken`)."""

    def __init__(self, method: str, error: str) -> None:
        super().__init__(f"{method} failed: {error}")
        self.method = method
        self.error = error


class SlackGateway:
    def __init__(
        self,
        client: WebClient,
        *,
        max_attempts: int = 6,
        backoff: float = 0.25,
        max_backoff: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        pacer: Pacer | None = None,
    ) -> None:
        self.client = client
        self.pacer = pacer  # keeps the bot within Slack's published limits (bot/slack/pacing.py); None: no pacing
        self.monotonic = monotonic
        self._locales: dict[str, tuple[float, str | None]] = {}  # user -> (good until, Slack locale)
        self._locale_lookups: dict[str, Future[str | None]] = {}  # lookups under way, shared by their waiters
        self._locale_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="locale")
        self.retry = RetryPolicy(attempts=max_attempts, backoff=backoff, max_backoff=max_backoff, sleep=sleep)
        self._channel_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._locks_guard = threading.Lock()
        self._bot_user_id: str | None = None
        self._dm_channels: dict[str, str] = {}

    @classmethod
    def connect(cls, token: str, base_url: str, **kwargs: Any) -> SlackGateway:
        """A gateway with its own WebClient (retries are ours, so the client's own are turned off)."""
        return cls(make_web_client(token, base_url), **kwargs)

    # ---- the retrying core ---------------------------------------------------------------------------

    def call(
        self,
        method: str,
        *,
        recover: Callable[[], dict[str, Any] | None] | None = None,
        benign_after_retry: frozenset[str] = frozenset(),
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Call a Web API method; retry what is worth retrying; raise SlackCallError otherwise.

        A 5xx or a dropped connection is ambiguous: Slack may have done the work. Before such a call is
        sent again, `recover` may find the result of the earlier attempt (a post found by its key); and
        an error in `benign_after_retry` after an ambiguous attempt means that attempt succeeded.
        """
        ambiguous = False  # an attempt may have done the work although it failed

        def attempt(n: int) -> dict[str, Any]:
            nonlocal ambiguous
            if ambiguous and recover is not None:
                found = recover()
                if found is not None:
                    log.info("Slack %s: the earlier attempt had succeeded; not sent again", method)
                    return found
            if self.pacer is not None:
                self.pacer.wait(method, str(kwargs.get("channel", "")))
            try:
                response = getattr(self.client, method.replace(".", "_"))(**kwargs)
                return dict(response.data) if isinstance(response.data, dict) else {}
            except SlackApiError as exc:
                status = exc.response.status_code
                error = str(exc.response.get("error", "")) if isinstance(exc.response.data, dict) else ""
                if status == 429:
                    wait = retry_after(exc.response.headers)
                    log.warning("Slack rate-limited %s; retrying in %ss (attempt %d)", method, wait, n)
                    raise TransientError("ratelimited", retry_after=wait) from None
                if status >= 500 or error in TRANSIENT_ERRORS:
                    log.warning("Slack %s failed transiently (%s %s); retrying", method, status, error)
                    ambiguous = ambiguous or status >= 500 or error in ("internal_error", "fatal_error")
                    raise TransientError(error or f"http_{status}") from None
                if ambiguous and error in benign_after_retry:
                    log.info("Slack %s answered %s after an ambiguous attempt: taken as done", method, error)
                    return {}
                raise SlackCallError(method, error or f"http_{status}") from None
            except SlackRequestError as exc:  # a file upload's middle step was refused
                raise SlackCallError(method, "upload_failed") from exc
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                log.warning("Slack %s: connection problem (%s); retrying", method, type(exc).__name__)
                ambiguous = True
                raise TransientError("connection_error") from exc

        try:
            return self.retry.run(attempt)
        except TransientError as exc:
            raise SlackCallError(method, exc.detail) from None

    def _channel_lock(self, channel: str) -> threading.Lock:
        with self._locks_guard:
            return self._channel_locks[channel]

    # ---- what the services use -----------------------------------------------------------------------

    @property
    def bot_user_id(self) -> str:
        if self._bot_user_id is None:
            self._bot_user_id = str(self.call("auth.test")["user_id"])
        return self._bot_user_id

    def create_channel(self, name: str) -> dict[str, Any]:
        return dict(self.call("conversations.create", name=name, is_private=False)["channel"])

    def find_channel(self, name: str) -> dict[str, Any] | None:
        """Look a channel up by name (Slack has no direct lookup, so page through the list)."""
        cursor = ""
        while True:
            page = self.call("conversations.list", types="public_channel,private_channel", limit=200, cursor=cursor)
            for channel in page.get("channels", []):
                if channel.get("name") == name:
                    return dict(channel)
            cursor = page.get("response_metadata", {}).get("next_cursor", "")
            if not cursor:
                return None

    def set_topic(self, channel: str, topic: str) -> None:
        self.call("conversations.setTopic", channel=channel, topic=topic)

    def join_channel(self, channel: str) -> None:
        """Join a public channel people made (the leadership channel): a bot cannot post where it is not a
        member. Joining a channel the bot is in already is harmless (Slack answers with a warning)."""
        self.call("conversations.join", channel=channel)

    def invite(self, channel: str, users: list[str]) -> dict[str, str]:
        """Invite the users not yet in the channel. Slack refuses a whole batch for one bad user, so on a
        per-user error each is invited alone; returns the users skipped, with Slack's reason."""
        wanted = [u for u in dict.fromkeys(users) if u and u != self.bot_user_id]
        if not wanted:
            return {}
        members = self.channel_members(channel)
        missing = [u for u in wanted if u not in members]
        if not missing:
            return {}
        try:
            self.call("conversations.invite", channel=channel, users=",".join(missing))
            return {}
        except SlackCallError as exc:
            if exc.error not in PER_USER_INVITE_ERRORS:
                raise
            if len(missing) == 1:
                return {} if exc.error == "already_in_channel" else {missing[0]: exc.error}
        skipped: dict[str, str] = {}
        for user in missing:
            try:
                self.call("conversations.invite", channel=channel, users=user)
            except SlackCallError as exc:
                if exc.error not in PER_USER_INVITE_ERRORS:
                    raise
                if exc.error != "already_in_channel":  # a retried invite that had worked: they are in
                    skipped[user] = exc.error
        return skipped

    def channel_members(self, channel: str) -> set[str]:
        """Everyone in a channel (paged through, as Slack lists large channels in pages)."""
        members: set[str] = set()
        cursor = ""
        while True:
            page = self.call("conversations.members", channel=channel, limit=1000, cursor=cursor)
            members.update(str(m) for m in page.get("members", []))
            cursor = page.get("response_metadata", {}).get("next_cursor", "")
            if not cursor:
                return members

    def post(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        *,
        key: str = "",
        check_first: bool = False,
    ) -> str:
        """Post a message once; returns its ts. Posts to one channel keep their order, retries included.

        The message carries `key` (a fresh one when none is given) in its metadata; when an attempt fails
        ambiguously, the channel's recent history is read for that key before the post is sent again.
        `check_first` reads it before the first attempt too: a send resumed after a crash may have gone out.
        """
        key = key or uuid.uuid4().hex
        with self._channel_lock(channel):
            if check_first:
                found = self._find_post(channel, key)
                if found is not None:
                    return str(found["ts"])
            kwargs: dict[str, Any] = {
                "channel": channel,
                "text": text,
                "metadata": {"event_type": POST_EVENT_TYPE, "event_payload": {"key": key}},
            }
            if blocks:
                kwargs["blocks"] = blocks
            result = self.call("chat.postMessage", recover=lambda: self._find_post(channel, key), **kwargs)
            return str(result["ts"])

    def _find_post(self, channel: str, key: str) -> dict[str, Any] | None:
        """The bot's own recent message in `channel` carrying `key`, if an earlier attempt posted it (the
        newest HISTORY_LOOKBACK messages, page by page: Slack may answer fewer than `limit` at a time)."""
        cursor, read = "", 0
        while read < HISTORY_LOOKBACK:
            try:
                page = self.call(
                    "conversations.history",
                    channel=channel,
                    limit=HISTORY_LOOKBACK - read,
                    include_all_metadata=True,
                    cursor=cursor,
                )
            except SlackCallError as exc:
                log.warning("could not read %s to check for an earlier post: %s", channel, exc.error)
                return None
            messages = page.get("messages", [])
            for message in messages:
                metadata = message.get("metadata") or {}
                payload = metadata.get("event_payload") or {}
                if metadata.get("event_type") == POST_EVENT_TYPE and payload.get("key") == key:
                    return {"ts": message["ts"], "channel": channel}
            read += len(messages)
            cursor = page.get("response_metadata", {}).get("next_cursor", "")
            if not cursor or not messages:
                return None
        return None

    def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        kwargs: dict[str, Any] = {"channel": channel, "ts": ts, "text": text}
        if blocks:
            kwargs["blocks"] = blocks
        self.call("chat.update", **kwargs)

    def dm(
        self,
        user: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        *,
        key: str = "",
        check_first: bool = False,
    ) -> str:
        """Post to a person's DM; the DM channel is opened once per person and remembered."""
        channel = self._dm_channels.get(user)
        if channel is None:
            channel = str(self.call("conversations.open", users=user)["channel"]["id"])
            self._dm_channels[user] = channel
        return self.post(channel, text, blocks, key=key, check_first=check_first)

    def user_info(self, user: str) -> dict[str, Any] | None:
        try:
            return dict(self.call("users.info", user=user)["user"])
        except SlackCallError as exc:
            if exc.error in ("user_not_found", "user_not_visible"):
                return None
            raise

    LOCALE_TTL = 600.0  # seconds a user's Slack locale is remembered (people rarely switch languages)
    LOCALE_RETRY = 60.0  # seconds before a failed lookup is tried again (until then: the playbook's language)
    LOCALE_WAIT = 0.3  # the longest a request waits for it: the lookup sits before Slack's 3-second ack

    def user_locale(self, user: str) -> str | None:
        """The user's Slack locale (`zh-CN`, `en-US`...) from `users.info` with `include_locale`, remembered for
        LOCALE_TTL, so a request pays for the lookup at most once per user in that time. One attempt, awaited
        at most LOCALE_WAIT: a slow or failing Slack never holds up an ack; the reader then gets the playbook's
        language (None), and the lookup, if it still answers, serves the next request."""
        now = self.monotonic()
        with self._locks_guard:
            cached = self._locales.get(user)
            if cached is not None and now < cached[0]:
                return cached[1]
            lookup = self._locale_lookups.get(user)
            if lookup is None:
                lookup = self._locale_pool.submit(self._look_up_locale, user, now)
                self._locale_lookups[user] = lookup
        try:
            return lookup.result(timeout=self.LOCALE_WAIT)
        except FutureTimeout:
            log.info("users.info for %s's locale is slow; using the playbook's language for now", user)
            return None

    def _look_up_locale(self, user: str, asked_at: float) -> str | None:
        try:
            response = self.client.users_info(user=user, include_locale=True)
            found = (response.data if isinstance(response.data, dict) else {}).get("user") or {}
            locale = str(found.get("locale") or "") or None
            good_for = self.LOCALE_TTL
        except (SlackApiError, SlackRequestError, OSError, urllib.error.URLError) as exc:
            error = exc.response.get("error", "") if isinstance(exc, SlackApiError) else type(exc).__name__
            log.info("users.info for %s's locale failed (%s); using the playbook's language", user, error)
            locale, good_for = None, self.LOCALE_RETRY
        with self._locks_guard:
            self._locales[user] = (asked_at + good_for, locale)
            self._locale_lookups.pop(user, None)
        return locale

    def find_user(self, handle: str) -> dict[str, Any] | None:
        """Find a member by @handle, display name or real name (for unescaped mentions)."""
        wanted = handle.lower().lstrip("@")
        cursor = ""
        while True:
            page = self.call("users.list", limit=200, cursor=cursor)
            for user in page.get("members", []):
                profile = user.get("profile", {})
                names = {user.get("name", ""), profile.get("display_name", ""), profile.get("real_name", "")}
                if not user.get("deleted") and wanted in {n.lower() for n in names if n}:
                    return dict(user)
            cursor = page.get("response_metadata", {}).get("next_cursor", "")
            if not cursor:
                return None

    def usergroup_members(self, usergroup: str) -> list[str]:
        return [str(u) for u in self.call("usergroups.users.list", usergroup=usergroup).get("users", [])]

    def open_view(self, trigger_id: str, view: dict[str, Any]) -> None:
        self.call("views.open", trigger_id=trigger_id, view=view, benign_after_retry=frozenset(USED_TRIGGER_ERRORS))

    def upload(self, channel: str, filename: str, data: bytes, *, title: str, comment: str = "") -> None:
        """Share a file in a channel (files_upload_v2: upload URL, the bytes, then completion)."""
        with self._channel_lock(channel):
            self.call(
                "files.upload_v2", channel=channel, file=data, filename=filename, title=title, initial_comment=comment
            )

    def archive(self, channel: str) -> None:
        """Archive a channel; one that is archived already (a retry of ours, or by hand) is done."""
        try:
            self.call("conversations.archive", channel=channel)
        except SlackCallError as exc:
            if exc.error != "already_archived":
                raise

    def respond(self, response_url: str, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        """Reply through a command's response_url (ephemeral by default), with the same retry rules."""
        webhook = WebhookClient(response_url, retry_handlers=[])

        def attempt(_n: int) -> None:
            try:
                result = webhook.send(text=text, blocks=blocks, response_type="ephemeral", replace_original=False)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                raise TransientError("http_connection_error") from None
            if result.status_code < 300:
                return
            if result.status_code == 429:
                raise TransientError("http_429", retry_after=retry_after(result.headers))
            if result.status_code >= 500:
                raise TransientError(f"http_{result.status_code}")
            raise SlackCallError("response_url", f"http_{result.status_code}")

        try:
            self.retry.run(attempt)
        except TransientError as exc:
            raise SlackCallError("response_url", exc.detail) from None


def make_web_client(token: str, base_url: str) -> WebClient:
    return WebClient(token=token, base_url=base_url, timeout=10, retry_handlers=[])
