"""The one gateway to Slack's Web API.

Every call goes through `SlackGateway.call`, which retries 429s after Slack's Retry-After and
transient failures (5xx, connection errors) with bounded exponential backoff. Posts to one channel
are serialised so a retried message cannot be overtaken by the next one.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.webhook import WebhookClient

log = logging.getLogger(__name__)

PER_USER_INVITE_ERRORS = {
    "user_not_found",
    "cant_invite",
    "user_is_restricted",
    "user_is_ultra_restricted",
    "user_disabled",
    "already_in_channel",
}
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
    ) -> None:
        self.client = client
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.sleep = sleep
        self._channel_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._locks_guard = threading.Lock()
        self._bot_user_id: str | None = None
        self._dm_channels: dict[str, str] = {}

    @classmethod
    def connect(cls, token: str, base_url: str, **kwargs: Any) -> SlackGateway:
        """A gateway with its own WebClient (retries are ours, so the client's own are turned off)."""
        return cls(make_web_client(token, base_url), **kwargs)

    # ---- the retrying core ---------------------------------------------------------------------------

    def call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        """Call a Web API method; retry what is worth retrying; raise SlackCallError otherwise."""
        delay = self.backoff
        for attempt in range(1, self.max_attempts + 1):
            last = attempt == self.max_attempts
            try:
                response = getattr(self.client, method.replace(".", "_"))(**kwargs)
                return dict(response.data) if isinstance(response.data, dict) else {}
            except SlackApiError as exc:
                status = exc.response.status_code
                error = str(exc.response.get("error", "")) if isinstance(exc.response.data, dict) else ""
                if status == 429:
                    if last:
                        break
                    wait = _retry_after(exc.response.headers)
                    log.warning("Slack rate-limited %s; retrying in %ss (attempt %d)", method, wait, attempt)
                    self.sleep(wait)
                    continue
                if (status >= 500 or error in TRANSIENT_ERRORS) and not last:
                    log.warning("Slack %s failed transiently (%s %s); retrying", method, status, error)
                    self.sleep(delay)
                    delay = min(delay * 2, self.max_backoff)
                    continue
                raise SlackCallError(method, error or f"http_{status}") from None
            except SlackRequestError as exc:  # a file upload's middle step was refused
                raise SlackCallError(method, "upload_failed") from exc
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                if last:
                    raise SlackCallError(method, "connection_error") from exc
                log.warning("Slack %s: connection problem (%s); retrying", method, type(exc).__name__)
                self.sleep(delay)
                delay = min(delay * 2, self.max_backoff)
        raise SlackCallError(method, "ratelimited")

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
                return {missing[0]: exc.error}
        skipped: dict[str, str] = {}
        for user in missing:
            try:
                self.call("conversations.invite", channel=channel, users=user)
            except SlackCallError as exc:
                if exc.error not in PER_USER_INVITE_ERRORS:
                    raise
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

    def post(self, channel: str, text: str, blocks: list[dict[str, Any]] | None = None) -> str:
        """Post a message; returns its ts. Posts to one channel keep their order, retries included."""
        with self._channel_lock(channel):
            kwargs: dict[str, Any] = {"channel": channel, "text": text}
            if blocks:
                kwargs["blocks"] = blocks
            return str(self.call("chat.postMessage", **kwargs)["ts"])

    def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        kwargs: dict[str, Any] = {"channel": channel, "ts": ts, "text": text}
        if blocks:
            kwargs["blocks"] = blocks
        self.call("chat.update", **kwargs)

    def dm(self, user: str, text: str, blocks: list[dict[str, Any]] | None = None) -> str:
        """Post to a person's DM; the DM channel is opened once per person and remembered."""
        channel = self._dm_channels.get(user)
        if channel is None:
            channel = str(self.call("conversations.open", users=user)["channel"]["id"])
            self._dm_channels[user] = channel
        return self.post(channel, text, blocks)

    def user_info(self, user: str) -> dict[str, Any] | None:
        try:
            return dict(self.call("users.info", user=user)["user"])
        except SlackCallError as exc:
            if exc.error in ("user_not_found", "user_not_visible"):
                return None
            raise

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
        self.call("views.open", trigger_id=trigger_id, view=view)

    def upload(self, channel: str, filename: str, data: bytes, *, title: str, comment: str = "") -> None:
        """Share a file in a channel (files_upload_v2: upload URL, the bytes, then completion)."""
        with self._channel_lock(channel):
            self.call(
                "files.upload_v2", channel=channel, file=data, filename=filename, title=title, initial_comment=comment
            )

    def archive(self, channel: str) -> None:
        self.call("conversations.archive", channel=channel)

    def respond(self, response_url: str, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        """Reply through a command's response_url (ephemeral by default), with the same retry rules."""
        webhook = WebhookClient(response_url, retry_handlers=[])
        delay = self.backoff
        for attempt in range(1, self.max_attempts + 1):
            try:
                result = webhook.send(text=text, blocks=blocks, response_type="ephemeral", replace_original=False)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                result = None
            if result is not None and result.status_code < 300:
                return
            if result is not None and result.status_code == 429:
                self.sleep(_retry_after(result.headers))
                continue
            if (result is not None and result.status_code < 500) or attempt == self.max_attempts:
                status = result.status_code if result is not None else "connection_error"
                raise SlackCallError("response_url", f"http_{status}")
            self.sleep(delay)
            delay = min(delay * 2, self.max_backoff)


def make_web_client(token: str, base_url: str) -> WebClient:
    return WebClient(token=token, base_url=base_url, timeout=10, retry_handlers=[])


def _retry_after(headers: Any) -> float:
    values = {k.lower(): v for k, v in dict(headers or {}).items()}
    raw = values.get("retry-after", "1")
    raw = raw[0] if isinstance(raw, list) else raw
    try:
        return max(0.0, float(raw))
    except ValueError:
        return 1.0
