"""Whose language: the channel speaks the playbook's whatever the actor reads, and a DM speaks its recipient's
whatever the sender reads (bot.core.i18n). Each step here is one that used to leak the actor's language."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path

from bot.sandbox.driver import click_button
from tests.conftest import COMMS, LEAD, LEGAL, TECH, Stack, WebhookReceiver
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


# ---- the audit: a channel post in a reader-scoped service is worded inside in_channel_language ----------------

AUDITED = (
    "bot/review/service.py",
    "bot/incidents/*.py",
    "bot/deadlines/owner_actions.py",
    "bot/notices/service.py",
    "bot/plan/*.py",
)
# Code that runs in the playbook's language already: the outbox's effects (Outbox.run speaks it, and ChannelSetup
# registers each of its handlers in it).
CHANNEL_SCOPED = ("ChannelSetup", "_fx_")
POSTS = {"try_post", "post_or_log", "_announce", "announce", "upload"}  # + slack.post, and outbox rows of "post"
WORDING = {
    "_",
    "ngettext",
    "humanize",
    "local_time",
    "state_label",
    "event_label",
    "render",
    "render_markdown",
    "review_footer",
    "rating_blocks",
    "document_blocks",
    "_outcome_text",
    "_preview_title",
    "_final_summary",
    "_status_line",
    "_preview",
}


def _name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _is_post(call: ast.Call) -> bool:
    name = _name(call)
    if name in POSTS:
        return True
    if name == "post" and isinstance(call.func, ast.Attribute) and ast.unparse(call.func.value).endswith("slack"):
        return True
    texts = [a for a in call.args if isinstance(a, ast.Constant)]
    return name in ("add", "queue") and any(a.value == "post" for a in texts)


def _is_dm(call: ast.Call) -> bool:
    texts = [a for a in call.args if isinstance(a, ast.Constant)]
    if _name(call) == "Send":  # the scheduler's message to a person (`user=`), sent after its sweep commits
        return any(k.arg == "user" for k in call.keywords)
    return _name(call) == "dm" or (_name(call) in ("add", "queue") and any(a.value == "dm" for a in texts))


def _inside(scope: tuple[str, ...], node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.With) and any(
            isinstance(c, ast.Call) and _name(c) in scope for item in node.items for c in ast.walk(item.context_expr)
        ):
            return True
    return False


def channel_posts_worded_in_the_readers_language(source: str) -> list[str]:
    """`function: post call` for each channel post whose words (its arguments, or the assignments of the names
    it is given) are translated outside `in_channel_language`."""
    return _worded_outside(source, _is_post, "in_channel_language", exempt=True)


def dms_worded_in_someone_elses_language(source: str) -> list[str]:
    """The same for each DM: its words are translated inside `in_recipients_language` (whoever sends it)."""
    return _worded_outside(source, _is_dm, "in_recipients_language", "_to", exempt=False)  # _to: the sweep's


def _worded_outside(source: str, sends: Callable[[ast.Call], bool], *scope: str, exempt: bool) -> list[str]:
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []
    for function in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        owners, node = [function.name], function
        while node in parents:
            node = parents[node]
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                owners.append(node.name)
        if exempt and any(o == CHANNEL_SCOPED[0] or o.startswith(CHANNEL_SCOPED[1]) for o in owners):
            continue
        assigned: dict[str, list[ast.AST]] = {}
        for node in ast.walk(function):
            if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for name in (t.id for t in ast.walk(target) if isinstance(t, ast.Name)):
                        assigned.setdefault(name, []).append(node.value)
        for call in (n for n in ast.walk(function) if isinstance(n, ast.Call) and sends(n)):
            words: list[ast.AST] = [*call.args, *(k.value for k in call.keywords)]
            words += [
                v for w in list(words) for n in ast.walk(w) if isinstance(n, ast.Name) for v in assigned.get(n.id, [])
            ]
            worded = [n for w in words for n in ast.walk(w) if isinstance(n, ast.Call) and _name(n) in WORDING]
            if any(not _inside(scope, n, parents) for n in worded):
                found.append(f"{function.name}: {ast.unparse(call)[:80]}")
    return found


def test_every_channel_post_of_a_reader_scoped_service_is_worded_in_the_channels_language() -> None:
    root = Path(__file__).resolve().parents[1]
    files = sorted({p for pattern in AUDITED for p in root.glob(pattern)})
    assert len(files) >= 8
    offenders = {
        str(p.relative_to(root)): found
        for p in files
        if (found := channel_posts_worded_in_the_readers_language(p.read_text(encoding="utf-8")))
    }
    assert offenders == {}


def test_every_dm_is_worded_in_its_recipients_language() -> None:
    root = Path(__file__).resolve().parents[1]
    files = sorted({p for pattern in (*AUDITED, "bot/deadlines/scheduler.py") for p in root.glob(pattern)})
    offenders = {
        str(p.relative_to(root)): found
        for p in files
        if (found := dms_worded_in_someone_elses_language(p.read_text(encoding="utf-8")))
    }
    assert offenders == {}
    leaky = "def rate(self, user):\n    self.slack.dm(user, _('How did it go?'))\n"
    assert dms_worded_in_someone_elses_language(leaky) == ["rate: self.slack.dm(user, _('How did it go?'))"]


def test_the_audit_finds_a_channel_post_worded_in_the_readers_language() -> None:
    leaky = (
        "def done(self, channel):\n"
        "    said = _('marked it done')\n"
        "    self.incidents.try_post(channel, said)\n"
        "def shown(self, channel):\n"
        "    with in_channel_language(self.playbook):\n"
        "        said = _('marked it done')\n"
        "    self.incidents.try_post(channel, said)\n"
        "    self.outbox.add(s, 1, 'k', 'post', text=_('at once'))\n"
    )
    assert channel_posts_worded_in_the_readers_language(leaky) == [
        "done: self.incidents.try_post(channel, said)",
        "shown: self.outbox.add(s, 1, 'k', 'post', text=_('at once'))",
    ]


@CHINESE_PLAYBOOK
def test_the_timeline_speaks_its_readers_language_every_event_and_state(stack: Stack) -> None:
    stack.sandbox.set_user_locale(TECH, "zh-CN")
    channel = stack.open("complaint sev3 客户卡号6222021234567890123被重复扣款", user=LEAD).id
    stack.driver.slash(LEAD, channel, f"assign comms <@{COMMS}>")
    stack.driver.slash(COMMS, channel, "notice initial hotline")
    stack.driver.slash(LEAD, channel, "resolve 已为客户退款")
    stack.driver.slash(LEAD, channel, f"action 清算任务重试告警 <@{TECH}> 2d")
    timeline = stack.driver.slash(TECH, channel, "timeline").text
    lines = timeline.split("\n")[1:]
    for said in (
        "设置频道主题",
        "邀请成员",
        "发布事件卡片",
        "发布处置预案",
        "状态 已报告 → 处理中",
        "起草客户通知：首次通知",
        "添加改进事项：清算任务重试告警",
    ):
        assert any(line.endswith(f" — {said}") for line in lines), said
    assert any(" — 设定截止事项：" in line for line in lines)
    assert any(" — 创建了事件（SEV3 " in line for line in lines)  # the kind's own name is the playbook's
    for english in ("deadline set", "topic set", "members invited", "card posted", "investigating", "initial"):
        assert english not in timeline
    # The same record, to an English reader.
    english_timeline = stack.driver.slash(LEAD, channel, "timeline").text
    assert "status reported → investigating" in english_timeline and "— topic set" in english_timeline
    assert "— notice drafted: initial" in english_timeline and "— opened it (SEV3 " in english_timeline


@CHINESE_PLAYBOOK
def test_the_chinese_review_draft_names_notice_stages_and_channels_in_chinese(
    stack: Stack, hotline: WebhookReceiver
) -> None:
    channel = stack.open("complaint sev3 客户卡号6222021234567890123被重复扣款", user=LEAD).id
    stack.driver.slash(LEAD, channel, f"assign comms <@{COMMS}>")
    stack.driver.slash(COMMS, channel, "notice initial hotline")
    preview = stack.sandbox.channel_messages(channel)[-1]
    click_button(stack.driver, COMMS, channel, preview.ts, "发布")
    assert stack.texts(channel)[-1].startswith(f":loudspeaker: <@{COMMS}> 发布了 *首次通知* 客户通知：")
    stack.driver.slash(LEAD, channel, "resolve 已为客户退款")
    stack.driver.slash(LEAD, channel, "review post")
    draft = next(
        m for m in reversed(stack.sandbox.channel_messages(channel)) if m.blocks and m.blocks[0]["type"] == "markdown"
    )
    assert len(hotline.to("/hotline")) == 1
    assert "- 首次通知 于 2026-11-24 10:00 北京时间 发布至 客服热线\n" in draft.blocks[0]["text"]


@CHINESE_PLAYBOOK
def test_the_sweeps_reminders_and_pages_speak_each_recipients_language(stack: Stack) -> None:
    """The scheduler runs in the playbook's language; its DMs are each recipient's, its channel posts Chinese."""
    stack.sandbox.set_user_locale(TECH, "zh-CN")  # COMMS and LEAD read Slack in English
    channel = stack.open("complaint sev3 客户卡号6222021234567890123被重复扣款", user=LEAD).id
    stack.driver.slash(LEAD, channel, f"assign comms <@{COMMS}>")
    stack.driver.slash(LEAD, channel, f"assign tech <@{TECH}>")
    stack.advance(hours=24)  # every first deadline fell due: reminded, then missed and paged
    assert any(t.startswith(":alarm_clock: Reminder: ") for t in stack.dm_texts(COMMS))
    assert any(t.startswith(":alarm_clock: 提醒：") for t in stack.dm_texts(TECH))
    assert not any(t.startswith(":alarm_clock: 提醒：") for t in stack.dm_texts(COMMS))
    pages = [t for t in stack.dm_texts(COMMS) + stack.dm_texts(LEAD) if t.startswith(":rotating_light:")]
    assert pages and all(t.startswith(":rotating_light: *Page for #1*") and "You are paged as" in t for t in pages)
    assert all(CJK.search(t) for t in stack.texts(channel)[-3:])  # the channel stays Chinese


@CHINESE_PLAYBOOK
def test_the_timeline_names_reminded_deadlines_and_paged_levels_in_the_readers_language(stack: Stack) -> None:
    """The record keeps `First response to the customer` and `Owner`; a Chinese reader reads the playbook's
    Chinese names for them, an English reader the English ones."""
    stack.sandbox.set_user_locale(TECH, "zh-CN")
    channel = stack.open("complaint sev3 客户卡号6222021234567890123被重复扣款", user=LEAD).id
    stack.driver.slash(LEAD, channel, f"assign comms <@{COMMS}>")
    stack.advance(hours=24)  # reminded, then missed and paged
    chinese = stack.driver.slash(TECH, channel, "timeline").text
    assert "发送提醒：首次回复客户" in chinese and "First response to the customer" not in chinese
    assert "升级呼叫：负责人" in chinese
    assert "Owner" not in chinese
    english = stack.driver.slash(LEAD, channel, "timeline").text
    assert "reminder sent: First response to the customer" in english
