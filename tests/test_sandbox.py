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


def button(action_id: str, text: str = "Go") -> dict[str, object]:
    return {"type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": text}}


@pytest.mark.parametrize(
    ("blocks", "pointer", "why"),
    [
        (
            [{**section("a"), "block_id": "same"}, {**section("b"), "block_id": "same"}],
            "/blocks/1/block_id",
            "duplicate",
        ),
        (
            [{"type": "actions", "elements": [button("take"), button("take", "Again")]}],
            "/blocks/0/elements/1/action_id",
            "duplicate",
        ),
        ([{"type": "video", "title": {"type": "plain_text", "text": "v"}}], "/blocks/0/type", "unsupported"),
        # slack_sdk's models know a button's URL limit, which the sandbox's own table does not
        (
            [{"type": "actions", "elements": [{**button("b"), "url": "https://x.test/" + "u" * 3000}]}],
            "/blocks/0",
            "url",
        ),
        # ...a date picker's date format, and a confirmation dialog's title limit
        (
            [{"type": "actions", "elements": [{"type": "datepicker", "action_id": "d", "initial_date": "2026-13-45"}]}],
            "/blocks/0",
            "YYYY-MM-DD",
        ),
        (
            [
                {
                    "type": "actions",
                    "elements": [
                        {
                            **button("b"),
                            "confirm": {
                                "title": {"type": "plain_text", "text": "t" * 101},
                                "text": {"type": "plain_text", "text": "Sure?"},
                                "confirm": {"type": "plain_text", "text": "Yes"},
                                "deny": {"type": "plain_text", "text": "No"},
                            },
                        }
                    ],
                }
            ],
            "/blocks/0",
            "title",
        ),
    ],
)
def test_blocks_slack_refuses_beyond_the_size_limits(
    client: WebClient, sandbox: SlackSandbox, blocks: list[dict[str, object]], pointer: str, why: str
) -> None:
    channel = client.conversations_create(name="strict")["channel"]["id"]
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel=channel, text="t", blocks=blocks)
    assert exc.value.response["error"] == "invalid_blocks"
    messages = exc.value.response["response_metadata"]["messages"]
    assert any(f"[json-pointer:{pointer}]" in m and why in m for m in messages), messages
    assert sandbox.channel_messages(channel) == []


def test_the_same_action_id_in_two_blocks_and_distinct_ids_are_accepted(
    client: WebClient, sandbox: SlackSandbox
) -> None:
    channel = client.conversations_create(name="fine")["channel"]["id"]
    blocks = [
        {"type": "actions", "block_id": "one", "elements": [button("go"), button("stop")]},
        {"type": "actions", "block_id": "two", "elements": [button("go")]},
    ]
    client.chat_postMessage(channel=channel, text="t", blocks=blocks)
    assert [m.blocks for m in sandbox.channel_messages(channel)] == [blocks]


def test_a_modal_is_checked_by_slack_sdks_view_model_and_for_duplicate_block_ids(
    sandbox: SlackSandbox, client: WebClient
) -> None:
    def field(block_id: str) -> dict[str, object]:
        return {
            "type": "input",
            "block_id": block_id,
            "label": {"type": "plain_text", "text": "Title"},
            "element": {"type": "plain_text_input", "action_id": "v"},
        }

    title, submit = {"type": "plain_text", "text": "Report"}, {"type": "plain_text", "text": "Open"}
    twice = {"type": "modal", "title": title, "submit": submit, "blocks": [field("t"), field("t")]}
    with pytest.raises(SlackApiError) as exc:
        client.views_open(trigger_id=sandbox.new_trigger_id("U1"), view=twice)
    assert any("duplicate block_id" in m for m in exc.value.response["response_metadata"]["messages"])
    too_long = {**twice, "blocks": [field("t")], "callback_id": "c" * 256}
    with pytest.raises(SlackApiError) as exc:
        client.views_open(trigger_id=sandbox.new_trigger_id("U1"), view=too_long)
    assert any("callback_id" in m for m in exc.value.response["response_metadata"]["messages"])
    client.views_open(trigger_id=sandbox.new_trigger_id("U1"), view={**twice, "blocks": [field("t"), field("u")]})
    assert len(sandbox.views) == 1


def test_a_user_id_as_channel_posts_to_the_apps_dm_with_them(sandbox: SlackSandbox, client: WebClient) -> None:
    posted = client.chat_postMessage(channel="ULEAD000001", text="your turn")
    assert posted["channel"].startswith("D")
    assert [m.text for m in sandbox.dm_messages("ULEAD000001")] == ["your turn"]
    assert client.conversations_open(users="ULEAD000001")["channel"]["id"] == posted["channel"]
    assert error_of(lambda: client.chat_postMessage(channel="UNOBODY0001", text="hi")) == "channel_not_found"


def test_list_methods_paginate_with_limit_and_an_opaque_cursor(sandbox: SlackSandbox, client: WebClient) -> None:
    sandbox.page_size = 2  # Slack may answer fewer than `limit`; a caller must follow next_cursor
    channel = client.conversations_create(name="paged")["channel"]["id"]
    client.conversations_invite(channel=channel, users="UREPORTER01,ULEAD000001,UTECH000001,UCOMMS00001")
    for n in range(5):
        client.chat_postMessage(channel=channel, text=f"m{n}")

    def every(method: str, key: str, **args: object) -> tuple[list[object], int]:
        items: list[object] = []
        cursor, pages = "", 0
        while True:
            page = client.api_call(method, params={**args, "limit": 100, "cursor": cursor})
            assert len(page[key]) <= 2
            items += page[key]
            pages += 1
            cursor = page["response_metadata"]["next_cursor"]
            if not cursor:
                return items, pages

    members, pages = every("conversations.members", "members", channel=channel)
    assert set(members) == {"UBOTSANDBOX", "UREPORTER01", "ULEAD000001", "UTECH000001", "UCOMMS00001"}
    assert pages == 3
    history, _ = every("conversations.history", "messages", channel=channel)
    assert [m["text"] for m in history] == ["m4", "m3", "m2", "m1", "m0"]  # type: ignore[index]
    users, _ = every("users.list", "members")
    assert len(users) == len(sandbox.users)
    sandbox.add_channel("general")
    channels, _ = every("conversations.list", "channels", types="public_channel")
    assert {c["name"] for c in channels} == {"paged", "general"}  # type: ignore[index]
    first = client.conversations_history(channel=channel, limit=3)
    assert first["has_more"] and len(first["messages"]) == 2
    assert error_of(lambda: client.conversations_members(channel=channel, cursor="42")) == "invalid_cursor"


def test_the_servers_stop_at_once_rather_than_at_the_next_poll() -> None:
    """Every test stops a server or three; a loop that polls a flag makes each stop wait out the interval."""
    from http.server import BaseHTTPRequestHandler
    from threading import Thread

    from bot.sandbox.server import PromptHTTPServer

    server = PromptHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    loop = Thread(target=server.serve_forever, kwargs={"poll_interval": 60.0}, daemon=True)
    loop.start()
    stopper = Thread(target=server.shutdown, daemon=True)
    stopper.start()
    stopper.join(timeout=10)  # a polling loop would take the whole minute
    assert not stopper.is_alive() and not loop.is_alive()
    server.server_close()
