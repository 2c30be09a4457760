"""The Slack test server rejects what Slack rejects; checked with the real slack_sdk WebClient."""

from __future__ import annotations

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.sandbox.server import SPEC_METHODS, SlackSandbox


@pytest.fixture
def client(sandbox: SlackSandbox) -> WebClient:
    return WebClient(token=sandbox.bot_token, base_url=sandbox.api_url, retry_handlers=[])


def error_of(call: object) -> str:
    assert callable(call)
    with pytest.raises(SlackApiError) as exc:
        call()
    return str(exc.value.response["error"])


def section(text: str) -> dict[str, object]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def test_unknown_methods_bad_tokens_and_missing_arguments(sandbox: SlackSandbox, client: WebClient) -> None:
    assert error_of(lambda: client.api_call("chat.postMesage")) == "unknown_method"
    bad = WebClient(token="xoxb-wrong", base_url=sandbox.api_url, retry_handlers=[])
    assert error_of(bad.auth_test) == "invalid_auth"
    assert error_of(lambda: client.api_call("users.info")) == "invalid_arguments"
    assert error_of(lambda: client.chat_postMessage(channel="C404", text="hi")) == "channel_not_found"


def test_channel_names_follow_slacks_rules(client: WebClient) -> None:
    assert error_of(lambda: client.conversations_create(name="Has Caps")) == "invalid_name_specials"
    assert error_of(lambda: client.conversations_create(name="x" * 81)) == "invalid_name_maxlength"
    assert error_of(lambda: client.conversations_create(name="")) == "invalid_name_required"
    client.conversations_create(name="inc-1")
    assert error_of(lambda: client.conversations_create(name="inc-1")) == "name_taken"


@pytest.mark.parametrize(
    ("blocks", "pointer"),
    [
        ([section("x")] * 51, "/blocks"),
        ([section("x" * 3001)], "/blocks/0/text/text"),
        ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}], "/blocks/0/text/text"),
        (
            [
                {
                    "type": "actions",
                    "elements": [
                        {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "b" * 76}}
                    ],
                }
            ],
            "/blocks/0/elements/0/text/text",
        ),
        (
            [
                {
                    "type": "actions",
                    "elements": [
                        {"type": "button", "action_id": "a" * 256, "text": {"type": "plain_text", "text": "ok"}}
                    ],
                }
            ],
            "/blocks/0/elements/0/action_id",
        ),
        ([{**section("x"), "block_id": "b" * 256}], "/blocks/0/block_id"),
        (
            [
                {
                    "type": "input",
                    "label": {"type": "plain_text", "text": "l"},
                    "element": {"type": "plain_text_input", "action_id": "v"},
                }
            ],
            "/blocks/0",
        ),
    ],
)
def test_block_kit_limits(
    client: WebClient, sandbox: SlackSandbox, blocks: list[dict[str, object]], pointer: str
) -> None:
    channel = client.conversations_create(name="limits")["channel"]["id"]
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel=channel, text="t", blocks=blocks)
    assert exc.value.response["error"] == "invalid_blocks"
    assert any(f"[json-pointer:{pointer}]" in m for m in exc.value.response["response_metadata"]["messages"])
    assert sandbox.channel_messages(channel) == []


def test_modal_title_limit(sandbox: SlackSandbox, client: WebClient) -> None:
    view = {"type": "modal", "title": {"type": "plain_text", "text": "t" * 25}, "blocks": []}
    trigger = sandbox.new_trigger_id("U1")
    with pytest.raises(SlackApiError) as exc:
        client.views_open(trigger_id=trigger, view=view)
    assert "[json-pointer:/view/title/text]" in exc.value.response["response_metadata"]["messages"][0]
    assert error_of(lambda: client.views_open(trigger_id="made-up", view=view)) == "invalid_trigger_id"


def test_rate_limits_answer_429_with_retry_after(sandbox: SlackSandbox, client: WebClient) -> None:
    channel = client.conversations_create(name="busy")["channel"]["id"]
    sandbox.rate_limit("chat.postMessage", capacity=2, per_seconds=60, retry_after=7)
    client.chat_postMessage(channel=channel, text="1")
    client.chat_postMessage(channel=channel, text="2")
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel=channel, text="3")
    assert exc.value.response.status_code == 429
    assert exc.value.response.headers["Retry-After"] == "7"
    assert [m.text for m in sandbox.channel_messages(channel)] == ["1", "2"]


def test_members_invites_and_dms(sandbox: SlackSandbox, client: WebClient) -> None:
    channel = client.conversations_create(name="room")["channel"]["id"]
    assert error_of(lambda: client.conversations_invite(channel=channel, users="UNOBODY")) == "user_not_found"
    client.conversations_invite(channel=channel, users="UREPORTER01,ULEAD000001")
    assert error_of(lambda: client.conversations_invite(channel=channel, users="UREPORTER01")) == "already_in_channel"
    dm = client.conversations_open(users="ULEAD000001")["channel"]["id"]
    assert client.conversations_open(users="ULEAD000001")["channel"]["id"] == dm
    client.chat_postMessage(channel=dm, text="psst")
    assert [m.text for m in sandbox.dm_messages("ULEAD000001")] == ["psst"]


def test_every_emulated_method_is_a_real_slack_method() -> None:
    emulated = {name[2:].replace("_", ".", 1) for name in dir(SlackSandbox) if name.startswith("m_")}
    # the second underscore of usergroups_users_list is part of the name too
    emulated = {m.replace("usergroups.users_list", "usergroups.users.list") for m in emulated}
    assert emulated <= set(SPEC_METHODS), emulated - set(SPEC_METHODS)
