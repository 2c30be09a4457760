"""The language follows the reader: the channel speaks the playbook's `locale`, each person's replies, refusals
and DMs speak the language they chose in Slack (`users.info` with `include_locale`)."""

from __future__ import annotations

import re
import time

import pytest

from bot.core.config import Playbook
from bot.core.i18n import use_locale
from bot.core.render import Renderer
from tests.conftest import LEAD, SHIPPED_LOCALE, TECH, Stack

CJK = re.compile(r"[\u4e00-\u9fff]")
CHINESE_PLAYBOOK = pytest.mark.playbook({SHIPPED_LOCALE: SHIPPED_LOCALE})  # the shipped zh-CN, not the tests' en


def ephemerals(stack: Stack, user: str) -> list[str]:
    return stack.ephemeral_texts(user)


@CHINESE_PLAYBOOK
def test_a_chinese_playbook_speaks_chinese_in_the_channel_and_english_to_an_english_reader(
    stack: Stack, playbook: Playbook
) -> None:
    assert playbook.locale == "zh-CN"
    stack.sandbox.set_user_locale(TECH, "zh-CN")  # LEAD keeps the fixture's en-US
    channel = stack.open("complaint sev2 客户卡号6222021234567890123被重复扣款", user=LEAD)

    # The channel: the topic, the plan and the announcements are Chinese, whoever typed the command.
    assert channel.topic == "SEV2 客户投诉 | 客户卡号****0123被重复扣款 | 状态：已报告"
    assert any(t.startswith("*本投诉的处理流程*（预案 ") for t in stack.texts(channel.id))
    stack.driver.slash(LEAD, channel.id, "sev 1")
    assert stack.texts(channel.id)[-1] == f":rotating_light: <@{LEAD}> 将级别从 *SEV2* 调整为 *SEV1*。"

    # The lead reads Slack in English: the reply to the open, help and the deadlines are English.
    opened = next(t for t in ephemerals(stack, LEAD) if t.startswith(":rotating_light:"))
    assert opened.startswith(":rotating_light: Opened incident *#1* in <#")
    assert stack.driver.slash(LEAD, channel.id, "help").text.startswith("*incident-desk commands*\n")
    listing = stack.driver.slash(LEAD, channel.id, "deadlines").text
    assert listing.startswith("*Deadlines of #1*\n") and "UTC+8" in listing and not CJK.search(listing)
    # ...and so is a refusal (a mistake: a command the bot does not know).
    refusal = stack.driver.slash(LEAD, channel.id, "frobnicate").text
    assert refusal and not CJK.search(refusal)

    # Tech support reads Slack in Chinese: the same deadlines, in Chinese, in Beijing time.
    chinese = stack.driver.slash(TECH, channel.id, "deadlines").text
    assert chinese.startswith("*#1 的时限*\n") and "北京时间 到期" in chinese


def test_an_english_playbook_speaks_english_in_the_channel_and_chinese_to_a_chinese_reader(
    stack: Stack, playbook: Playbook
) -> None:
    assert playbook.locale == "en"
    stack.sandbox.set_user_locale(LEAD, "zh-CN")
    channel = stack.open("complaint sev2 Card payments failing", user=LEAD)

    assert channel.topic == "SEV2 Customer complaint | Card payments failing | Status: reported"
    assert any(t.startswith("*How we handle this complaint* (playbook ") for t in stack.texts(channel.id))
    stack.driver.slash(LEAD, channel.id, "sev 1")
    assert stack.texts(channel.id)[-1] == f":rotating_light: <@{LEAD}> changed the severity from *SEV2* to *SEV1*."

    opened = next(t for t in ephemerals(stack, LEAD) if t.startswith(":rotating_light:"))
    assert opened.startswith(":rotating_light: 已在 <#") and opened.endswith("您已被邀请；那里的卡片列出了各角色。")
    assert stack.driver.slash(LEAD, channel.id, "help").text.startswith("*incident-desk 命令*\n")
    assert stack.driver.slash(LEAD, channel.id, "deadlines").text.startswith("*#1 的时限*\n")
    # Someone whose Slack speaks neither language reads the playbook's.
    stack.sandbox.set_user_locale(TECH, "ja-JP")
    assert stack.driver.slash(TECH, channel.id, "deadlines").text.startswith("*Deadlines of #1*\n")


