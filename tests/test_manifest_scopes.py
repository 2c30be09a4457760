"""The app manifest asks for exactly the scopes the bot's Web API calls need, and the test server holds
the bot to them: a call without its scope gets `missing_scope`, as Slack answers."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml
from slack_sdk.errors import SlackApiError

from bot.sandbox.scopes import SDK_HELPERS, manifest_scopes, required_scopes, spec_scopes
from bot.sandbox.server import SlackSandbox
from bot.slack.gateway import SlackCallError, SlackGateway, make_web_client
from tests.conftest import ROOT


@dataclass
class GatewayCall:
    method: str
    constants: dict[str, Any] = field(default_factory=dict)  # keyword arguments given as literals
    names: set[str] = field(default_factory=set)  # every keyword argument's name


def gateway_calls() -> list[GatewayCall]:
    """Every `self.call("method", ...)` in the gateway, read from its source (the only place that calls Slack)."""
    tree = ast.parse((ROOT / "bot" / "slack" / "gateway.py").read_text(encoding="utf-8"))
    calls = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "call"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            constants = {k.arg: k.value.value for k in node.keywords if k.arg and isinstance(k.value, ast.Constant)}
            calls.append(GatewayCall(node.args[0].value, constants, {k.arg for k in node.keywords if k.arg}))
    return calls


def needed_by_the_gateway() -> dict[str, set[str]]:
    """Scope → the methods that need it. The conversations the bot works in are those it creates (their
    type from conversations.create's is_private) and the DMs it opens."""
    calls = gateway_calls()
    created = {
        "private_channel" if c.constants.get("is_private") else "public_channel"
        for c in calls
        if c.method == "conversations.create"
    }
    needs: dict[str, set[str]] = {}
    for call in calls:
        if "types" in call.constants:
            types = set(str(call.constants["types"]).split(","))
        elif call.method == "conversations.create":
            types = {"private_channel" if call.constants.get("is_private") else "public_channel"}
        elif call.method == "conversations.open":
            types = {"im"}  # one user per DM (users=user)
        elif call.method == "conversations.history":
            types = created | {"im"}  # a retried post is looked for where it went: its channel or a DM
        else:
            types = created
        for method in SDK_HELPERS.get(call.method, (call.method,)):
            assert spec_scopes(method) is not None, f"{method} is not in Slack's Web API spec"
            for scope in required_scopes(method, types):
                needs.setdefault(scope, set()).add(method)
    return needs


def test_the_gateway_calls_are_read_from_its_source() -> None:
    methods = {c.method for c in gateway_calls()}
    # a sanity floor, so an empty parse cannot pass the test below
    assert {"conversations.create", "chat.postMessage", "files.upload_v2", "conversations.open"} <= methods


def test_the_manifest_asks_for_exactly_what_the_gateway_calls_need() -> None:
    manifest = yaml.safe_load((ROOT / "slack-app-manifest.yaml").read_text(encoding="utf-8"))
    needs = needed_by_the_gateway()
    expected = set(needs)
    if manifest["features"].get("slash_commands"):
        expected.add("commands")  # slash commands need it; no Web API method does
    declared = manifest_scopes()
    missing = {scope: sorted(needs.get(scope, ["slash commands"])) for scope in expected - declared}
    assert not missing, f"the manifest lacks scopes the bot needs: {missing}"
    assert not declared - expected, f"the manifest asks for scopes nothing uses: {sorted(declared - expected)}"
    assert len(manifest["oauth_config"]["scopes"]["bot"]) == len(declared), "a scope is listed twice"


def test_the_review_export_and_private_channel_lookup_are_covered() -> None:
    """The two scopes a real workspace was missing, and why they are needed; channels:join only for joining the
    leadership channel people made without the bot (a bot's scope, not the spec's user-token channels:write)."""
    needs = needed_by_the_gateway()
    assert needs["files:write"] == {"files.getUploadURLExternal", "files.completeUploadExternal"}
    assert needs["groups:read"] == {"conversations.list"}
    assert needs["channels:join"] == {"conversations.join"}


@pytest.fixture
def narrow() -> Iterator[Callable[..., SlackSandbox]]:
    """Sandboxes whose token lacks some of the manifest's scopes (as an admin might install the app)."""
    started: list[SlackSandbox] = []

    def build(*withheld: str) -> SlackSandbox:
        started.append(SlackSandbox(bot_scopes=manifest_scopes() - set(withheld)).start())
        return started[-1]

    yield build
    for sandbox in started:
        sandbox.stop()


def test_a_call_without_its_scope_gets_missing_scope_as_slack_answers(narrow: Callable[..., SlackSandbox]) -> None:
    sandbox = narrow("channels:manage")
    client = make_web_client(sandbox.bot_token, sandbox.api_url)
    with pytest.raises(SlackApiError) as caught:
        client.conversations_create(name="inc-1-test", is_private=False)
    assert caught.value.response.data == {
        "ok": False,
        "error": "missing_scope",
        "needed": "channels:manage",
        "provided": ",".join(sorted(manifest_scopes() - {"channels:manage"})),
    }
    assert sandbox.channel_by_name("inc-1-test") is None
    # a private channel needs groups:write, which the manifest does not grant at all
    with pytest.raises(SlackApiError) as private:
        client.conversations_create(name="inc-2-test", is_private=True)
    assert private.value.response.data["needed"] == "groups:write"


def test_the_scope_asked_for_follows_the_conversation_types_a_call_touches(narrow: Callable[..., SlackSandbox]) -> None:
    sandbox = narrow("groups:read", "im:write")
    gateway = SlackGateway(make_web_client(sandbox.bot_token, sandbox.api_url))
    sandbox.add_user("UALICE00001", "alice")
    assert gateway.call("conversations.list", types="public_channel")["ok"]
    with pytest.raises(SlackCallError) as listing:
        gateway.find_channel("general")  # public and private channels: groups:read
    assert listing.value.error == "missing_scope"
    with pytest.raises(SlackCallError) as dm:
        gateway.dm("UALICE00001", "你好")
    assert dm.value.error == "missing_scope"
    assert sandbox.dm_messages("UALICE00001") == []


def test_the_sandbox_token_holds_the_manifest_scopes_by_default() -> None:
    with SlackSandbox() as sandbox:
        assert sandbox.bot_scopes == manifest_scopes()
        client = make_web_client(sandbox.bot_token, sandbox.api_url)
        with pytest.raises(SlackApiError) as caught:
            client.reactions_add(channel=sandbox.add_channel("general"), name="eyes", timestamp="1.000001")
        assert caught.value.response.data["needed"] == "reactions:write"  # the bot never reacts to messages
