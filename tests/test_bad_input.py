"""Bad bytes are input errors: control characters, out-of-range numbers and dates get a clear ephemeral
message and never a traceback, on SQLite and on PostgreSQL (where a NUL in text fails the INSERT).
Everything goes in as signed requests, as a fuzzer (or Slack) would send it."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from bot.core.clock import FixedClock
from bot.core.config import Playbook
from bot.sandbox.server import SlackSandbox
from bot.slack.ids import ActionId, BlockId, CallbackId
from store.queries import get_incident
from tests.conftest import COMMS, LEAD, REPORTER, TECH, Stack, running_stack

CRASH = "Something went wrong"


@pytest.fixture
def db_stack(
    sandbox: SlackSandbox, general: str, playbook: Playbook, stack_db_url: str, clock: FixedClock
) -> Iterator[Stack]:
    """The running bot on SQLite and on PostgreSQL."""
    with running_stack(sandbox, playbook, stack_db_url, clock) as running:
        yield running


def no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    logged = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not logged, [r.getMessage() for r in logged]


def answer(stack: Stack, user: str) -> str:
    """What the user was last told privately (the ack, or a reply through the response URL)."""
    texts = stack.ephemeral_texts(user)
    assert texts, "the user was told nothing"
    return texts[-1]


CONTROL = "Remove the control character"


@pytest.mark.parametrize(
    ("text", "told"),
    [
        ("open complaint sev3 客户卡号6222021234567890123被\x00重复扣款", CONTROL),
        ("open complaint sev3 Fee\x07 charged twice", CONTROL),
        ("update 已退款\x00", CONTROL),
        ("pause 等客户\x1b[31m回电", CONTROL),
        ("resolve done\x00", CONTROL),
        ("satisfaction 4 很好\x00", CONTROL),
        ("satisfaction ²² 很好", "Give the customer's rating from 1 to 5"),
        ("satisfaction 99999999999999999999", "Give the customer's rating from 1 to 5"),
        ("action 加告警\x00 @lee.lead 5d", CONTROL),
        ("action Add an alert @lee.lead 0001-01-01", "is not a due time"),
        ("action Add an alert @lee.lead 9999-12-31", "is not a due time"),
        ("report 0001-01-01", "between 2000-01-01 and 2099-12-31"),
        ("report 2026-11-01 9999-12-31", "between 2000-01-01 and 2099-12-31"),
        ("report 2026-02-30", "is not a date"),
        ("status 99999999999999999999", "takes an incident number"),
        ("status #999999999", "There is no incident #999999999."),
        ("done first\x00response", CONTROL),
        ("solution 已退款\x00", CONTROL),
    ],
)
def test_bad_bytes_in_commands_are_answered_in_words(
    db_stack: Stack, caplog: pytest.LogCaptureFixture, text: str, told: str
) -> None:
    channel = db_stack.open("complaint sev3 Fee charged twice").id
    db_stack.driver.slash(LEAD, channel, "resolve 已退款") if text.startswith("action") else None
    reply = db_stack.driver.slash(LEAD, channel, text)
    assert reply.status == 200
    said = answer(db_stack, LEAD)
    assert told in said and CRASH not in said, said
    no_traceback(caplog)


FORGED = ["99999999999999999999", "2147483648", "²", "1\x00", "-1", "", "0x10", "१२", "1e3"]


@pytest.mark.parametrize(
    "action_id",
    [
        ActionId.MARK_DONE,
        ActionId.SNOOZE,
        ActionId.ACKNOWLEDGE,
        ActionId.APPROVE_NOTICE,
        ActionId.PUBLISH_NOTICE,
        ActionId.EDIT_NOTICE,
        f"{ActionId.TAKE_ROLE}:tech_support",
        f"{ActionId.RATE_CUSTOMER}:5",
        f"{ActionId.RATE_RESPONSE}:5",
        ActionId.CONFIRM_PLAN,
    ],
)
def test_forged_button_values_are_answered_in_words(
    db_stack: Stack, caplog: pytest.LogCaptureFixture, general: str, action_id: str
) -> None:
    suffix = ":5" if action_id.startswith("rate") else ":tech_support" if action_id.startswith("take") else ""
    for forged in FORGED:
        value = forged + suffix
        told = len(db_stack.ephemeral_texts(LEAD))
        reply = db_stack.driver.click(LEAD, general, "1.000001", action_id, value)
        assert reply.status == 200
        said = answer(db_stack, LEAD)
        assert len(db_stack.ephemeral_texts(LEAD)) == told + 1 and "out of date" in said and CRASH not in said, said
    no_traceback(caplog)


def test_a_take_button_naming_a_role_with_a_nul_is_out_of_date(
    db_stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    channel = db_stack.open("complaint sev3 Fee charged twice").id
    db_stack.driver.click(LEAD, channel, "1.000001", f"{ActionId.TAKE_ROLE}:x", "1:tech\x00support")
    said = answer(db_stack, LEAD)
    assert CRASH not in said, said
    no_traceback(caplog)


def test_control_characters_in_the_report_form_are_a_field_error(
    db_stack: Stack, caplog: pytest.LogCaptureFixture, general: str
) -> None:
    db_stack.driver.slash(REPORTER, general, "open")  # opens the form
    (view_id,) = db_stack.sandbox.views
    values = {
        BlockId.KIND: {"value": {"type": "static_select", "selected_option": {"value": "complaint"}}},
        BlockId.TITLE: {"value": {"type": "plain_text_input", "value": "客户卡号6222021234567890123被\x00重复扣款"}},
        BlockId.DESCRIPTION: {"value": {"type": "plain_text_input", "value": "ok"}},
    }
    reply = db_stack.driver.submit_view(REPORTER, view_id, values)
    assert reply.json["response_action"] == "errors"
    assert CONTROL in reply.json["errors"][BlockId.TITLE]
    values[BlockId.TITLE] = {"value": {"type": "plain_text_input", "value": "Fee charged twice"}}
    values[BlockId.DESCRIPTION] = {"value": {"type": "plain_text_input", "value": "详情\x00"}}
    reply = db_stack.driver.submit_view(REPORTER, view_id, values)
    assert CONTROL in reply.json["errors"][BlockId.DESCRIPTION]
    no_traceback(caplog)


def test_control_characters_in_a_notice_edit_are_a_field_error(
    db_stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    channel = db_stack.open("complaint sev3 Fee charged twice").id
    db_stack.join(channel, COMMS)
    db_stack.driver.slash(COMMS, channel, "assign comms me")
    db_stack.driver.slash(COMMS, channel, "notice initial hotline zh-CN")
    preview = db_stack.sandbox.channel_messages(channel)[-1]
    before = set(db_stack.sandbox.views)
    edit = next(e for b in preview.blocks for e in b.get("elements", []) if e.get("action_id") == ActionId.EDIT_NOTICE)
    db_stack.driver.click(COMMS, channel, preview.ts, edit["action_id"], edit["value"])
    (view_id,) = set(db_stack.sandbox.views) - before
    view = db_stack.sandbox.views[view_id]
    assert view["callback_id"] == CallbackId.EDIT_NOTICE
    block = next(b["block_id"] for b in view["blocks"] if b["type"] == "input")
    reply = db_stack.driver.submit_view(
        COMMS, view_id, {block: {"value": {"type": "plain_text_input", "value": "【通知】\x00系统恢复"}}}
    )
    assert CONTROL in reply.json["errors"][block]
    forged = {**view, "private_metadata": "99999999999999999999"}
    db_stack.sandbox.views[view_id] = forged
    reply = db_stack.driver.submit_view(
        COMMS, view_id, {block: {"value": {"type": "plain_text_input", "value": "【通知】系统恢复"}}}
    )
    assert "out of date" in reply.json["errors"][block]
    no_traceback(caplog)


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
def test_the_report_command_line_refuses_days_out_of_range_by_field(
    sqlite_url: str, capsys: pytest.CaptureFixture[str], day: str
) -> None:
    from bot.cli import main

    assert main(["report", "--database", sqlite_url, "--from", "2026-11-01", "--to", day]) == 2
    assert f"--to: '{day}' is out of range; give a day from 2000-01-01 to 2099-12-31" in capsys.readouterr().err


def test_the_report_command_line_refuses_a_reversed_range_and_an_unreachable_store(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    assert main(["report", "--database", sqlite_url, "--from", "2026-11-30", "--to", "2026-11-01"]) == 2
    assert "--to: 2026-11-01 is before --from 2026-11-30; give the later day" in capsys.readouterr().err
    assert main(["report", "--database", "postgresql://nobody@127.0.0.1:1/none"]) == 2
    err = capsys.readouterr().err
    assert "--database: cannot reach the store (OperationalError)" in err and "Traceback" not in err


def test_full_width_letters_and_digits_read_as_typed_on_a_chinese_keyboard(stack: Stack, general: str) -> None:
    stack.driver.slash(REPORTER, general, "ｏｐｅｎ complaint ｓｅｖ２ 客户卡号６２２２０２１２３４５６７８９０被扣款")
    with stack.bot.services.db() as s:
        incident = get_incident(s, 1)
        assert incident is not None and incident.severity == "sev2"
        assert incident.title == "客户卡号6222021234567890被扣款"
    channel = stack.incident_channel(1).id
    stack.driver.slash(LEAD, channel, "sev ３")
    assert stack.texts(channel)[-1] == f":rotating_light: <@{LEAD}> changed the severity from *SEV2* to *SEV3*."


def test_an_owner_mentioned_right_after_chinese_text_is_understood(stack: Stack) -> None:
    channel = stack.open("complaint sev3 手续费重复扣收").id
    stack.driver.slash(LEAD, channel, f"action 核对清算批次的扣款<@{TECH}|tom.tech> ５ｄ")
    assert "核对清算批次的扣款" in stack.texts(channel)[-1] and f"<@{TECH}>" in stack.texts(channel)[-1]