def test_a_users_locale_is_looked_up_once_and_remembered(stack: Stack) -> None:
    channel = stack.open()
    for _ in range(3):
        stack.driver.slash(LEAD, channel.id, "list")
    asked = [a for a in stack.sandbox.calls_to("users.info") if a.get("user") == LEAD and a.get("include_locale")]
    assert len(asked) == 1


def test_times_carry_an_unambiguous_zone_never_cst() -> None:
    from datetime import UTC, datetime

    when = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    shanghai, kolkata = Renderer("Asia/Shanghai"), Renderer("Asia/Kolkata")
    assert shanghai.local_time(when) == "2026-11-24 10:00 UTC+8"
    assert kolkata.local_time(when) == "2026-11-24 07:30 UTC+5:30"
    assert Renderer("America/Chicago").local_time(when) == "2026-11-23 20:00 UTC-6"
    with use_locale("zh-CN"):
        assert shanghai.local_time(when) == "2026-11-24 10:00 北京时间"
        assert kolkata.local_time(when) == "2026-11-24 07:30 UTC+5:30"


def test_values_in_translated_sentences_are_masked_and_escaped_as_anywhere() -> None:
    """A translated sentence keeps the renderer's guarantees: each value placed into it is masked and
    escaped for its output (mrkdwn, Markdown), in either language; mentions made by a filter stay mentions."""
    renderer = Renderer("Asia/Shanghai")
    text = "<!channel> *urgent* 客户卡号6222021234567890123"
    for locale, said in (("en", "resolved the incident"), ("zh-CN", "已解决此事件")):
        with use_locale(locale):
            slack = renderer.render("slack/announce.j2", event="resolved", actor="ULEAD000001", text=text)
        assert slack.startswith(":white_check_mark: <@ULEAD000001> ") and said in slack
        assert "&lt;!channel&gt;" in slack and "<!channel>" not in slack and "****0123" in slack
    with use_locale("zh-CN"):
        review = renderer.render_markdown(
            "review/draft.md.j2",
            **{**REVIEW, "title": "Card *6222021234567890123*"},
        )
    # a mask shows as a code span (its stars read as stars); a star of the title next to it joins the span
    assert review.startswith("# 事件回顾：#7 Card `*****0123`\\*\n")


REVIEW = {
    "number": 7,
    "title": "",
    "severity": "SEV2",
    "kind": "客户投诉",
    "category": "—",
    "playbook_version": "v1",
    "opened": "—",
    "resolved": "—",
    "time_to_resolve": "—",
    "summary": "—",
    "description": "",
    "roles": [],
    "deadlines": [],
    "escalations": [],
    "notices": [],
    "customer_rating": "—",
    "customer_comment": "",
    "internal_rating": "—",
    "timeline": [],
    "actions": [],
}


def test_the_playbook_speaks_zh_cn_or_en_only() -> None:
    from bot.core.config import ConfigError, load_playbook_text
    from tests.conftest import playbook_text

    with pytest.raises(ConfigError) as exc:
        load_playbook_text(playbook_text(**{SHIPPED_LOCALE: "locale: fr"}))
    assert any("'fr' is not a language the bot speaks; use zh-CN or en" in p for p in exc.value.problems)


def test_the_command_line_takes_a_language_for_the_demo_and_the_report() -> None:
    from bot.cli import build_parser

    assert build_parser().parse_args(["run", "--offline", "--lang", "en"]).lang == "en"
    assert build_parser().parse_args(["report", "--lang", "zh-CN"]).lang == "zh-CN"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--offline", "--lang", "fr"])


@CHINESE_PLAYBOOK
def test_a_slow_users_info_never_holds_up_the_ack_and_the_reader_gets_the_playbooks_language(stack: Stack) -> None:
    """The reader's locale is looked up before the ack: one attempt, awaited at most a moment. While Slack sits
    on `users.info`, the answer comes at once in the playbook's language; once Slack answers, in the reader's."""
    general = stack.sandbox.channel_by_name("general")
    assert general is not None
    held = stack.sandbox.hold("users.info")
    reply = stack.driver.slash(TECH, general.id, "help")  # TECH reads Slack in English (the fixture's en-US)
    assert reply.status == 200 and reply.seconds < 2.0
    assert reply.text.startswith("*incident-desk 命令*")  # the playbook's zh-CN, not a wait for Slack
    assert held.reached.is_set()
    held.release()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the lookup still lands and serves the next request
        answer = stack.driver.slash(TECH, general.id, "help").text
        if answer.startswith("*incident-desk commands*"):
            break
    assert answer.startswith("*incident-desk commands*")


