"""Concurrent clicks: 20 people (or one person, twenty times) click the same state-changing button or type the
same command at once. Exactly one change is made and shown; the 19 others are told privately, in words, that
someone was first, and by whom. On SQLite and on PostgreSQL, through signed requests to the running bot."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.clock import FixedClock
from bot.core.config import Playbook
from bot.sandbox.driver import Reply
from bot.sandbox.server import Message, SlackSandbox
from store.models import (
    Deadline,
    Escalation,
    Incident,
    Notice,
    NoticeDelivery,
    RoleAssignment,
    SatisfactionRating,
    TimelineEvent,
)
from tests.conftest import ADMIN, LEAD, TECH, Stack, running_stack
from tests.notice_targets import WebhookReceiver, wire_targets

N = 20
CRASH = "Something went wrong"
# Twenty admins (they may do everything) and twenty plain participants (they may take an open role).
ADMINS = [f"UADMIN{n:05d}" for n in range(1, N + 1)]
PARTICIPANTS = [f"UPART{n:06d}" for n in range(1, N + 1)]
TITLE = "手机银行转账失败，客户卡号6222021234567890123被重复扣款"

pytestmark = pytest.mark.playbook({"admins: []": f"admins: [{ADMIN}, {', '.join(ADMINS)}]"})


@pytest.fixture
def db_stack(
    sandbox: SlackSandbox, general: str, playbook: Playbook, stack_db_url: str, clock: FixedClock
) -> Iterator[Stack]:
    """The running bot on SQLite and on PostgreSQL, with forty more people in the workspace."""
    for n, user in enumerate(ADMINS + PARTICIPANTS):
        sandbox.add_user(user, f"person.{n}")
    with running_stack(sandbox, playbook, stack_db_url, clock) as running:
        yield running


def at_once(stack: Stack, users: list[str], send: Callable[[str], Reply]) -> dict[str, list[str]]:
    """Every user sends at the same moment (one thread each, released together); returns what each was told
    privately by it, once all the work behind the requests has finished."""
    before = {user: len(stack.ephemeral_texts(user)) for user in set(users)}
    start = threading.Barrier(len(users))
    replies: list[Reply] = []

    def one(user: str) -> None:
        start.wait()
        replies.append(send(user))

    threads = [threading.Thread(target=one, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stack.bot.executor.wait_idle()
    assert [r.status for r in replies] == [200] * len(users), [r.body for r in replies]
    told = {user: stack.ephemeral_texts(user)[before[user] :] for user in set(users)}
    assert not [t for texts in told.values() for t in texts if CRASH in t], told
    return told


def refused(told: dict[str, list[str]], phrase: str) -> list[str]:
    """The answers containing `phrase`."""
    return [t for texts in told.values() for t in texts if phrase in t]


def click_all(stack: Stack, users: list[str], message: Message, label: str) -> dict[str, list[str]]:
    """Everyone clicks the button labelled `label` on `message` at once."""
    button = next(
        e
        for b in message.blocks
        for e in b.get("elements", [])
        if e.get("type") == "button" and e["text"]["text"] == label
    )

    def click(user: str) -> Reply:
        return stack.driver.click(user, message.channel, message.ts, button["action_id"], button["value"], wait=False)

    return at_once(stack, users, click)


def slash_all(stack: Stack, users: list[str], channel: str, text: str) -> dict[str, list[str]]:
    return at_once(stack, users, lambda user: stack.driver.slash(user, channel, text, wait=False))


def rows(stack: Stack, model: Any, *where: Any) -> list[Any]:
    with stack.bot.services.db() as s:
        return list(s.scalars(select(model).where(*where)))


def events(stack: Stack, kind: str) -> list[TimelineEvent]:
    return rows(stack, TimelineEvent, TimelineEvent.event == kind)


def incident(stack: Stack) -> Incident:
    (row,) = rows(stack, Incident)
    return row


def lines(stack: Stack, channel: str, start: str) -> list[str]:
    return [t for t in stack.texts(channel) if t.startswith(start)]


def preview(stack: Stack, channel: str) -> Message:
    return next(m for m in reversed(stack.sandbox.channel_messages(channel)) if "Customer notice" in m.text)


def winner_of(told: dict[str, list[str]], users: list[str]) -> str:
    """The one user who was not refused."""
    (winner,) = [u for u in users if not any("already" in t for t in told[u])]
    return winner


# ---- notices ----------------------------------------------------------------------------------------------


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookReceiver]:
    """Social media and the hotline system receive an outage's notices."""
    receiver = WebhookReceiver()
    wire_targets(monkeypatch, receiver, "social", "hotline")
    try:
        yield receiver
    finally:
        receiver.close()


