"""The Slack gateway: 429s honoured, transient failures retried with bounds, order kept per channel."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from bot.sandbox.server import SlackSandbox
from bot.slack.gateway import SlackCallError, SlackGateway, make_web_client


@pytest.fixture
def gateway(sandbox: SlackSandbox) -> SlackGateway:
    return SlackGateway(make_web_client(sandbox.bot_token, sandbox.api_url), backoff=0.01)


def test_a_burst_under_a_rate_limit_arrives_once_and_in_order(sandbox: SlackSandbox, gateway: SlackGateway) -> None:
    channel = gateway.create_channel("burst")["id"]
    sandbox.rate_limit("chat.postMessage", capacity=5, per_seconds=1.0, retry_after=1)
    texts = [f"message {i}" for i in range(12)]
    started = time.monotonic()
    for text in texts:
        gateway.post(channel, text)
    elapsed = time.monotonic() - started

    assert [m.text for m in sandbox.channel_messages(channel)] == texts
    assert len(sandbox.calls_to("chat.postMessage")) > len(texts)  # some were refused with 429 and retried
    assert elapsed >= 1.0  # the retries waited for Retry-After


def test_a_message_waiting_out_a_429_is_not_overtaken_by_a_later_one(
    sandbox: SlackSandbox, gateway: SlackGateway
) -> None:
    channel = gateway.create_channel("ordered")["id"]
    sandbox.fail("chat.postMessage", error="ratelimited", status=429, times=1)  # Retry-After defaults to 1 s
    first = threading.Thread(target=gateway.post, args=(channel, "first"))
    first.start()
    deadline = time.monotonic() + 10
    while not sandbox.calls_to("chat.postMessage") and time.monotonic() < deadline:
        time.sleep(0.005)  # wait until "first" has been refused once and is waiting out Retry-After
    second = threading.Thread(target=gateway.post, args=(channel, "second"))
    second.start()
    first.join()
    second.join()
    assert [m.text for m in sandbox.channel_messages(channel)] == ["first", "second"]


def test_transient_server_errors_are_retried(sandbox: SlackSandbox, gateway: SlackGateway) -> None:
    channel = gateway.create_channel("flaky")["id"]
    sandbox.fail("chat.postMessage", error="service_unavailable", status=503, times=2)
    gateway.post(channel, "made it")
    assert [m.text for m in sandbox.channel_messages(channel)] == ["made it"]
    assert len(sandbox.calls_to("chat.postMessage")) == 3


def test_retries_are_bounded(sandbox: SlackSandbox) -> None:
    sleeps: list[float] = []
    gateway = SlackGateway(
        make_web_client(sandbox.bot_token, sandbox.api_url), max_attempts=4, backoff=0.5, sleep=sleeps.append
    )
    channel = gateway.create_channel("down")["id"]
    sandbox.fail("chat.postMessage", error="internal_error", status=500, times=100)
    with pytest.raises(SlackCallError) as exc:
        gateway.post(channel, "never")
    assert exc.value.error == "internal_error"
    assert sleeps == [0.5, 1.0, 2.0]  # exponential backoff between the four attempts


def test_permanent_errors_are_not_retried(sandbox: SlackSandbox, gateway: SlackGateway) -> None:
    with pytest.raises(SlackCallError) as exc:
        gateway.post("C_NOPE", "hello")
    assert exc.value.error == "channel_not_found"
    assert len(sandbox.calls_to("chat.postMessage")) == 1


def test_connection_errors_are_retried_then_reported() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    sleeps: list[float] = []
    gateway = SlackGateway(
        make_web_client("xoxb-x", f"http://127.0.0.1:{port}/api/"), max_attempts=3, backoff=0.1, sleep=sleeps.append
    )
    with pytest.raises(SlackCallError) as exc:
        gateway.call("auth.test")
    assert exc.value.error == "connection_error"
    assert sleeps == [0.1, 0.2]


def test_a_rate_limit_waits_what_slack_says_and_does_not_grow_the_backoff(sandbox: SlackSandbox) -> None:
    sleeps: list[float] = []
    gateway = SlackGateway(
        make_web_client(sandbox.bot_token, sandbox.api_url), max_attempts=5, backoff=0.5, sleep=sleeps.append
    )
    channel = gateway.create_channel("mixed")["id"]
    sandbox.fail("chat.postMessage", error="service_unavailable", status=503, times=1)
    sandbox.fail("chat.postMessage", error="ratelimited", status=429, times=1)  # Retry-After: 1
    sandbox.fail("chat.postMessage", error="service_unavailable", status=503, times=1)
    gateway.post(channel, "made it")
    assert [m.text for m in sandbox.channel_messages(channel)] == ["made it"]
    assert sleeps == [0.5, 1.0, 1.0]  # backoff, Slack's Retry-After, the backoff doubled once


def test_a_retried_post_finds_its_first_attempt_beyond_the_first_page_of_history(
    sandbox: SlackSandbox, gateway: SlackGateway
) -> None:
    sandbox.page_size = 2  # Slack answers history in pages; the earlier attempt is on the third
    channel = gateway.create_channel("paged-history")["id"]
    first = gateway.post(channel, "the card", key="card-1")
    for n in range(5):
        gateway.post(channel, f"later {n}")
    assert gateway.post(channel, "the card", key="card-1", check_first=True) == first
    assert [m.text for m in sandbox.channel_messages(channel)].count("the card") == 1
    assert len(sandbox.calls_to("conversations.history")) == 3


def test_every_listing_follows_the_cursor(sandbox: SlackSandbox, gateway: SlackGateway) -> None:
    sandbox.page_size = 2
    for n in range(5):
        sandbox.add_channel(f"early-{n}")
    wanted = gateway.create_channel("last-created")
    found_channel = gateway.find_channel("last-created")
    assert found_channel is not None and found_channel["id"] == wanted["id"]
    people = [sandbox.add_user(f"UPAGE{n:06d}", f"person.{n}") for n in range(5)]
    gateway.invite(wanted["id"], people)
    assert gateway.channel_members(wanted["id"]) == {sandbox.bot_user_id, *people}
    assert len(sandbox.calls_to("conversations.members")) > 2
    found = gateway.find_user("person.4")
    assert found is not None and found["id"] == people[-1]


def test_a_users_locale_is_remembered_and_a_failed_lookup_is_tried_again_a_minute_later(sandbox: SlackSandbox) -> None:
    now = [1000.0]
    gateway = SlackGateway(make_web_client(sandbox.bot_token, sandbox.api_url), monotonic=lambda: now[0])
    user = sandbox.add_user("ULOCALE0001", "li.lei", locale="zh-CN")
    sandbox.fail("users.info", error="service_unavailable", status=503, times=1)
    assert gateway.user_locale(user) is None  # Slack failed: the playbook's language for now, never an error
    now[0] += 30
    assert gateway.user_locale(user) is None and len(sandbox.calls_to("users.info")) == 1  # not asked again yet
    now[0] += 31
    assert gateway.user_locale(user) == "zh-CN"  # a minute on, asked again
    now[0] += 599
    assert gateway.user_locale(user) == "zh-CN" and len(sandbox.calls_to("users.info")) == 2  # remembered
