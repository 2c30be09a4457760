"""The Block Kit builders: built with slack_sdk's models from plain values, valid for the test server (which
checks Slack's limits and slack_sdk's models), and in the reader's language."""

from __future__ import annotations

import ast
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk.errors import SlackObjectFormationError

from bot.core.config import Playbook
from bot.core.i18n import use_locale
from bot.core.render import Renderer
from bot.sandbox.blockkit import validate_blocks, validate_view
from bot.slack import blocks as kit
from bot.slack.blocks import CardFacts, CardRole
from bot.slack.ids import ActionId, BlockId
from tests.conftest import LEAD, REPORTER, ROOT, TECH

TITLE = "客户卡号6222021234567890123被重复扣款"


def facts(**changes: Any) -> CardFacts:
    values: dict[str, Any] = {
        "id": 7,
        "title": TITLE,
        "kind": "complaint",
        "severity": "sev2",
        "status": "reported",
        "reporter_id": REPORTER,
        "created_at": datetime(2026, 11, 24, 2, 0, tzinfo=UTC),
        "playbook_version": "2026.11-3",
        "customer_ref": "6222021234567890123",
        "roles": (
            CardRole("lead", LEAD, "UADMIN00001"),
            CardRole("customer_comms", None),
            CardRole("tech_support", TECH),
            CardRole("legal_compliance", None),
        ),
    }
    return CardFacts(**{**values, **changes})


def texts(blocks: list[dict[str, Any]]) -> str:
    """Every string in the blocks, joined (what a reader could see, and more)."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str):
            found.append(value)

    walk(blocks)
    return "\n".join(found)


def buttons(blocks: list[dict[str, Any]]) -> list[str]:
    return [e["text"]["text"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def test_the_card_built_in_zh_cn_is_chinese_masked_and_valid(playbook: Playbook) -> None:
    with use_locale("zh-CN"):
        card = kit.incident_card(facts(), playbook, Renderer(playbook.timezone))
        fallback = kit.card_text(facts(is_drill=True), playbook)
    assert validate_blocks(card) == []
    fields = [f["text"] for f in card[1]["fields"]]
    assert fields[0].startswith("*类型*\n") and "*级别*\nSEV2" in fields[1]
    assert "*状态*\n已报告" in fields and "*分类*\n未设置" in fields
    roles = next(b for b in card if b.get("block_id") == BlockId.ROLES)["text"]["text"]
    assert "_未指派_" in roles and "（审批公告；由组长指派）" in roles
    assert buttons(card)[0].startswith("认领：")
    assert "客户参考号：" in texts(card) and "预案 2026.11-3" in texts(card)
    assert fallback.startswith("[演练] #7 SEV2")
    assert "6222021234567890123" not in texts(card) + fallback  # glued to the characters, still masked
    assert not any(word in texts(card) for word in ("Kind", "Severity", "Take:", "unassigned", "Playbook"))
    # the playbook's own names in Chinese too: the kind, the severity, every role and the buttons
    assert fields[0] == "*类型*\n客户投诉" and fields[1] == "*级别*\nSEV2 · 重大"
    assert "Customer" not in texts(card) + fallback and "Major" not in texts(card)
    assert "客户投诉" in fallback
    with use_locale("zh-CN"):
        modal = json.dumps(kit.report_modal(playbook, origin_channel="C1"), ensure_ascii=False)
    assert "客户投诉" in modal and "Customer complaint" not in modal and "重大" in modal


def test_the_same_card_in_english(playbook: Playbook) -> None:
    with use_locale("en"):
        card = kit.incident_card(facts(status="investigating"), playbook, Renderer(playbook.timezone))
    assert validate_blocks(card) == []
    assert "*Status*\ninvestigating" in [f["text"] for f in card[1]["fields"]]
    assert all(text.startswith("Take: ") for text in buttons(card))
    assert [e["action_id"] for b in card if b["type"] == "actions" for e in b["elements"]] == [
        f"{ActionId.TAKE_ROLE}:customer_comms"
    ]


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_every_builder_makes_what_the_test_server_accepts(playbook: Playbook, locale: str) -> None:
    notice_texts = {"hotline": {"zh-CN": "尊敬的客户：" + "很抱歉" * 400, "en": "Dear customer"}}
    with use_locale(locale):
        messages = [
            kit.incident_card(facts(resolution_summary="已退款", description="x" * 5000), playbook, Renderer()),
            kit.reminder_blocks("r" * 4000, 3, "Snooze 1h"),
            kit.rating_blocks("How did it go?", 7, ActionId.RATE_RESPONSE),
            kit.page_blocks("You are paged", 2),
            kit.text_blocks("t" * 4000),
            kit.document_blocks("# 复盘\n" + "内容" * 3000, "Add action items"),
            kit.notice_preview_blocks(
                notice_id=1,
                number=7,
                stage="initial",
                texts=notice_texts,
                published=False,
                channel_names={"hotline": "Hotline"},
                status="Draft",
            ),
        ]
        modals = [
            kit.report_modal(playbook, origin_channel="C0001"),
            kit.report_modal(playbook, origin_channel="C0001", kind="outage"),
            kit.notice_edit_modal(1, 7, "initial", notice_texts, {"hotline": "Hotline"}),
        ]
    for blocks in messages:
        assert validate_blocks(blocks) == []
    for view in modals:
        assert validate_view(view) == []
    assert (modals[0]["title"]["text"], modals[0]["submit"]["text"]) == (
        ("报告事件", "开启事件") if locale == "zh-CN" else ("Report an incident", "Open incident")
    )


def test_a_builder_that_breaks_a_rule_fails_where_it_is_built() -> None:
    """slack_sdk's models check as they are built: a 26th button is refused here, not by Slack at send time."""
    with pytest.raises(SlackObjectFormationError):
        kit.to_dicts([kit.ActionsBlock(elements=[kit._button(f"b{i}", "Go", "v") for i in range(26)])])


def test_the_builders_take_plain_values_not_store_rows() -> None:
    for module in ("bot/slack/blocks.py", "bot/slack/forms.py"):
        tree = ast.parse((ROOT / module).read_text(encoding="utf-8"))
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        rows = {name for name in imported if name.split(".")[0] == "sqlalchemy" or name in ("store.models", "store.db")}
        assert not rows, module  # the shared vocabulary (store.states' enums) is fine; rows and sessions are not