def test_twenty_publish_clicks_publish_once(db_stack: Stack, hooks: WebhookReceiver) -> None:
    announcements = db_stack.sandbox.add_channel("announcements", [db_stack.sandbox.bot_user_id, LEAD])
    channel = db_stack.open(f"outage sev3 {TITLE}").id  # SEV3: no approval needed
    db_stack.driver.slash(LEAD, channel, "notice initial")
    told = click_all(db_stack, ADMINS, preview(db_stack, channel), "Publish")

    winner = winner_of(told, ADMINS)
    assert len(refused(told, f"already published by <@{winner}>")) == N - 1
    assert sorted(r.path for r in hooks.received) == ["/hotline", "/social"]  # one webhook each
    assert len(db_stack.texts(announcements)) == 1  # one internal broadcast
    (published,) = lines(db_stack, channel, ":loudspeaker:")
    assert published.startswith(f":loudspeaker: <@{winner}> published the *initial* notice:")
    (notice,) = rows(db_stack, Notice)
    assert (notice.state, notice.published_by) == ("published", winner)
    assert len(rows(db_stack, NoticeDelivery)) == 5  # one outcome per channel of the plan
    assert len(events(db_stack, "notice_published")) == 1


def test_twenty_approve_clicks_approve_once(db_stack: Stack) -> None:
    channel = db_stack.open(f"outage sev2 {TITLE}").id  # SEV2: its notices need an approval
    db_stack.driver.slash(LEAD, channel, "notice initial")
    told = click_all(db_stack, ADMINS, preview(db_stack, channel), "Approve")

    winner = winner_of(told, ADMINS)
    assert len(refused(told, f"already approved by <@{winner}>")) == N - 1
    (notice,) = rows(db_stack, Notice)
    assert (notice.state, notice.approved_by) == ("approved", winner)
    assert [e.actor_id for e in events(db_stack, "notice_approved")] == [winner]


# ---- paging ------------------------------------------------------------------------------------------------


def page(stack: Stack) -> Message:
    stack.bot.sweeper.sweep()
    return next(m for m in stack.sandbox.dm_messages(LEAD) if "Page for #1" in m.text)


def test_twenty_acknowledge_clicks_acknowledge_once(db_stack: Stack) -> None:
    channel = db_stack.open(f"outage sev2 {TITLE}", user=TECH).id  # the lead is paged
    told = click_all(db_stack, ADMINS, page(db_stack), "Acknowledge")

    winner = winner_of(told, ADMINS)
    assert len(refused(told, f"already acknowledged by <@{winner}>")) == N - 1
    assert len(lines(db_stack, channel, ":white_check_mark:")) == 1
    assert lines(db_stack, channel, ":white_check_mark:")[0].startswith(f":white_check_mark: <@{winner}> acknowledged")
    (chain,) = rows(db_stack, Escalation)
    assert (chain.state, chain.acked_by) == ("acknowledged", winner)
    assert [e.actor_id for e in events(db_stack, "acknowledged")] == [winner]
    assert len(events(db_stack, "deadline_met")) == 1  # the plan's "lead acknowledges" deadline, once


def test_twenty_ack_commands_acknowledge_once(db_stack: Stack) -> None:
    channel = db_stack.open(f"outage sev2 {TITLE}", user=TECH).id
    page(db_stack)
    told = slash_all(db_stack, ADMINS, channel, "ack")

    winner = winner_of(told, ADMINS)
    assert len(refused(told, f"already acknowledged by <@{winner}>")) == N - 1
    assert len(lines(db_stack, channel, ":white_check_mark:")) == 1
    assert [e.actor_id for e in events(db_stack, "acknowledged")] == [winner]
    assert len(events(db_stack, "deadline_met")) == 1


