"""Whose language: the channel speaks the playbook's whatever the actor reads, and a DM speaks its recipient's
whatever the sender reads (bot.core.i18n). Each step here is one that used to leak the actor's language."""

from __future__ import annotations

import re

from bot.sandbox.driver import click_button
from tests.conftest import COMMS, LEAD, LEGAL, TECH, Stack
from tests.test_language import CHINESE_PLAYBOOK

CJK = re.compile(r"[\u4e00-\u9fff]")


@CHINESE_PLAYBOOK
def test_an_english_readers_actions_speak_chinese_in_a_chinese_channel(stack: Stack) -> None:
    """Every actor here reads Slack in English (the fixture's en-US); the shipped playbook is zh-CN."""
    channel = stack.open("complaint sev3 客户卡号6222021234567890123被重复扣款", user=LEAD).id
    stack.driver.slash(LEAD, channel, f"assign comms <@{COMMS}>")
    stack.driver.slash(LEAD, channel, "pause 等待银联回复")
    stack.driver.slash(LEAD, channel, "resume")
    assert stack.texts(channel)[-1] == (
        f":arrow_forward: <@{LEAD}> 在暂停 0分钟 后恢复计时；所有未完成的时限顺延相同时间。"
    )

    stack.driver.slash(LEAD, channel, "resolve 已为客户退款")
    prompt = stack.sandbox.channel_messages(channel)[-1]
    assert prompt.text.startswith("客户沟通专员完成满意度回访后，请记录客户对事件 #1 的评分")
    click_button(stack.driver, COMMS, channel, prompt.ts, "4")
    assert stack.texts(channel)[-1] == f":star: <@{COMMS}> 记录了客户满意度：*4/5*"

    stack.driver.slash(LEAD, channel, f"action 清算任务重试告警 <@{TECH}> 2d")
    assert stack.texts(channel)[-1] == (
        f":pushpin: <@{LEAD}> 为 <@{TECH}> 添加了改进事项 `action-1`，"
        "截止时间 2026-11-26 10:00 北京时间：清算任务重试告警"
    )

    stack.driver.slash(LEAD, channel, "review export")
    assert stack.texts(channel)[-1] == f"<@{LEAD}> 导出了事件 #1 的复盘草稿。"
    stack.driver.slash(LEAD, channel, "review done")
    assert stack.texts(channel)[-1] == (
        f":memo: <@{LEAD}> 已将事件 #1 的复盘标记为完成，接下来可以执行 `/incident close`。"
    )
    # ...while what the lead alone reads stays English.
    stack.driver.slash(LEAD, channel, "review done")
    assert stack.ephemeral_texts(LEAD)[-1] == "The review of #1 is already complete."


@CHINESE_PLAYBOOK
def test_rating_dms_speak_each_recipients_language_not_the_resolvers(stack: Stack) -> None:
    stack.sandbox.set_user_locale(TECH, "zh-CN")  # LEAD and LEGAL read Slack in English
    channel = stack.open("complaint sev3 客户卡号6222021234567890123被重复扣款", user=TECH).id
    stack.driver.slash(TECH, channel, f"assign lead <@{LEAD}>")
    stack.driver.slash(LEAD, channel, f"assign tech <@{TECH}>")
    stack.driver.slash(LEAD, channel, f"assign legal <@{LEGAL}>")
    stack.driver.slash(LEAD, channel, "resolve 已为客户退款")  # an English reader resolves
    assert stack.dm_texts(TECH)[-1].startswith("事件 #1 已解决。您如何评价本次处置？")
    assert stack.dm_texts(LEGAL)[-1].startswith("#1 is resolved. How well did the response go")
    assert stack.dm_texts(LEAD)[-1].startswith("#1 is resolved. How well did the response go")


@CHINESE_PLAYBOOK
def test_a_chinese_resolver_sends_an_english_reader_his_rating_dm_in_english(stack: Stack) -> None:
    stack.sandbox.set_user_locale(LEAD, "zh-CN")
    channel = stack.open("complaint sev3 客户卡号6222021234567890123被重复扣款", user=LEAD).id
    stack.driver.slash(LEAD, channel, f"assign legal <@{LEGAL}>")
    stack.driver.slash(LEAD, channel, "resolve 已为客户退款")
    assert stack.dm_texts(LEGAL)[-1].startswith("#1 is resolved. How well did the response go")
    assert stack.dm_texts(LEAD)[-1].startswith("事件 #1 已解决。")
