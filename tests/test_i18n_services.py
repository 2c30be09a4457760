"""The services speak the staff's language, and say each thing one way.

zh-CN: real flows (the clock's reminders and pages, a refusal, the notice approval, the review draft) run in
Chinese, and what people see is Chinese. The drift the issue named is gone: severities read `SEV3` everywhere
(the review's timeline too), the bot has one name, masked digits are not shown as `\\*\\*\\*\\*7890`, plurals are
grammatical (`2 participants`, `sent to 1 recipient`, not `participant(s)`), and the status page's delivery line
says something (`published at /status`, not `Status page: on the status page`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from bot.core.errors import BotError, ConflictError, PermissionDeniedError
from bot.core.i18n import use_locale
from bot.sandbox.driver import click_button
from tests.conftest import ADMIN, COMMS, LEAD, LEGAL, ROOT, TECH, Stack
from tests.test_deadlines import LEADERSHIP_AND_COMMS, button

# Where the playbook names its default language (`locale:`), the Chinese tests use a zh-CN playbook too, so the
# entry points that set the language from it speak Chinese as well; `use_locale` covers the calls made here.
SHIPPED_LOCALE = "locale: zh-CN"
ZH_PLAYBOOK = {SHIPPED_LOCALE: SHIPPED_LOCALE} if SHIPPED_LOCALE in (ROOT / "config.yaml").read_text() else {}


@contextmanager
def chinese() -> Iterator[None]:
    with use_locale("zh-CN"):
        yield


def review_markdown(stack: Stack, number: int = 1) -> str:
    return stack.bot.services.review.review_markdown(number)


# ---- zh-CN ------------------------------------------------------------------------------------------------


@pytest.mark.playbook({**LEADERSHIP_AND_COMMS, **ZH_PLAYBOOK})
def test_reminders_and_pages_go_out_in_chinese(stack: Stack) -> None:
    for reader in (COMMS, TECH):  # a DM speaks its recipient's language (bot.core.i18n): these two read Chinese
        stack.sandbox.set_user_locale(reader, "zh-CN")
    channel = stack.open("complaint sev3 cat:technical 客户卡号6222021234567890123被重复扣款").id
    with chinese():
        stack.advance(hours=12)  # half the first-response time: the owner is reminded
        (reminder,) = stack.sandbox.dm_messages(COMMS)
        assert button(reminder, "延后提醒 1小时0分钟")
        assert "12小时0分钟" in stack.texts(channel)[-1]
        assert "6222021234567890123" not in reminder.text

        stack.advance(hours=36)  # 48 h: the investigation is missed and its owner paged
        page = stack.sandbox.dm_messages(TECH)[-1]
        assert "完成调查 已逾期" in page.text  # the deadline by its playbook name in Chinese (names: {zh-CN: ...})
        assert "15分钟" in page.text  # the level's acknowledgement timeout, in Chinese units
        assert "*负责人*" in page.text and "*事件组长*" in page.text  # the levels' names: {zh-CN: ...}
        assert "Owner" not in page.text and "Team lead" not in page.text
        assert "Investigation finished missed" not in page.text


@pytest.mark.playbook(ZH_PLAYBOOK)
def test_a_refusal_from_the_clock_is_in_chinese(stack: Stack) -> None:
    channel = stack.open("complaint sev3 客户卡号6222021234567890123被重复扣款").id
    with chinese(), pytest.raises(ConflictError) as refused:
        stack.bot.services.deadline_actions.acknowledge(actor=LEAD, channel_id=channel)
    assert refused.value.message == "事件 #1 目前没有进行中的升级呼叫。"
    with chinese(), pytest.raises(BotError) as refused:
        stack.bot.services.deadline_actions.mark_done(actor=LEAD, channel_id=channel, word="nothing_like_it")
    assert refused.value.message.startswith("事件 #1 中没有名为 `nothing_like_it` 的待完成截止事项。待完成：")


@pytest.mark.playbook(ZH_PLAYBOOK)
def test_the_notice_approval_speaks_chinese_and_names_the_severity_as_sev2(stack: Stack) -> None:
    channel = stack.open("outage sev2 转账延迟，客户卡号6222021234567890123").id
    stack.driver.slash(LEAD, channel, f"assign pr <@{LEGAL}>")
    stack.driver.slash(LEGAL, channel, "notice initial status_page")
    notices = stack.bot.services.notices
    with chinese(), pytest.raises(PermissionDeniedError) as refused:
        notices.approve(notice_id=1, actor=LEGAL)  # the drafter may not approve their own notice
    assert refused.value.message == f"该通知由您起草，须由他人审批：公关（<@{LEGAL}>）或预案管理员。"
    with chinese(), pytest.raises(PermissionDeniedError) as refused:
        notices.publish(notice_id=1, actor=LEAD)
    assert refused.value.message == (f"事件 #1 为 SEV2：其客户通知须经 公关（<@{LEGAL}>）或预案管理员审批后方可发布。")
    with chinese():
        notices.approve(notice_id=1, actor=ADMIN)
        notices.publish(notice_id=1, actor=LEAD)
    told = stack.texts(channel)[-1]
    assert told.startswith(f":loudspeaker: <@{LEAD}> 发布了 *首次通知* 客户通知：")
    assert ":white_check_mark: 服务状态页：已发布到 /status" in told


@pytest.mark.playbook(ZH_PLAYBOOK)
def test_the_review_draft_values_are_in_chinese(stack: Stack) -> None:
    channel = stack.open("complaint sev3 客户卡号6222021234567890123被重复扣款").id
    stack.driver.slash(LEAD, channel, "sev 2")
    stack.advance(hours=13)
    stack.driver.slash(LEAD, channel, "resolve 已退款")
    with chinese():
        markdown = review_markdown(stack)
    assert "13小时0分钟" in markdown  # the time to resolve
    assert f"| 完成调查 | <@{TECH}> |" in markdown and "| 已完成，提前 1天11小时 |" in markdown
    assert "| 待完成 |" in markdown  # a deadline still open, by its state's name
    assert f"<@{LEAD}> 严重级别变更: SEV3 → SEV2" in markdown
    assert "incident-desk 创建频道: inc-" in markdown
    assert "尚未记录" in markdown and "暂无评分" in markdown  # the customer's and the team's ratings
    assert "6222021234567890123" not in markdown


# ---- the drift, in English --------------------------------------------------------------------------------


def test_the_review_shows_masked_digits_as_code_not_backslashes(stack: Stack) -> None:
    """Bank staff glue numbers to characters; the draft shows each masked number once, readable as it is."""
    channel = stack.open("complaint sev3 客户卡号6222021234567890123被重复扣款，电话13812345678").id
    stack.driver.slash(LEAD, channel, "resolve 已退款")
    markdown = review_markdown(stack)
    assert "# Post-incident review: #1 客户卡号`****0123`被重复扣款，电话`138****5678`" in markdown
    assert "\\*" not in markdown
    assert "6222021234567890123" not in markdown and "13812345678" not in markdown


def test_the_review_timeline_names_severities_and_the_bot_one_way(stack: Stack) -> None:
    channel = stack.open("complaint sev3 Card payments failing").id
    stack.driver.slash(LEAD, channel, "sev 2")
    stack.driver.slash(LEAD, channel, "resolve Fixed")
    markdown = review_markdown(stack)
    assert "**SEV2 Customer complaint**" in markdown
    assert f"<@{LEAD}> severity changed: SEV3 → SEV2" in markdown
    timeline = markdown.split("## Timeline")[1].split("## Action items")[0]
    assert "incident-desk channel created: inc-" in timeline  # the bot's own entries carry its name
    assert " bot " not in timeline


def test_counts_in_the_review_and_the_notice_outcome_use_real_plurals(stack: Stack) -> None:
    channel = stack.open("complaint sev3 Card payments failing").id
    stack.driver.slash(LEAD, channel, f"assign tech <@{TECH}>")
    stack.driver.slash(LEAD, channel, "resolve Fixed")
    for user, score in ((LEAD, 4), (TECH, 5)):
        dm = next(m for m in reversed(stack.sandbox.dm_messages(user)) if "How well did the response go" in m.text)
        click_button(stack.driver, user, dm.channel, dm.ts, str(score))
    markdown = review_markdown(stack)
    assert "- The team's rating of the response: 4.5/5 from 2 participants\n" in markdown
    assert "participant(s)" not in markdown
