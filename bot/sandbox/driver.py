"""Plays Slack's part of inbound traffic: signed slash commands, button clicks and modal submissions
sent over HTTP to the running bot, with the replies recorded in the sandbox as a user would see them."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.sandbox.server import Ephemeral, SlackSandbox


@dataclass
class Reply:
    status: int
    body: str
    seconds: float

    @property
    def json(self) -> dict[str, Any]:
        try:
            data = json.loads(self.body)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    @property
    def text(self) -> str:
        """What Slack shows for an ack: a JSON body's text, or a plain-text body as it is."""
        return str(self.json.get("text", "")) if self.json else self.body


def sign(secret: str, body: bytes, timestamp: int) -> str:
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class SlackDriver:
    def __init__(
        self,
        sandbox: SlackSandbox,
        bot_url: str,
        signing_secret: str,
        *,
        wait_idle: Callable[[], object] | None = None,
    ) -> None:
        self.sandbox = sandbox
        self.events_url = bot_url.rstrip("/") + "/slack/events"
        self.signing_secret = signing_secret
        self.wait_idle = wait_idle

    def post(
        self, body: bytes, content_type: str, *, timestamp: int | None = None, signature: str | None = None
    ) -> Reply:
        ts = int(time.time()) if timestamp is None else timestamp
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": signature or sign(self.signing_secret, body, ts),
        }
        request = urllib.request.Request(self.events_url, data=body, headers=headers, method="POST")
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                reply = Reply(response.status, response.read().decode(), time.perf_counter() - started)
        except urllib.error.HTTPError as exc:
            reply = Reply(exc.code, exc.read().decode(), time.perf_counter() - started)
        self.sandbox.leaks.scan("reply to the request", reply.json or reply.body)
        return reply

    def _settle(self) -> None:
        if self.wait_idle is not None:
            self.wait_idle()

    def slash(self, user: str, channel: str, text: str, command: str = "/incident", *, wait: bool = True) -> Reply:
        """Type a slash command; the ack's text shows to the user as Slack would show it (ephemeral)."""
        form = {
            "token": "legacy-unused",
            "team_id": self.sandbox.team_id,
            "channel_id": channel,
            "channel_name": getattr(self.sandbox.channels.get(channel), "name", "unknown"),
            "user_id": user,
            "user_name": self.sandbox.users.get(user, {}).get("name", user),
            "command": command,
            "text": text,
            "api_app_id": "ASANDBOX01",
            "response_url": self.sandbox.response_url(channel, user),
            "trigger_id": self.sandbox.new_trigger_id(user),
        }
        reply = self.post(urllib.parse.urlencode(form).encode(), "application/x-www-form-urlencoded")
        if reply.status == 200 and (reply.text or reply.json.get("blocks")):
            with self.sandbox.lock:
                self.sandbox.ephemerals.append(
                    Ephemeral(channel, user, reply.text, reply.json.get("blocks") or [], via="ack")
                )
        if wait:
            self._settle()
        return reply

    def _interactive(self, payload: dict[str, Any], *, wait: bool) -> Reply:
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        reply = self.post(body, "application/x-www-form-urlencoded")
        if wait:
            self._settle()
        return reply

    def click(
        self, user: str, channel: str, message_ts: str, action_id: str, value: str, *, wait: bool = True
    ) -> Reply:
        """Click a button on a message."""
        payload = {
            "type": "block_actions",
            "team": {"id": self.sandbox.team_id},
            "user": {"id": user, "name": self.sandbox.users.get(user, {}).get("name", user)},
            "api_app_id": "ASANDBOX01",
            "trigger_id": self.sandbox.new_trigger_id(user),
            "channel": {"id": channel},
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
            "message": {"ts": message_ts},
            "response_url": self.sandbox.response_url(channel, user),
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": "b",
                    "value": value,
                    "action_ts": str(time.time()),
                }
            ],
        }
        return self._interactive(payload, wait=wait)

    def submit_view(self, user: str, view_id: str, values: dict[str, Any], *, wait: bool = True) -> Reply:
        """Submit an open modal with `values` shaped like Slack's view.state.values."""
        view = self.sandbox.views[view_id]
        payload = {
            "type": "view_submission",
            "team": {"id": self.sandbox.team_id},
            "user": {"id": user},
            "api_app_id": "ASANDBOX01",
            "view": {**view, "state": {"values": values}},
        }
        return self._interactive(payload, wait=wait)


def click_button(driver: SlackDriver, user: str, channel: str, message_ts: str, button_text: str) -> Reply:
    """Find a button by its label on a message in the sandbox and click it, as a person would."""
    message = next(m for m in driver.sandbox.channel_messages(channel) if m.ts == message_ts)
    for block in message.blocks:
        for element in block.get("elements", []):
            if element.get("type") == "button" and element["text"]["text"] == button_text:
                return driver.click(user, channel, message_ts, element["action_id"], element.get("value", ""))
    raise LookupError(f"no button {button_text!r} on message {message_ts}")