@CHINESE_PLAYBOOK
def test_roles_and_deadlines_are_named_in_the_readers_language(stack: Stack, playbook: Playbook) -> None:
    """The playbook names roles and deadlines per language (`names: {zh-CN: ...}`): a Chinese reader never reads
    `Tech support` or `Investigation finished` in the middle of a Chinese sentence; an English one still does."""
    assert playbook.roles["tech_support"].name_in("zh-CN") == "技术支持"
    assert playbook.role_for("技术支持") == "tech_support"  # the Chinese name is understood when typed, too
    stack.sandbox.set_user_locale(TECH, "zh-CN")  # LEAD keeps the fixture's en-US
    channel = stack.open("complaint sev3 客户卡号6222021234567890123被重复扣款", user=LEAD)

    chinese = stack.driver.slash(TECH, channel.id, "deadlines").text
    assert f"*完成调查*（`investigation`）— <@{TECH}>（技术支持）— 11-26 10:00 北京时间 到期" in chinese
    assert "*首次回复客户*（`first_response`）" in chinese and "（客户沟通）" in chinese
    assert "Investigation finished" not in chinese and "Tech support" not in chinese
    english = stack.driver.slash(LEAD, channel.id, "deadlines").text
    assert f"*Investigation finished* (`investigation`) — <@{TECH}> (Tech support) — due 11-26 10:00 UTC+8" in english
    assert not CJK.search(english)

    timeline = stack.driver.slash(TECH, channel.id, "timeline").text
    assert "设定截止事项：完成调查" in timeline and "Investigation finished" not in timeline
    assert "Set deadline" not in timeline
    assert "deadline set: Investigation finished" in stack.driver.slash(LEAD, channel.id, "timeline").text

    # the channel hears the playbook's language, whoever assigns (LEAD reads English)
    stack.driver.slash(LEAD, channel.id, f"assign legal <@{TECH}|tom.tech>")
    assert stack.texts(channel.id)[-1] == f":bust_in_silhouette: <@{LEAD}> 指派 <@{TECH}> 担任 *法律合规*。"
    assert f"指派 <@{TECH}> 担任 *法律合规*" in stack.driver.slash(TECH, channel.id, "timeline").text

    # the help names what to type and what it is called: `tech_support (技术支持)`
    assert "tech_support (技术支持)" in stack.driver.slash(TECH, channel.id, "help").text
    assert "complaint (客户投诉)" in stack.driver.slash(TECH, channel.id, "help").text
    assert "tech_support (Tech support)" in stack.driver.slash(LEAD, channel.id, "help").text


@CHINESE_PLAYBOOK
def test_a_chinese_reader_sees_the_kind_by_its_name_not_its_key(stack: Stack) -> None:
    """`complaint` is what staff type; a Chinese reader reads 客户投诉 in the open's ack and the incident list."""
    stack.sandbox.set_user_locale(TECH, "zh-CN")
    general = stack.sandbox.channel_by_name("general")
    assert general is not None
    ack = stack.driver.slash(TECH, general.id, "open complaint sev2 客户卡号6222021234567890123被重复扣款")
    assert ack.text == "正在创建新的客户投诉事件…"
    listing = stack.driver.slash(TECH, general.id, "list").text
    assert "SEV2 客户投诉" in listing and " complaint " not in listing
    assert stack.driver.slash(LEAD, general.id, "list").text.count("SEV2 complaint") == 1  # LEAD reads English


@CHINESE_PLAYBOOK
def test_the_review_draft_names_deadlines_and_roles_from_the_playbook_in_chinese(stack: Stack) -> None:
    """The record keeps `Investigation finished`; the Chinese review draft's timeline says 完成调查 and 法律合规."""
    channel = stack.open("complaint sev3 客户卡号6222021234567890123被重复扣款", user=LEAD)
    stack.driver.slash(LEAD, channel.id, f"assign legal <@{TECH}|tom.tech>")
    with use_locale("zh-CN"):
        markdown = stack.bot.services.review.review_markdown(1)
    timeline = markdown.partition("## 时间线")[2]
    assert "完成调查" in timeline and "法律合规" in timeline
    assert "Investigation finished" not in timeline and "Legal & compliance" not in timeline
    assert "6222021234567890123" not in markdown
