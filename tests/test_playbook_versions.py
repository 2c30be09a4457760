"""The plan's versions: each playbook loaded is stored with its hash, text and changelog reason; a changed file
under an unchanged version is refused; history and diff show what changed; a new version is announced and each
role owner confirms reading it with a button (reminded by DM until they do); the yearly review comes round."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.cli import adopt, main
from bot.core.config import ConfigError, load_playbook_text
from bot.plan.versions import adopt_playbook, content_hash
from bot.sandbox.driver import click_button
from store.models import PlanConfirmation, PlaybookVersion
from tests.conftest import (
    ADMIN,
    COMMS,
    LEAD,
    OUTSIDER,
    SHIPPED_LOCALE,
    TECH,
    TEST_EDITS,
    Stack,
    playbook_text,
    seed_sqlite,
)

OLD, NEW = "2026.11-3", "2026.12-1"
RAISED = {f'version: "{OLD}"': f'version: "{NEW}"'}
ENTRY = {
    "changelog:\n": (
        "changelog:\n"
        f'  - {{version: "{NEW}", date: 2026-11-25, reason: 投诉首次回复时限由24小时缩短为12小时（监管新规）,\n'
        "     changes: [客户投诉首次回复时限改为12小时, 客户沟通角色由客服值班组承担]}\n"
    )
}
SHORTER = {"after: 24h, on_resolve: keep,": "after: 12h, on_resolve: keep,"}
COMMS_GROUP = {
    "aliases: [comms, customer_service, cs, 客户沟通, 客服]\n    default_owners: []": (
        "aliases: [comms, customer_service, cs, 客户沟通, 客服]\n    default_owners: []\n    usergroup: S0COMMS01"
    )
}
BUTTON = "I have read it"


def write(tmp_path: Path, **edits: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(playbook_text(**edits), encoding="utf-8")
    return path


def test_history_diff_and_the_refusal_of_a_changed_file_whose_version_was_not_raised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    seed_sqlite(url)  # the migrated schema, copied
    path = write(tmp_path)
    assert main(["check-config", str(path), "--database-url", url]) == 0  # a fresh store: nothing to compare
    shipped = load_playbook_text(path.read_text(encoding="utf-8"))
    adopt(shipped, path, url)  # what `run` does at start-up
    adopt(shipped, path, url)  # again: stored once

    # A comment is not a change of the plan; a value is.
    path.write_text("# 备注：仅修改注释\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    assert main(["check-config", str(path), "--database-url", url]) == 0
    path = write(tmp_path, **SHORTER)
    capsys.readouterr()
    assert main(["check-config", str(path), "--database-url", url]) == 2
    err = capsys.readouterr().err
    assert f"version: the playbook's content changed but its version is still '{OLD}'" in err
    assert "raise `version` and add a `changelog` entry" in err
    with pytest.raises(ConfigError, match="raise `version`"):  # the bot refuses to start likewise
        adopt(shipped, path, url)
    for name, value in {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": "secret",
        "DATABASE_URL": url,
        "INCIDENT_DESK_CONFIG": str(path),
    }.items():
        monkeypatch.setenv(name, value)
    assert main(["run"]) == 2  # before it connects to anything
    assert "version: the playbook's content changed" in capsys.readouterr().err

    # A raised version needs its changelog entry.
    path = write(tmp_path, **SHORTER, **RAISED)
    assert main(["check-config", str(path), "--database-url", url]) == 2
    assert f"changelog: no entry for version '{NEW}'" in capsys.readouterr().err
    path = write(tmp_path, **SHORTER, **RAISED, **ENTRY)
    assert main(["check-config", str(path), "--database-url", url]) == 0
    adopt(load_playbook_text(path.read_text(encoding="utf-8")), path, url)

    # The old version is kept for tracing, never used again.
    path = write(tmp_path)
    capsys.readouterr()
    assert main(["check-config", str(path), "--database-url", url]) == 2
    assert f"version: '{OLD}' is an old version of the plan (the one in force is '{NEW}')" in capsys.readouterr().err

    assert main(["playbook", "history", "--database-url", url]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["version", "loaded", "at", "date", "hash", "read", "reason"]
    assert len(out) == 3
    assert out[1].startswith(OLD) and "2026-11-20" in out[1] and "按照《客户投诉处理流程》" in out[1]
    assert out[2].startswith(NEW) and "2026-11-25" in out[2]
    assert out[2].endswith("投诉首次回复时限由24小时缩短为12小时（监管新规）")
    assert content_hash(playbook_text(**SHORTER, **RAISED, **ENTRY))[:12] in out[2]

    assert main(["playbook", "diff", OLD, NEW, "--database-url", url]) == 0
    diff = capsys.readouterr().out
    assert diff.startswith(f"--- playbook {OLD}\n+++ playbook {NEW}\n")
    assert f'-version: "{OLD}"\n+version: "{NEW}"\n' in diff
    assert '+  - {version: "2026.12-1", date: 2026-11-25, reason: 投诉首次回复时限由24小时缩短为12小时' in diff
    assert any(line.startswith("-") and "after: 24h" in line for line in diff.splitlines())
    assert any(line.startswith("+") and "after: 12h" in line for line in diff.splitlines())
    assert main(["playbook", "diff", NEW, NEW, "--database-url", url]) == 0
    assert capsys.readouterr().out == f"playbook {NEW} and {NEW} are the same version: no differences\n"
    assert main(["playbook", "diff", OLD, "2020.1", "--database-url", url]) == 2
    assert "version: '2020.1' was never loaded (stored versions: 2026.11-3, 2026.12-1)" in capsys.readouterr().err


def announcement(stack: Stack, channel: str) -> tuple[str, str]:
    (message,) = [m for m in stack.sandbox.channel_messages(channel) if m.text.startswith(":scroll:")]
    return message.ts, message.text


@pytest.mark.playbook({**COMMS_GROUP, **RAISED, **ENTRY})
def test_a_new_version_is_announced_and_each_owner_confirms_reading_it_once(stack: Stack) -> None:
    reports = stack.sandbox.add_channel("incident-reports", [stack.sandbox.bot_user_id, LEAD])
    stack.sandbox.add_usergroup("S0COMMS01", "comms", [COMMS])
    stack.sandbox.set_user_locale(COMMS, "zh-CN")  # reads Slack in Chinese; the channel speaks the playbook's English
    db, now = stack.bot.services.db, stack.clock.now()
    assert adopt_playbook(db, load_playbook_text(playbook_text(**TEST_EDITS)), playbook_text(**TEST_EDITS), now)
    new_text = playbook_text(**TEST_EDITS, **COMMS_GROUP, **RAISED, **ENTRY)
    assert adopt_playbook(db, stack.bot.services.playbook, new_text, now).outcome == "new"
    stack.bot.sweeper.sweep()

    ts, text = announcement(stack, reports)
    assert text.splitlines() == [
        f":scroll: *The contingency plan is now version {NEW}* (dated 2026-11-25).",
        "Why: 投诉首次回复时限由24小时缩短为12小时（监管新规）",
        "• 客户投诉首次回复时限改为12小时",
        "• 客户沟通角色由客服值班组承担",
        f"It replaces version {OLD}; incidents opened before keep the version they started under.",
        "Role owners and admins: read the plan, then confirm with the button below.",
        f"Not confirmed yet: <@{ADMIN}>, <@{LEAD}>, <@{TECH}>, <@{COMMS}>",
    ]
    for user in (ADMIN, LEAD, TECH):  # each is asked in a DM too (the usergroup's member included, in Chinese)
        assert stack.dm_texts(user)[-1].startswith(f":scroll: The contingency plan is now version {NEW}")
    assert stack.dm_texts(COMMS)[-1].splitlines()[:2] == [
        f":scroll: 应急预案已更新为 {NEW} 版（2026-11-25）。请阅读并点击下方按钮确认。",
        "修订原因：投诉首次回复时限由24小时缩短为12小时（监管新规）",
    ]
    assert "我已阅读" in str(stack.sandbox.dm_messages(COMMS)[-1].blocks)
    stack.bot.sweeper.sweep()  # announced once
    assert len([m for m in stack.sandbox.channel_messages(reports) if m.text.startswith(":scroll:")]) == 1

    # The lead clicks twenty times (in the channel); tech support once, in his DM; an outsider is not asked.
    for _ in range(20):
        stack.driver.click(LEAD, reports, ts, "confirm_plan", _version_id(stack), wait=False)
    stack.bot.executor.wait_idle()
    assert (
        stack.ephemeral_texts(LEAD).count(
            f":white_check_mark: Thank you: you confirmed reading version {NEW} of the plan."
        )
        == 1
    )
    assert stack.ephemeral_texts(LEAD).count(f"You had already confirmed reading version {NEW}.") == 19
    tech_dm = stack.sandbox.dm_messages(TECH)[-1]
    click_button(stack.driver, TECH, tech_dm.channel, tech_dm.ts, BUTTON)
    click_button(stack.driver, OUTSIDER, reports, ts, BUTTON)
    assert stack.ephemeral_texts(OUTSIDER)[-1] == (
        f"You are not among the people asked to read version {NEW}; nothing to confirm."
    )
    assert announcement(stack, reports)[1].endswith(f"Not confirmed yet: <@{ADMIN}>, <@{COMMS}>")

    # A day later, who has not confirmed is reminded by DM; who has, is not.
    dms = {u: len(stack.dm_texts(u)) for u in (ADMIN, LEAD, TECH, COMMS)}
    stack.advance(hours=23, minutes=59)
    assert {u: len(stack.dm_texts(u)) for u in dms} == dms
    stack.advance(minutes=1)
    assert stack.dm_texts(COMMS)[-1].startswith(
        f":scroll: 提醒：请阅读 {NEW} 版应急预案（2026-11-25），并点击下方按钮确认。"
    )
    assert {u: len(stack.dm_texts(u)) - dms[u] for u in dms} == {ADMIN: 1, LEAD: 0, TECH: 0, COMMS: 1}
    admin_dm = stack.sandbox.dm_messages(ADMIN)[-1]
    click_button(stack.driver, ADMIN, admin_dm.channel, admin_dm.ts, BUTTON)
    stack.advance(days=1)
    assert {u: len(stack.dm_texts(u)) - dms[u] for u in dms} == {ADMIN: 1, LEAD: 0, TECH: 0, COMMS: 2}
    assert announcement(stack, reports)[1].endswith(f"Not confirmed yet: <@{COMMS}>")
    general = stack.sandbox.channel_by_name("general")
    assert general is not None
    assert stack.driver.slash(OUTSIDER, general.id, "plan").text.splitlines() == [
        f"*Contingency plan {NEW}* (dated 2026-11-25; in force since 2026-11-24 10:00 UTC+8).",
        "Why: 投诉首次回复时限由24小时缩短为12小时（监管新规）",
        "• 客户投诉首次回复时限改为12小时",
        "• 客户沟通角色由客服值班组承担",
        "Confirmed reading: 3 of 4.",
        f"Not confirmed yet: <@{COMMS}>",
        "Next review due: 2027-11-25.",
    ]
    with db() as s:
        rows = s.scalars(select(PlanConfirmation).order_by(PlanConfirmation.id)).all()
        confirmed = {r.user_id: r.confirmed_at is not None for r in rows}
    assert confirmed == {ADMIN: True, LEAD: True, TECH: True, COMMS: False}  # one row each, twenty clicks or one

    # A year after the version's date, the plan's owners (the admins here) are reminded to review it, weekly.
    stack.clock.set(datetime(2027, 11, 25, 0, 59, tzinfo=UTC))  # 08:59 in Shanghai
    stack.bot.sweeper.sweep()
    assert not any(t.startswith(":calendar:") for t in stack.dm_texts(ADMIN))
    stack.clock.set(datetime(2027, 11, 25, 1, 0, tzinfo=UTC))
    stack.bot.sweeper.sweep()
    stack.bot.sweeper.sweep()
    review = [t for t in stack.dm_texts(ADMIN) if t.startswith(":calendar:")]
    assert review == [
        f":calendar: The contingency plan (version {NEW}, dated 2026-11-25) is due for its yearly review. Review it, "
        "then raise `version` and add a `changelog` entry saying what changed (or that nothing did)."
    ]
    assert stack.texts(reports)[-1].endswith(f"Plan owners: <@{ADMIN}>")
    stack.clock.set(stack.clock.now() + timedelta(days=7))
    stack.bot.sweeper.sweep()
    assert len([t for t in stack.dm_texts(ADMIN) if t.startswith(":calendar:")]) == 2


def _version_id(stack: Stack) -> str:
    with stack.bot.services.db() as s:
        return str(max(s.scalars(select(PlaybookVersion.id))))


@pytest.mark.playbook({SHIPPED_LOCALE: SHIPPED_LOCALE})  # the shipped zh-CN
def test_a_severe_incident_shows_its_version_and_its_review_asks_what_the_plan_should_change(stack: Stack) -> None:
    severe = stack.open("outage sev2 手机银行转账失败").id
    card = stack.sandbox.channel_messages(severe)[0]
    assert f"预案 {OLD}" in str(card.blocks)
    minor = stack.open("complaint sev3 cat:service 客户卡号6222021234567890123被重复扣款").id
    stack.driver.slash(LEAD, severe, "resolve 已切换至备用线路")
    stack.driver.slash(LEAD, minor, "resolve 已为客户退款")
    stack.advance(days=1)
    drafts = {
        channel: m.blocks[0]["text"]
        for channel in (severe, minor)
        for m in stack.sandbox.channel_messages(channel)
        if m.blocks and m.blocks[0]["type"] == "markdown"
    }
    assert "## 预案修订\n" in drafts[severe]
    assert f"本事件按预案 {OLD} 处置，该版本仍在生效。" in drafts[severe]
    assert "由谁修订预案（提高 `version`，添加 `changelog` 记录），何时完成：" in drafts[severe]
    assert "预案修订" not in drafts[minor]