# ---- the incident's states ---------------------------------------------------------------------------------


def test_twenty_resolve_commands_resolve_once(db_stack: Stack) -> None:
    channel = db_stack.open(f"outage sev3 {TITLE}").id
    told = slash_all(db_stack, ADMINS, channel, "resolve 已重启网关，客户卡号6222021234567890123已退款")

    assert len(refused(told, "#1 is already resolved")) == N - 1
    assert incident(db_stack).status == "resolved"
    (resolved,) = events(db_stack, "resolved")
    assert len(lines(db_stack, channel, f":white_check_mark: <@{resolved.actor_id}> resolved")) == 1
    assert len([t for t in db_stack.texts(channel) if "record their rating for #1" in t]) == 1  # one rating prompt
    for participant in (LEAD, TECH):  # each participant is asked once for their own rating
        assert len([t for t in db_stack.dm_texts(participant) if "How well did the response go" in t]) == 1


def test_twenty_close_commands_close_once(db_stack: Stack) -> None:
    channel = db_stack.open(f"outage sev3 {TITLE}").id
    db_stack.driver.slash(LEAD, channel, "resolve 已重启网关")
    db_stack.driver.slash(LEAD, channel, "review done")
    told = slash_all(db_stack, ADMINS, channel, "close")

    assert len(refused(told, "#1 is already closed")) == N - 1
    assert incident(db_stack).status == "closed"
    (closed,) = events(db_stack, "closed")
    assert lines(db_stack, channel, ":lock:") == [f":lock: <@{closed.actor_id}> closed the incident."]
    assert len(lines(db_stack, channel, ":checkered_flag: *Final summary of #1*")) == 1
    assert len(db_stack.sandbox.calls_to("conversations.archive")) == 1


def test_twenty_severity_raises_raise_it_and_page_once(db_stack: Stack) -> None:
    channel = db_stack.open(f"outage sev3 {TITLE}").id
    told = slash_all(db_stack, ADMINS, channel, "sev 1")

    assert len(refused(told, "#1 is already SEV1")) == N - 1
    assert incident(db_stack).severity == "sev1"
    assert len(events(db_stack, "severity_changed")) == 1
    assert len(rows(db_stack, Escalation)) == 1  # one paging chain for the raise


def test_twenty_pauses_and_twenty_resumes_move_the_deadlines_once(db_stack: Stack) -> None:
    channel = db_stack.open(f"complaint sev3 {TITLE}").id
    (due,) = [d.due_at for d in rows(db_stack, Deadline, Deadline.key == "first_response")]
    told = slash_all(db_stack, ADMINS, channel, "pause 等客户回电")
    (paused,) = events(db_stack, "paused")
    assert len(refused(told, f"#1 is already paused by <@{paused.actor_id}>")) == N - 1

    db_stack.advance(hours=2)
    told = slash_all(db_stack, ADMINS, channel, "resume")
    (resumed,) = events(db_stack, "resumed")
    assert len(refused(told, f"#1 was already resumed by <@{resumed.actor_id}>")) == N - 1
    (moved,) = [d.due_at for d in rows(db_stack, Deadline, Deadline.key == "first_response")]
    assert moved - due == timedelta(hours=2)  # moved out by the pause, once


# ---- roles -------------------------------------------------------------------------------------------------


def test_twenty_take_clicks_give_the_role_to_one(db_stack: Stack) -> None:
    channel = db_stack.open(f"outage sev3 {TITLE}").id
    db_stack.join(channel, *PARTICIPANTS)
    card = db_stack.sandbox.channel_messages(channel)[0]
    told = click_all(db_stack, PARTICIPANTS, card, "Take: Customer comms")

    winner = winner_of(told, PARTICIPANTS)
    assert len(refused(told, f"*Customer comms* is already taken by <@{winner}>")) == N - 1
    assert lines(db_stack, channel, ":raising_hand:") == [f":raising_hand: <@{winner}> took the role *Customer comms*."]
    assert [a.user_id for a in rows(db_stack, RoleAssignment, RoleAssignment.role == "customer_comms")] == [winner]
    assert len(events(db_stack, "role_taken")) == 1


