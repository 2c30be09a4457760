"""The incidents package speaks the staff's language: a refusal in the reader's, channel messages in the
playbook's, whatever language the request that caused them was in."""

from __future__ import annotations

import pytest

from bot.core.errors import NotFoundError, PermissionDeniedError
from bot.core.i18n import use_locale
from tests.conftest import LEAD, OUTSIDER, REPORTER, TECH, Stack

GLUED = "客户卡号6222021234567890123被重复扣款"  # as bank staff type it: the card number glued to the characters


def test_a_refusal_is_in_the_readers_language_and_names_who_can(stack: Stack) -> None:
    channel = stack.open(f"complaint sev2 {GLUED}")
    incidents = stack.bot.services.incidents

    with use_locale("zh-CN"), pytest.raises(PermissionDeniedError) as refused:
        incidents.resolve(channel_id=channel.id, summary="已退款", actor=OUTSIDER)

    assert str(refused.value) == (
        f"只有组长（<@{LEAD}>）、角色负责人（<@{TECH}>）或预案管理员可以标记已解决 #1。"
        " 请联系他们之一，或用 `/incident assign <角色> me` 认领一个空缺角色。"
    )
    assert "6222021234567890123" not in str(refused.value)
    with use_locale("en"), pytest.raises(PermissionDeniedError) as refused:
        incidents.resolve(channel_id=channel.id, summary="refunded", actor=OUTSIDER)
    assert str(refused.value).startswith(f"Only the lead (<@{LEAD}>), role owners (<@{TECH}>) or a playbook admin")


def test_a_refusal_for_a_channel_that_is_no_incident_is_in_the_readers_language(stack: Stack) -> None:
    general = stack.sandbox.channel_by_name("general")
    assert general is not None
    with use_locale("zh-CN"), pytest.raises(NotFoundError) as refused:
        stack.bot.services.incidents.pause(channel_id=general.id, reason=GLUED, actor=REPORTER)
    assert str(refused.value).startswith("这不是事件频道。请在事件的频道中运行命令")


@pytest.mark.playbook(
    {
        "locale: en": "locale: zh-CN",
        "aliases: [legal, compliance, 法律合规]\n    default_owners: []": (
            "aliases: [legal, compliance, 法律合规]\n    default_owners: [ULEFTCOMPANY]"
        ),
    }
)
def test_channel_messages_are_in_the_playbooks_language_whoever_asked(stack: Stack) -> None:
    channel = stack.open(f"complaint sev2 {GLUED}")

    assert stack.texts(channel.id)[-1] == (
        ":warning: 无法邀请 <@ULEFTCOMPANY> (`user_not_found`)。请检查预案中的默认负责人，或手动邀请他们。"
    )
    with use_locale("en"):  # an English-speaking reader: the reply is theirs, the channel's words are not
        told = stack.bot.services.incidents.repair(channel_id=channel.id, number=None, actor=LEAD)
    assert told == f"#1 is fully set up in <#{channel.id}>; card and topic refreshed."
    assert all("6222021234567890123" not in text for text in stack.texts(channel.id))
