"""A Slack-compatible Web API server for tests and the offline mode.

The real `slack_sdk.WebClient` talks to it over HTTP. It keeps a small workspace (users, user groups,
channels, members, messages, DMs, views, ephemeral replies), answers Slack-shaped JSON, rejects what
Slack would reject, and records every call so tests can assert on what people would see.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import math
import random
import re
import selectors
import socket
import threading
import time
import urllib.parse
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bot.sandbox.blockkit import validate_blocks, validate_view
from bot.sandbox.leaks import LeakWatch
from bot.sandbox.scopes import manifest_scopes, missing_scopes

SPEC_METHODS: dict[str, list[str]] = json.loads(
    (Path(__file__).with_name("slack_methods.json")).read_text(encoding="utf-8")
)["methods"]
# Methods newer than the 2020 spec (files_upload_v2's three steps), with their arguments.
SPEC_METHODS.update(
    {
        "files.getUploadURLExternal": ["filename", "length", "alt_txt", "snippet_type"],
        "files.completeUploadExternal": ["files", "channel_id", "channels", "initial_comment", "thread_ts"],
    }
)
# Arguments newer than the 2020 spec or added by slack_sdk itself; Slack accepts them.
EXTRA_ARGS = {"team_id", "metadata", "include_locale", "include_num_members", "force", "include_all_metadata"}
DROP = 0  # a status that makes the server close the connection without answering (a timeout, to the client)
CHANNEL_NAME_RE = re.compile(r"^[a-z0-9_-]+$")
TOPIC_MAX = 250
MESSAGE_TEXT_MAX = 40_000
USER_ID_RE = re.compile(r"^[UW][A-Z0-9]{2,}$")
# The list methods' `limit`: Slack's default when none is given, and the most it answers in one page.
LIST_LIMITS = {
    "conversations.list": (100, 1000),
    "conversations.members": (100, 1000),
    "conversations.history": (100, 999),
    "users.list": (200, 1000),
}


class PromptHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server whose `shutdown` returns at once: the serving loop waits on the listening socket
    and a wake-up socket, instead of polling a flag every `poll_interval` (0.5 s by default, paid by every test
    that stops a server)."""

    daemon_threads = True
    request_queue_size = 256  # Slack takes bursts; the default backlog of 5 resets connections

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._wake_r, self._wake_w = socket.socketpair()
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()

    def serve_forever(self, poll_interval: float = 0.5) -> None:  # poll_interval kept for the signature only
        self._stopped.clear()
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self, selectors.EVENT_READ)
                selector.register(self._wake_r, selectors.EVENT_READ)
                while not self._stop.is_set():
                    for key, _ in selector.select():
                        if key.fileobj is self and not self._stop.is_set():
                            self.handle_request()  # ready now: accepts and hands to a thread
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop the loop (wakes it now) and wait until it has ended."""
        self._stop.set()
        self._wake_w.send(b"\0")
        self._stopped.wait()

    def server_close(self) -> None:
        super().server_close()
        self._wake_r.close()
        self._wake_w.close()

    def serve_in_thread(self, name: str) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name=name, daemon=True)
        thread.start()
        return thread


def _max_in_window(times: list[float], seconds: float) -> int:
    """The most of the (sorted) moments that fall in any window `seconds` long."""
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= seconds:
            start += 1
        most = max(most, end - start + 1)
    return most


class SlackError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


@dataclass
class Message:
    channel: str
    ts: str
    user: str
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    thread_ts: str | None = None
    edited: bool = False
    received: float = field(default_factory=time.time)  # wall-clock arrival, for lateness benchmarks
    files: list[str] = field(default_factory=list)  # IDs of files shared with this message
    metadata: dict[str, Any] | None = None  # the app's message metadata (event_type, event_payload)


@dataclass
class SharedFile:
    id: str
    filename: str
    length: int
    data: bytes | None = None  # None until the upload step put the bytes
    title: str = ""
    channel: str | None = None


@dataclass
class Ephemeral:
    channel: str
    user: str
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    via: str = "chat.postEphemeral"


@dataclass
class Channel:
    id: str
    name: str
    creator: str
    created: int
    is_im: bool = False
    is_private: bool = False
    is_archived: bool = False
    topic: str = ""
    members: list[str] = field(default_factory=list)


@dataclass
class RateLimit:
    capacity: int
    per_seconds: float
    retry_after: int
    hits: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))


@dataclass
class TierLimit:
    """One of Slack's published limits, counted on the sandbox's own time (`SlackSandbox.now`).

    `per_channel` False: at most `capacity` calls in any `per_seconds` window for the whole workspace (the
    tiered methods: Slack counts them per app, per workspace, per method). `per_channel` True: a token
    bucket per channel, `capacity` calls at once (Slack's "short bursts") refilled one per `per_seconds`
    (chat.postMessage's one message per second per channel)."""

    capacity: int
    per_seconds: float
    per_channel: bool = False
    hits: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    tat: dict[str, float] = field(default_factory=dict)  # per channel: the bucket's theoretical arrival time

    def take(self, key: str, now: float) -> float | None:
        """Count one call now; None if allowed, else the seconds until one would be (Retry-After)."""
        if self.per_channel:
            tolerance = (self.capacity - 1) * self.per_seconds
            tat = max(self.tat.get(key, now), now)
            if tat - tolerance > now + 1e-9:
                return tat - tolerance - now
            self.tat[key] = tat + self.per_seconds
            return None
        window = self.hits[key]
        while window and now - window[0] >= self.per_seconds:
            window.popleft()
        if len(window) >= self.capacity:
            return window[0] + self.per_seconds - now
        window.append(now)
        return None


# Slack's published limits (api.slack.com/apis/rate-limits, each method's page): conversations.create and
# conversations.setTopic are Tier 2 (20+ per minute), conversations.invite and chat.update Tier 3 (50+ per
# minute), chat.postMessage about one per second per channel with short bursts allowed.
SLACK_LIMITS: dict[str, tuple[int, float, bool]] = {
    "conversations.create": (20, 60.0, False),
    "conversations.setTopic": (20, 60.0, False),
    "conversations.invite": (50, 60.0, False),
    "chat.update": (50, 60.0, False),
    "chat.postMessage": (10, 1.0, True),
}


@dataclass
class Failure:
    error: str | None
    status: int
    remaining: int
    after: bool = False  # the call is carried out first, then answered with the failure


FAULTS = ("ratelimited", "5xx_before", "5xx_after", "drop_before", "drop_after")


@dataclass
class Chaos:
    """Random faults on a share of Web API calls, as a flaky network and a busy Slack produce them:
    429 (not carried out), 503 or a dropped connection before or after the call was carried out."""

    rate: float
    rng: random.Random
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def draw(self) -> str | None:
        if self.rng.random() >= self.rate:
            return None
        fault = self.rng.choice(FAULTS)
        self.counts[fault] += 1
        return fault


@dataclass
class Hold:
    """Calls of one method wait here until the test releases them (to hold the bot inside a call)."""

    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    passed: threading.Event = field(default_factory=threading.Event)  # a held call went on (or was dropped)
    timeout: float = 30.0
    then: str = "process"  # after release: carry the call out, or "drop" it unanswered (lost on the way)

    def release(self) -> None:
        self.released.set()


class SlackSandbox:
    """The workspace state and the HTTP server around it."""

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-sandbox-token",
        bot_user_id: str = "UBOTSANDBOX",
        bot_scopes: set[str] | None = None,
        page_size: int | None = None,
        limits: bool = False,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bot_token = bot_token
        # Slack's published limits (SLACK_LIMITS), enforced with 429 and Retry-After when `limits` is on; off
        # by default so tests that open many incidents in one instant are not refused. `now` is the time they
        # are counted on: a test gives the bot's injected clock, so nobody sleeps for a minute.
        self.now = now
        self.tier_limits: dict[str, TierLimit] = {}
        self.throttled: dict[str, int] = defaultdict(int)  # 429s answered, per method
        self.arrivals: list[tuple[str, str, float]] = []  # (method, channel, sandbox time) of each call let through
        # Slack may answer a list method with fewer items than `limit` asked for, and does for big workspaces;
        # a small `page_size` makes every list paginate, so a caller that ignores next_cursor misses items.
        self.page_size = page_size
        # what the token was granted: the app manifest's bot scopes unless a test says otherwise
        self.bot_scopes = manifest_scopes() if bot_scopes is None else set(bot_scopes)
        self.bot_user_id = bot_user_id
        self.team_id = "TSANDBOX01"
        self.latency = 0.0
        self.lock = threading.RLock()
        self.users: dict[str, dict[str, Any]] = {}
        self.usergroups: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, Channel] = {}
        self.messages: list[Message] = []
        self.ephemerals: list[Ephemeral] = []
        self.views: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.unknown_args: list[tuple[str, str]] = []
        self.rate_limits: dict[str, RateLimit] = {}
        self.failures: dict[str, deque[Failure]] = defaultdict(deque)
        self.faults: Chaos | None = None
        self.holds: dict[str, Hold] = {}
        self.response_urls: dict[str, tuple[str, str]] = {}
        self.triggers: dict[str, str] = {}
        self.files: dict[str, SharedFile] = {}
        self.leaks = LeakWatch()  # tests plant customer identifiers; any call carrying one is recorded
        self._ids = itertools.count(1)
        self._ts = itertools.count(1)
        self._epoch = int(time.time())
        self.add_user(bot_user_id, "incident-desk", is_bot=True)
        if limits:
            self.enforce_slack_limits()
        self._httpd: PromptHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- the workspace, as tests and the demo set it up -------------------------------------------------

    def add_user(
        self,
        user_id: str,
        name: str,
        *,
        real_name: str | None = None,
        is_bot: bool = False,
        locale: str = "en-US",
    ) -> str:
        """A member; `locale` is the language they chose in Slack (answered by `users.info` with
        `include_locale`, as Slack does)."""
        with self.lock:
            self.users[user_id] = {
                "id": user_id,
                "team_id": self.team_id,
                "name": name,
                "real_name": real_name or name,
                "is_bot": is_bot,
                "deleted": False,
                "profile": {"display_name": name, "real_name": real_name or name},
                "locale": locale,
            }
        return user_id

    def set_user_locale(self, user_id: str, locale: str) -> None:
        """The member switches Slack's language (`zh-CN`, `en-US`...)."""
        with self.lock:
            self.users[user_id]["locale"] = locale

    def add_usergroup(self, group_id: str, handle: str, users: list[str]) -> str:
        with self.lock:
            self.usergroups[group_id] = {"id": group_id, "handle": handle, "users": list(users)}
        return group_id

    def add_channel(self, name: str, members: list[str] | None = None, *, creator: str = "UHUMAN0001") -> str:
        with self.lock:
            cid = self._new_id("C")
            self.channels[cid] = Channel(cid, name, creator, self._epoch, members=list(members or []))
        return cid

    def rate_limit(self, method: str, *, capacity: int, per_seconds: float = 1.0, retry_after: int = 1) -> None:
        """Allow `capacity` calls per channel in any `per_seconds` window; more get 429 with Retry-After."""
        self.rate_limits[method] = RateLimit(capacity, per_seconds, retry_after)

    def enforce_slack_limits(self, limits: dict[str, tuple[int, float, bool]] | None = None) -> None:
        """Refuse calls beyond Slack's published limits (or `limits`: method → (capacity, seconds, per
        channel)) with HTTP 429 and Retry-After, as Slack does."""
        with self.lock:
            self.tier_limits = {
                method: TierLimit(capacity, seconds, per_channel)
                for method, (capacity, seconds, per_channel) in (limits or SLACK_LIMITS).items()
            }

    def call_stats(self) -> dict[str, dict[str, float]]:
        """Per method: calls let through, 429s answered, and the most calls let through in any 60-second window
        (workspace) and in any 1-second window of one channel (what a benchmark reports against the limits)."""
        with self.lock:
            arrivals = list(self.arrivals)
            throttled = dict(self.throttled)
        by_method: dict[str, list[tuple[str, float]]] = defaultdict(list)
        for method, channel, at in arrivals:
            by_method[method].append((channel, at))
        stats: dict[str, dict[str, float]] = {}
        for method in sorted(set(by_method) | set(throttled)):
            calls = by_method.get(method, [])
            per_channel: dict[str, list[float]] = defaultdict(list)
            for channel, at in calls:
                per_channel[channel].append(at)
            stats[method] = {
                "calls": len(calls),
                "throttled": throttled.get(method, 0),
                "max_per_minute": _max_in_window(sorted(at for _, at in calls), 60.0),
                "max_per_second_one_channel": max(
                    (_max_in_window(sorted(times), 1.0) for times in per_channel.values()), default=0
                ),
            }
        return stats

    def fail(
        self,
        method: str,
        *,
        error: str | None = "internal_error",
        status: int = 200,
        times: int = 1,
        after: bool = False,
    ) -> None:
        """Make the next `times` calls of `method` fail (an ok:false error, an HTTP status such as 503, or
        DROP: no answer at all). With `after`, the call is carried out first, as when Slack did the work but
        the answer was lost."""
        self.failures[method].append(Failure(error, status, times, after))

    def chaos(self, rate: float, *, seed: int = 0) -> Chaos:
        """Fail about `rate` of all Web API calls from now on with a random fault (see Chaos); rate 0 stops."""
        with self.lock:
            self.faults = Chaos(rate, random.Random(seed)) if rate > 0 else None
            return self.faults or Chaos(0, random.Random(seed))

    def hold(self, method: str, *, timeout: float = 30.0, then: str = "process") -> Hold:
        """Make calls of `method` wait until `release()` (bounded by `timeout`); `reached` is set by the first.
        Then they are carried out (`then="process"`: Slack took it) or the first is dropped unanswered
        (`then="drop"`: lost on the way) and the hold is lifted."""
        hold = Hold(timeout=timeout, then=then)
        self.holds[method] = hold
        return hold

    def response_url(self, channel: str, user: str) -> str:
        key = f"R{next(self._ids):08d}"
        self.response_urls[key] = (channel, user)
        return f"{self.base_url}response/{key}"

    def new_trigger_id(self, user: str) -> str:
        trigger = f"{next(self._ids)}.{int(time.time())}.trigger"
        self.triggers[trigger] = user
        return trigger

    # ---- what people see --------------------------------------------------------------------------------

    def channel_by_name(self, name: str) -> Channel | None:
        with self.lock:
            return next((c for c in self.channels.values() if c.name == name and not c.is_im), None)

    def channel_messages(self, channel: str) -> list[Message]:
        """Messages in a channel (by ID or name), oldest first."""
        with self.lock:
            cid = channel if channel in self.channels else getattr(self.channel_by_name(channel), "id", channel)
            return [m for m in self.messages if m.channel == cid]

    def dm_messages(self, user: str) -> list[Message]:
        with self.lock:
            ims = {c.id for c in self.channels.values() if c.is_im and user in c.members}
            return [m for m in self.messages if m.channel in ims]

    def ephemerals_for(self, user: str) -> list[Ephemeral]:
        with self.lock:
            return [e for e in self.ephemerals if e.user == user]

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        with self.lock:
            return [args for name, args in self.calls if name == method]

    # ---- serving ----------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the sandbox is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/"

    @property
    def api_url(self) -> str:
        return self.base_url + "api/"

    def start(self, port: int = 0) -> SlackSandbox:
        sandbox = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = sandbox.handle_http(self.path, dict(self.headers.items()), body)
                if status == DROP:  # the answer is lost on the way back
                    self.close_connection = True
                    return
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST

        self._httpd = PromptHTTPServer(("127.0.0.1", port), Handler)
        self._thread = self._httpd.serve_in_thread("slack-sandbox")
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> SlackSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- request handling -------------------------------------------------------------------------------

    def handle_http(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], Any]:
        if self.latency:
            time.sleep(self.latency)
        parsed = urllib.parse.urlsplit(path)
        if parsed.path.startswith("/response/"):
            return self._handle_response_url(parsed.path.removeprefix("/response/"), body)
        if parsed.path == "/_sandbox/messages":  # for tools in another process (benchmarks)
            with self.lock:
                return (
                    200,
                    {},
                    {
                        "messages": [
                            {
                                "channel": m.channel,
                                "user": m.user,
                                "text": m.text,
                                "ts": m.ts,
                                "received": m.received,
                                "key": (m.metadata or {}).get("event_payload", {}).get("key"),
                            }
                            for m in self.messages
                        ]
                    },
                )
        if parsed.path == "/_sandbox/chaos" and body:  # faults on a share of calls, from another process
            settings = json.loads(body.decode())
            before = dict(self.faults.counts) if self.faults else {}
            self.chaos(float(settings["rate"]), seed=int(settings.get("seed", 0)))
            return 200, {}, {"ok": True, "counts": before}  # what the faults so far were
        if parsed.path == "/_sandbox/reset":  # forget the messages (a benchmark's second round)
            with self.lock:
                self.messages.clear()
                counts = dict(self.faults.counts) if self.faults else {}
            return 200, {}, {"ok": True, "fault_counts": counts}
        if parsed.path == "/_sandbox/users" and body:  # seed users from another process
            for user in json.loads(body.decode()):
                self.add_user(user["id"], user["name"], locale=user.get("locale", "en-US"))
            return 200, {}, {"ok": True}
        if parsed.path in ("/_sandbox/channels", "/_sandbox/response_url", "/_sandbox/stats"):
            return self._handle_seed(parsed.path, body)
        if parsed.path.startswith("/upload/"):  # step 2 of files_upload_v2: the bytes, to the URL given
            return self._handle_upload(parsed.path.removeprefix("/upload/"), body)
        if not parsed.path.startswith("/api/"):
            return 404, {}, {"ok": False, "error": "not_found"}
        method = parsed.path.removeprefix("/api/")
        args = self._parse_args(headers, body, parsed.query)
        token = args.pop("token", None)
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        if auth.startswith("Bearer "):
            token = auth.removeprefix("Bearer ")
        with self.lock:
            self.calls.append((method, dict(args)))
        self.leaks.scan(method, args)
        if self._held(method):
            return DROP, {}, {}
        handler: Callable[[dict[str, Any]], dict[str, Any]] | None = getattr(
            self, "m_" + method.replace(".", "_"), None
        )
        if method not in SPEC_METHODS and handler is None:
            return 200, {}, {"ok": False, "error": "unknown_method", "req_method": method}
        if not token:
            return 200, {}, {"ok": False, "error": "not_authed"}
        if token != self.bot_token:
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        missing = missing_scopes(method, args, self.bot_scopes, self._conversation_type)
        if missing:  # as Slack answers a token that was not granted the scope
            needed, provided = ",".join(sorted(missing)), ",".join(sorted(self.bot_scopes))
            return 200, {}, {"ok": False, "error": "missing_scope", "needed": needed, "provided": provided}
        known = set(SPEC_METHODS.get(method, [])) | EXTRA_ARGS
        for arg in args:
            if arg not in known:
                with self.lock:
                    self.unknown_args.append((method, arg))
        limited = self._rate_limited(method, args)
        if limited is not None:
            return 429, {"Retry-After": str(limited)}, {"ok": False, "error": "ratelimited"}
        failure = self._take_failure(method) or self._draw_fault()
        if failure is not None and not failure.after:
            return self._failure_answer(failure)
        if handler is None:
            return 200, {}, {"ok": False, "error": "not_emulated_by_sandbox", "req_method": method}
        try:
            with self.lock:
                result = handler(args)
        except SlackError as exc:
            return 200, {}, {"ok": False, "error": exc.error, **exc.extra}
        if failure is not None:
            return self._failure_answer(failure)
        return 200, {}, {"ok": True, **result}

    def _held(self, method: str) -> bool:
        """Wait while a test holds `method` (outside the lock: the rest of the workspace keeps answering);
        True when the held call is to be dropped unanswered."""
        hold = self.holds.get(method)
        if hold is None:
            return False
        hold.reached.set()
        hold.released.wait(hold.timeout)
        if hold.then == "drop":
            self.holds.pop(method, None)
        hold.passed.set()
        return hold.then == "drop"

    def _draw_fault(self) -> Failure | None:
        with self.lock:
            fault = self.faults.draw() if self.faults is not None else None
        if fault is None:
            return None
        if fault == "ratelimited":
            return Failure("ratelimited", 429, 1)
        status = 503 if fault.startswith("5xx") else DROP
        return Failure("service_unavailable", status, 1, after=fault.endswith("_after"))

    @staticmethod
    def _failure_answer(failure: Failure) -> tuple[int, dict[str, str], Any]:
        if failure.status == 429:
            return 429, {"Retry-After": "1"}, {"ok": False, "error": "ratelimited"}
        if failure.status != 200:
            return failure.status, {}, {"ok": False, "error": failure.error or "internal_error"}
        return 200, {}, {"ok": False, "error": failure.error}

    def _handle_upload(self, file_id: str, body: bytes) -> tuple[int, dict[str, str], Any]:
        self.leaks.scan(f"file upload {file_id}", body)
        with self.lock:
            upload = self.files.get(file_id)
            if upload is None or upload.data is not None:
                return 404, {}, {"ok": False, "error": "invalid_upload_url"}
            if len(body) != upload.length:
                return 400, {}, {"ok": False, "error": f"expected {upload.length} bytes, got {len(body)}"}
            upload.data = body
        return 200, {}, {"ok": True}

    def _parse_args(self, headers: dict[str, str], body: bytes, query: str) -> dict[str, Any]:
        ctype = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
        args: dict[str, Any] = dict(urllib.parse.parse_qsl(query))
        if "application/json" in ctype and body:
            args.update(json.loads(body.decode()))
        elif body:
            args.update(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
        for key in ("blocks", "view", "attachments"):
            if isinstance(args.get(key), str) and args[key]:
                try:
                    args[key] = json.loads(args[key])
                except json.JSONDecodeError:
                    args[key] = {"__invalid_json__": True}
        return args

    def _rate_limited(self, method: str, args: dict[str, Any]) -> int | None:
        """Retry-After for a call beyond a limit (counted as a 429 answered), or None."""
        wait = self._over_limit(method, args)
        if wait is not None:
            with self.lock:
                self.throttled[method] += 1
        return wait

    def _over_limit(self, method: str, args: dict[str, Any]) -> int | None:
        with self.lock:
            now = self.now()
            channel = str(args.get("channel", ""))
            tier = self.tier_limits.get(method)
            wait = tier.take(channel if tier.per_channel else "", now) if tier is not None else None
            if wait is not None:
                return max(1, math.ceil(wait))  # Slack's Retry-After is whole seconds
            self.arrivals.append((method, channel, now))
        limit = self.rate_limits.get(method)
        if limit is None:
            return None
        with self.lock:
            now = time.monotonic()
            window = limit.hits[str(args.get("channel", ""))]
            while window and now - window[0] >= limit.per_seconds:
                window.popleft()
            if len(window) >= limit.capacity:
                return limit.retry_after
            window.append(now)
        return None

    def _take_failure(self, method: str) -> Failure | None:
        with self.lock:
            queue = self.failures.get(method)
            if not queue:
                return None
            failure = queue[0]
            failure.remaining -= 1
            if failure.remaining <= 0:
                queue.popleft()
            return failure

    def _handle_seed(self, path: str, body: bytes) -> tuple[int, dict[str, str], Any]:
        """Channels, response URLs and call counts for tools in another process (benchmarks)."""
        if path == "/_sandbox/stats":  # calls and 429s per method
            return 200, {}, {"ok": True, "stats": self.call_stats()}
        if path == "/_sandbox/channels":  # list, or seed channels first
            for channel in json.loads(body.decode()) if body else []:
                self.add_channel(channel["name"], channel.get("members", []))
            with self.lock:
                return 200, {}, {"ok": True, "channels": [{"id": c.id, "name": c.name} for c in self.channels.values()]}
        request = json.loads(body.decode())  # a response_url for a request sent from elsewhere
        with self.lock:
            url = self.response_url(request["channel"], request["user"])
        return 200, {}, {"ok": True, "url": url}

    def _handle_response_url(self, key: str, body: bytes) -> tuple[int, dict[str, str], Any]:
        target = self.response_urls.get(key)
        if target is None:
            return 404, {}, {"ok": False, "error": "expired_url"}
        payload = json.loads(body.decode() or "{}")
        self.leaks.scan("response_url", payload)
        blocks = payload.get("blocks") or []
        errors = validate_blocks(blocks) if blocks else []
        if errors:
            return 400, {}, {"ok": False, "error": "invalid_blocks", "response_metadata": {"messages": errors}}
        channel, user = target
        with self.lock:
            if payload.get("response_type") == "in_channel":
                self._post(channel, self.bot_user_id, payload.get("text", ""), blocks)
            else:
                self.ephemerals.append(Ephemeral(channel, user, payload.get("text", ""), blocks, via="response_url"))
        return 200, {}, {"ok": True}

    # ---- helpers ------------------------------------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):010d}"

    def _next_ts(self) -> str:
        return f"{self._epoch + next(self._ts)}.{next(self._ts) % 1_000_000:06d}"

    def _require(self, args: dict[str, Any], *names: str) -> None:
        for name in names:
            if args.get(name) in (None, ""):
                raise SlackError(
                    "invalid_arguments", response_metadata={"messages": [f"missing required field: {name}"]}
                )

    def _conversation_type(self, channel_id: str) -> str | None:
        with self.lock:
            if channel_id in self.users:  # a user ID as a channel: the app's DM with them
                return "im"
            channel = self.channels.get(channel_id)
        if channel is None:
            return None
        return "im" if channel.is_im else "private_channel" if channel.is_private else "public_channel"

    def _channel(self, args: dict[str, Any]) -> Channel:
        self._require(args, "channel")
        channel = self.channels.get(str(args["channel"]))
        if channel is None:
            raise SlackError("channel_not_found")
        return channel

    def _check_message_content(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        blocks = args.get("blocks") or []
        if not args.get("text") and not blocks and not args.get("attachments"):
            raise SlackError("no_text")
        if len(str(args.get("text", ""))) > MESSAGE_TEXT_MAX:
            raise SlackError("msg_too_long")
        if blocks:
            errors = validate_blocks(blocks)
            if errors:
                raise SlackError("invalid_blocks", response_metadata={"messages": errors})
        return blocks

    def _page(self, method: str, args: dict[str, Any], items: list[Any]) -> tuple[list[Any], str]:
        """One page of `items` as Slack pages a list: `limit` (capped by the sandbox's page size) from the
        opaque `cursor`; the cursor of the next page, or "" after the last one."""
        default, most = LIST_LIMITS[method]
        try:
            limit = int(args.get("limit") or 0) or default
        except ValueError:
            raise SlackError("invalid_limit") from None
        limit = min(max(limit, 1), most, self.page_size or most)
        start = 0
        if args.get("cursor"):
            try:
                kind, _, offset = base64.b64decode(str(args["cursor"]), validate=True).decode().partition(":")
                start = int(offset)
            except (binascii.Error, UnicodeDecodeError, ValueError):
                raise SlackError("invalid_cursor") from None
            if kind != method or start <= 0:
                raise SlackError("invalid_cursor")
        end = start + limit
        cursor = base64.b64encode(f"{method}:{end}".encode()).decode() if end < len(items) else ""
        return items[start:end], cursor

    def _user_dm(self, user: str) -> Channel:
        """The app's DM with `user`, opened if need be (as conversations.open does)."""
        for c in self.channels.values():
            if c.is_im and set(c.members) == {self.bot_user_id, user}:
                return c
        cid = self._new_id("D")
        self.channels[cid] = Channel(
            cid, cid, self.bot_user_id, int(time.time()), is_im=True, members=[self.bot_user_id, user]
        )
        return self.channels[cid]

    def _post(
        self, channel: str, user: str, text: str, blocks: list[dict[str, Any]], thread_ts: str | None = None
    ) -> Message:
        message = Message(channel, self._next_ts(), user, text, blocks, thread_ts)
        self.messages.append(message)
        return message

    def _channel_json(self, c: Channel) -> dict[str, Any]:
        return {
            "id": c.id,
            "name": c.name,
            "is_channel": not c.is_im and not c.is_private,
            "is_private": c.is_private,
            "is_im": c.is_im,
            "is_archived": c.is_archived,
            "created": c.created,
            "creator": c.creator,
            "topic": {"value": c.topic, "creator": self.bot_user_id, "last_set": 0},
            "num_members": len(c.members),
            **({"user": next((m for m in c.members if m != self.bot_user_id), None)} if c.is_im else {}),
        }

    # ---- methods ------------------------------------------------------------------------------------------

    def m_api_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"args": args}

    def m_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://sandbox.slack.test/",
            "team": "Sandbox",
            "user": "incident-desk",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": "BSANDBOX01",
        }

    def m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require(args, "channel")
        target = str(args["channel"])
        if USER_ID_RE.match(target) and target not in self.channels:  # Slack posts to the app's DM with them
            user = self.users.get(target)
            if user is None:
                raise SlackError("channel_not_found")
            if user.get("deleted"):
                raise SlackError("user_disabled")
            args = {**args, "channel": self._user_dm(target).id}
        channel = self._channel(args)
        blocks = self._check_message_content(args)
        if channel.is_archived:
            raise SlackError("is_archived")
        if self.bot_user_id not in channel.members:
            raise SlackError("not_in_channel")
        msg = self._post(channel.id, self.bot_user_id, str(args.get("text", "")), blocks, args.get("thread_ts"))
        msg.metadata = self._metadata(args.get("metadata"))
        return {"channel": channel.id, "ts": msg.ts, "message": {"text": msg.text, "ts": msg.ts, "user": msg.user}}

    @staticmethod
    def _metadata(raw: Any) -> dict[str, Any] | None:
        """Message metadata as Slack takes it: an object (or its JSON) with event_type and event_payload."""
        if raw in (None, ""):
            return None
        try:
            value = json.loads(raw) if isinstance(raw, str) else raw
        except json.JSONDecodeError:
            raise SlackError("invalid_metadata_format") from None
        if (
            not isinstance(value, dict)
            or not value.get("event_type")
            or not isinstance(value.get("event_payload"), dict)
        ):
            raise SlackError("invalid_metadata_schema")
        return value

    def m_chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        self._require(args, "user")
        blocks = self._check_message_content(args)
        if args["user"] not in self.users:
            raise SlackError("user_not_found")
        if args["user"] not in channel.members:
            raise SlackError("user_not_in_channel")
        self.ephemerals.append(Ephemeral(channel.id, args["user"], str(args.get("text", "")), blocks))
        return {"message_ts": self._next_ts()}

    def m_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        self._require(args, "ts")
        msg = next((m for m in self.messages if m.channel == channel.id and m.ts == args["ts"]), None)
        if msg is None:
            raise SlackError("message_not_found")
        if msg.user != self.bot_user_id:
            raise SlackError("cant_update_message")
        blocks = self._check_message_content(args)
        msg.text, msg.blocks, msg.edited = str(args.get("text", "")), blocks, True
        return {"channel": channel.id, "ts": msg.ts, "text": msg.text}

    def m_conversations_create(self, args: dict[str, Any]) -> dict[str, Any]:
        name = str(args.get("name") or "")
        if not name:
            raise SlackError("invalid_name_required")
        if len(name) > 80:
            raise SlackError("invalid_name_maxlength")
        if not CHANNEL_NAME_RE.match(name):
            raise SlackError("invalid_name_specials")
        if any(c.name == name for c in self.channels.values() if not c.is_im):
            raise SlackError("name_taken")
        cid = self._new_id("C")
        private = str(args.get("is_private", "")).lower() in ("1", "true")
        channel = Channel(cid, name, self.bot_user_id, int(time.time()), is_private=private, members=[self.bot_user_id])
        self.channels[cid] = channel
        return {"channel": self._channel_json(channel)}

    def m_conversations_setTopic(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        topic = str(args.get("topic", ""))
        if len(topic) > TOPIC_MAX:
            raise SlackError("too_long")
        if self.bot_user_id not in channel.members:
            raise SlackError("not_in_channel")
        channel.topic = topic
        return {"channel": self._channel_json(channel)}

    def m_conversations_invite(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        self._require(args, "users")
        users = [u.strip() for u in str(args["users"]).split(",") if u.strip()]
        if self.bot_user_id not in channel.members:
            raise SlackError("not_in_channel")
        if channel.is_archived:
            raise SlackError("is_archived")
        for user in users:
            if user not in self.users:
                raise SlackError("user_not_found")
            if user == self.bot_user_id:
                raise SlackError("cant_invite_self")
        new = [u for u in users if u not in channel.members]
        if not new:
            raise SlackError("already_in_channel")
        channel.members.extend(new)
        return {"channel": self._channel_json(channel)}

    def m_conversations_join(self, args: dict[str, Any]) -> dict[str, Any]:
        """As Slack: public channels only (a private one needs an invite), not archived ones; joining again
        succeeds with the `already_in_channel` warning."""
        channel = self._channel(args)
        if channel.is_im or channel.is_private:
            raise SlackError("method_not_supported_for_channel_type")
        if channel.is_archived:
            raise SlackError("is_archived")
        if self.bot_user_id in channel.members:
            warning = "already_in_channel"
            return {
                "channel": self._channel_json(channel),
                "warning": warning,
                "response_metadata": {"warnings": [warning]},
            }
        channel.members.extend([self.bot_user_id])
        return {"channel": self._channel_json(channel)}

    def m_conversations_members(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        page, cursor = self._page("conversations.members", args, list(channel.members))
        return {"members": page, "response_metadata": {"next_cursor": cursor}}

    def m_conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"channel": self._channel_json(self._channel(args))}

    def m_conversations_list(self, args: dict[str, Any]) -> dict[str, Any]:
        exclude_archived = str(args.get("exclude_archived", "")).lower() in ("1", "true")
        types = {t.strip() for t in str(args.get("types") or "public_channel").split(",")}
        channels = [
            c
            for c in self.channels.values()
            if not (exclude_archived and c.is_archived)
            and (not c.is_private or self.bot_user_id in c.members)  # private ones only where the bot is
            and ("im" if c.is_im else "private_channel" if c.is_private else "public_channel") in types
        ]
        page, cursor = self._page("conversations.list", args, channels)
        return {"channels": [self._channel_json(c) for c in page], "response_metadata": {"next_cursor": cursor}}

    def m_conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require(args, "users")
        users = [u.strip() for u in str(args["users"]).split(",") if u.strip()]
        for user in users:
            if user not in self.users:
                raise SlackError("user_not_found")
            if self.users[user].get("deleted"):
                raise SlackError("user_disabled")
        if len(users) == 1:
            return {"channel": {"id": self._user_dm(users[0]).id}}
        for c in self.channels.values():
            if c.is_im and set(c.members) == {self.bot_user_id, *users}:
                return {"channel": {"id": c.id}}
        cid = self._new_id("D")
        self.channels[cid] = Channel(
            cid, cid, self.bot_user_id, int(time.time()), is_im=True, members=[self.bot_user_id, *users]
        )
        return {"channel": {"id": cid}}

    def m_conversations_archive(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        if channel.is_archived:
            raise SlackError("already_archived")
        channel.is_archived = True
        return {}

    def m_conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        if self.bot_user_id not in channel.members:
            raise SlackError("not_in_channel")
        with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        msgs = [m for m in reversed(self.messages) if m.channel == channel.id]  # newest first
        page, cursor = self._page("conversations.history", args, msgs)
        return {
            "messages": [
                {
                    "ts": m.ts,
                    "user": m.user,
                    "text": m.text,
                    "blocks": m.blocks,
                    **({"metadata": m.metadata} if with_metadata and m.metadata else {}),
                }
                for m in page
            ],
            "has_more": bool(cursor),
            "pin_count": 0,
            "response_metadata": {"next_cursor": cursor},
        }

    def m_users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require(args, "user")
        user = self.users.get(str(args["user"]))
        if user is None:
            raise SlackError("user_not_found")
        if str(args.get("include_locale", "")).lower() not in ("1", "true"):  # Slack leaves it out unless asked
            user = {k: v for k, v in user.items() if k != "locale"}
        return {"user": user}

    def m_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        page, cursor = self._page("users.list", args, list(self.users.values()))
        return {"members": page, "response_metadata": {"next_cursor": cursor}}

    def m_usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require(args, "usergroup")
        group = self.usergroups.get(str(args["usergroup"]))
        if group is None:
            raise SlackError("no_such_subteam")
        return {"users": list(group["users"])}

    def m_files_getUploadURLExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require(args, "filename", "length")
        length = str(args["length"])
        if not length.isdigit() or int(length) < 1:
            raise SlackError("invalid_arguments")
        file_id = self._new_id("F")
        self.files[file_id] = SharedFile(file_id, str(args["filename"]), int(length))
        return {"upload_url": f"{self.base_url}upload/{file_id}", "file_id": file_id}

    def m_files_completeUploadExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require(args, "files")
        try:
            entries = json.loads(args["files"]) if isinstance(args["files"], str) else args["files"]
        except json.JSONDecodeError:
            raise SlackError("invalid_arguments") from None
        shared = []
        for entry in entries:
            upload = self.files.get(str(entry.get("id")))
            if upload is None:
                raise SlackError("file_not_found")
            if upload.data is None:
                raise SlackError("file_upload_not_finalized")
            upload.title = str(entry.get("title") or upload.filename)
            shared.append(upload)
        channel_id = args.get("channel_id")
        if channel_id:
            channel = self._channel({"channel": channel_id})
            if self.bot_user_id not in channel.members:
                raise SlackError("not_in_channel")
            if channel.is_archived:
                raise SlackError("is_archived")
            for upload in shared:
                upload.channel = channel.id
            message = self._post(channel.id, self.bot_user_id, str(args.get("initial_comment") or ""), [])
            message.files = [u.id for u in shared]
        return {"files": [{"id": u.id, "title": u.title, "name": u.filename} for u in shared]}

    def m_views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require(args, "trigger_id", "view")
        if args["trigger_id"] not in self.triggers:
            raise SlackError("invalid_trigger_id")
        errors = validate_view(args["view"])
        if errors:
            raise SlackError("invalid_arguments", response_metadata={"messages": errors})
        view_id = self._new_id("V")
        self.views[view_id] = {**args["view"], "id": view_id, "user": self.triggers.pop(args["trigger_id"])}
        return {"view": self.views[view_id]}

    def m_views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require(args, "view_id", "view")
        if args["view_id"] not in self.views:
            raise SlackError("not_found")
        errors = validate_view(args["view"])
        if errors:
            raise SlackError("invalid_arguments", response_metadata={"messages": errors})
        self.views[args["view_id"]] = {**self.views[args["view_id"]], **args["view"]}
        return {"view": self.views[args["view_id"]]}