def test_twenty_assign_me_commands_give_the_role_to_one(db_stack: Stack) -> None:
    channel = db_stack.open(f"outage sev3 {TITLE}").id
    db_stack.join(channel, *PARTICIPANTS)
    told = slash_all(db_stack, PARTICIPANTS, channel, "assign comms me")

    winner = winner_of(told, PARTICIPANTS)
    assert len(refused(told, f"*Customer comms* is already taken by <@{winner}>")) == N - 1
    assert lines(db_stack, channel, ":raising_hand:") == [f":raising_hand: <@{winner}> took the role *Customer comms*."]
    assert len(events(db_stack, "role_taken")) == 1


# ---- deadlines ---------------------------------------------------------------------------------------------


def reminder(stack: Stack) -> Message:
    """The first reminder of an outage's status update, at half its two hours."""
    stack.advance(hours=1)
    return next(m for m in stack.sandbox.dm_messages(LEAD) if "Reminder: *Status update*" in m.text)


def test_twenty_mark_done_clicks_meet_the_deadline_once(db_stack: Stack) -> None:
    channel = db_stack.open(f"outage sev3 {TITLE}").id
    told = click_all(db_stack, ADMINS, reminder(db_stack), "Mark done")

    (deadline,) = rows(db_stack, Deadline, Deadline.key == "status_update")
    assert deadline.state == "met"
    assert len(refused(told, f"*Status update* is already met by <@{deadline.closed_by}>")) == N - 1
    assert len(lines(db_stack, channel, f":white_check_mark: <@{deadline.closed_by}> marked *Status update* done")) == 1
    assert len(events(db_stack, "deadline_met")) == 1


def test_twenty_snooze_clicks_snooze_once(db_stack: Stack) -> None:
    db_stack.open(f"outage sev3 {TITLE}")
    told = click_all(db_stack, ADMINS, reminder(db_stack), "Snooze 1h 0m")

    winner = winner_of(told, ADMINS)
    assert told[winner] == [f":zzz: <@{winner}> snoozed *Status update* until 11-24 12:00."]
    assert len(refused(told, f"*Status update* is already snoozed by <@{winner}> until 11-24 12:00")) == N - 1
    (deadline,) = rows(db_stack, Deadline, Deadline.key == "status_update")
    assert deadline.snoozes == 1
    assert len(events(db_stack, "snoozed")) == 1


# ---- ratings -----------------------------------------------------------------------------------------------


def test_twenty_customer_rating_clicks_record_it_once(db_stack: Stack) -> None:
    channel = db_stack.open(f"outage sev3 {TITLE}").id
    db_stack.driver.slash(LEAD, channel, "resolve 已重启网关")
    prompt = next(m for m in db_stack.sandbox.channel_messages(channel) if "record their rating for #1" in m.text)
    told = click_all(db_stack, ADMINS, prompt, "4")

    (rating,) = rows(db_stack, SatisfactionRating)
    assert rating.score == 4
    (recorded,) = events(db_stack, "satisfaction")
    assert len(refused(told, f"already recorded as 4/5 by <@{recorded.actor_id}>")) == N - 1
    assert len(lines(db_stack, channel, ":star:")) == 1


def test_twenty_clicks_of_ones_own_rating_record_it_once(db_stack: Stack) -> None:
    channel = db_stack.open(f"outage sev3 {TITLE}").id
    db_stack.driver.slash(LEAD, channel, "resolve 已重启网关")
    question = next(m for m in db_stack.sandbox.dm_messages(TECH) if "How well did the response go" in m.text)
    told = click_all(db_stack, [TECH] * N, question, "5")

    assert told[TECH].count(":white_check_mark: Thank you: you rated the response to #1 5/5.") == 1
    assert len(refused(told, "You already rated the response to #1 5/5")) == N - 1
    assert [(r.rater_id, r.score) for r in rows(db_stack, SatisfactionRating)] == [(TECH, 5)]
    assert len(events(db_stack, "response_rated")) == 1
