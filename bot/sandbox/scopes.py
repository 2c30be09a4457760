"""Which OAuth scopes a bot token needs for a Web API call, from Slack's Web API spec.

slack_scopes.json keeps each method's scopes as Slack's OpenAPI spec lists them (regenerate it with
`python -m bot.sandbox.scopes PATH/TO/slack_web_openapi_v2.json`). The spec predates granular bot tokens,
so three names are translated to the bot scope that replaced them, and user-token alternatives dropped.
Conversation methods list one scope per conversation type (`channels:` public, `groups:` private, `im:`,
`mpim:`): a call needs only those of the types it touches.

The sandbox (server.py) enforces these on every call, answering `missing_scope` as Slack does; by default
its bot token holds the scopes of the app manifest, so the whole suite runs under them. The manifest test
derives the same table from the calls the gateway makes (tests/test_manifest_scopes.py).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

import yaml

MANIFEST = Path(__file__).resolve().parents[2] / "slack-app-manifest.yaml"
SPEC_SCOPES: dict[str, list[str]] = json.loads(Path(__file__).with_name("slack_scopes.json").read_text("utf-8"))[
    "methods"
]
# Methods newer than the 2020 spec: files_upload_v2's steps (Slack's method pages: files:write).
NEWER_METHODS = {"files.getUploadURLExternal": ["files:write"], "files.completeUploadExternal": ["files:write"]}
# Methods whose bot scope the spec gets wrong: it lists the user token's channels:write for conversations.join,
# while a bot joins a public channel with channels:join (Slack's method page).
BOT_METHOD_SCOPES = {"conversations.join": ["channels:join"]}
# Legacy or workspace-app names in the spec → the granular bot scope (None: a user-token alternative).
BOT_SCOPE = {
    "chat:write:bot": "chat:write",
    "chat:write:user": None,
    "channels:write": "channels:manage",
    "files:write:user": "files:write",
    "none": None,
}
TYPE_OF_PREFIX = {"channels": "public_channel", "groups": "private_channel", "im": "im", "mpim": "mpim"}
CONVERSATION_TYPES = tuple(TYPE_OF_PREFIX.values())
# slack_sdk helpers that are several Web API calls under one name
SDK_HELPERS = {"files.upload_v2": ("files.getUploadURLExternal", "files.completeUploadExternal")}


def spec_scopes(method: str) -> list[str] | None:
    """The scopes the spec lists for `method` (None: a method the spec does not know)."""
    return NEWER_METHODS.get(method) or BOT_METHOD_SCOPES.get(method) or SPEC_SCOPES.get(method)


def required_scopes(method: str, types: Iterable[str] = ("public_channel",)) -> set[str]:
    """The bot scopes a call of `method` needs when it touches conversations of `types`."""
    wanted = set(types)
    needed: set[str] = set()
    for scope in spec_scopes(method) or []:
        prefix = scope.split(":", 1)[0]
        if prefix in TYPE_OF_PREFIX and TYPE_OF_PREFIX[prefix] not in wanted:
            continue
        bot_scope = BOT_SCOPE.get(scope, scope)
        if bot_scope is not None:
            needed.add(bot_scope)
    return needed


def call_types(method: str, args: dict[str, Any], type_of_channel: Callable[[str], str | None]) -> set[str]:
    """The conversation types a call touches, from its arguments (as Slack decides which scope to ask for)."""
    if "types" in args or method in ("conversations.list", "users.conversations"):
        return {t.strip() for t in str(args.get("types") or "public_channel").split(",") if t.strip()}
    if method == "conversations.create":
        return {"private_channel" if str(args.get("is_private", "")).lower() in ("1", "true") else "public_channel"}
    if method == "conversations.open" and not args.get("channel"):
        return {"im" if len(str(args.get("users", "")).split(",")) == 1 else "mpim"}
    channel = args.get("channel") or args.get("channel_id")
    found = type_of_channel(str(channel)) if channel else None
    return {found or "public_channel"}


def missing_scopes(
    method: str, args: dict[str, Any], provided: set[str], type_of_channel: Callable[[str], str | None]
) -> set[str]:
    """The scopes a call needs that the token lacks (empty: the call may go ahead)."""
    return required_scopes(method, call_types(method, args, type_of_channel)) - provided


def manifest_scopes(path: Path = MANIFEST) -> set[str]:
    """The bot scopes the app manifest asks for (every sandbox asks: the parsed file is kept until it changes)."""
    stat = path.stat()
    return set(_manifest_scopes(path.resolve(), stat.st_mtime_ns, stat.st_size))


@cache
def _manifest_scopes(path: Path, _mtime_ns: int, _size: int) -> frozenset[str]:
    manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
    return frozenset(manifest["oauth_config"]["scopes"]["bot"])


def _generate(spec_path: Path) -> None:
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    methods = {}
    for path, operations in sorted(spec["paths"].items()):
        for operation in operations.values():
            for requirement in operation.get("security", []):
                methods[path.lstrip("/")] = sorted(requirement.get("slackAuth", []))
    data = {"source": "Slack Web API OpenAPI v2 spec (2020), security.slackAuth per method", "methods": methods}
    Path(__file__).with_name("slack_scopes.json").write_text(json.dumps(data, indent=0) + "\n", encoding="utf-8")


if __name__ == "__main__":
    _generate(Path(sys.argv[1]))
