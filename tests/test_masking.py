"""Masking on the text bank staff really type: numbers glued to Chinese, spaced, dashed, dotted, full-width;
the bank's own formats from the playbook; control characters; logs; the sandbox's leak check itself."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.exc import StatementError

from bot.cli import main
from bot.core.config import ConfigError, load_playbook_text
from bot.core.errors import UserInputError
from bot.core.text import (
    _fold_char,
    build_channel_name,
    fold_digits,
    mask_identifiers,
    set_bank_patterns,
    strip_control,
    truncate,
)
from bot.sandbox.leaks import LeakWatch
from bot.slack.commands import parse_command
from store.db import make_engine
from tests.conftest import LEAD, Stack, playbook_text, test_playbook

SEEN = "客户卡号6222021234567890123被重复扣款，电话13812345678"
# The seen identifiers, written as people write them.
SAMPLES = (
    "6222021234567890123",
    "6222 0212 3456 7890 123",
    "６２２２０２１２３４５６７８９０",
    "13812345678",
    "+86 138-1234-5678",
    "11010519900307777X",
    "110101 19900307 7777",
    "zhang.san@bank.com.cn",
    "6222/0212/3456/7890/123",
    "6222，0212，3456，7890，123",
    "6 2 2 2 0 2 1 2 3 4 5 6 7 8 9 0 1 2 3",
    "1 3 8 1 2 3 4 5 6 7 8",
)
IDENTIFIERS = st.sampled_from(SAMPLES)


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        (SEEN, "客户卡号****0123被重复扣款，电话138****5678"),
        ("卡号6222021234567890被扣", "卡号****7890被扣"),
        ("手机13812345678", "手机138****5678"),
        ("身份证11010519900307777X", "身份证**************777X"),
        ("身份证号110101199003077777。", "身份证号**************7777。"),
        ("邮箱zhang.san@bank.com.cn有误", "邮箱z***@bank.com.cn有误"),
        ("卡号 6222 0212 3456 7890 123", "卡号 ****0123"),
        ("卡号6222-0212-3456-7890", "卡号****7890"),
        ("卡号6222.0212.3456.7890", "卡号****7890"),
        ("账号６２２２０２１２３４５６７８９０１２３已冻结", "账号****0123已冻结"),
        ("card6222021234567890abc", "card****7890abc"),
        ("电话138 1234 5678", "电话138****5678"),
        ("电话138-1234-5678", "电话138****5678"),
        ("电话+86 138 1234 5678", "电话+86 138****5678"),
        ("电话+8613812345678", "电话+86 138****5678"),
        ("电话+86 138 1234 5678 2026-11-24 10:00", "电话+86 138****5678 2026-11-24 10:00"),
        ("电话＋８６　１３８１２３４５６７８", "电话+86 138****5678"),
        ("电话１３８－１２３４－５６７８", "电话138****5678"),
        ("身份证110101 19900307 7777", "身份证**************7777"),
        ("身份证110101-19900307-777x", "身份证**************777X"),
        ("ID11010519900307777Xok", "ID**************777Xok"),
        ("卡号62220212\x0034567890123", "卡号****0123"),  # a control character cannot split a number
        # nor can an invisible one pasted from a web page or a chat app (zero-width space, soft hyphen, BOM)
        ("电话138\u200b1234\u200b5678", "电话138****5678"),
        ("卡号6222\u00ad0212\u20603456\ufeff7890", "卡号****7890"),
        ("\u202e卡号6222021234567890", "卡号****7890"),
        # a plus sign before a card number: more digits than a phone number can have
        ("卡号:+6222 0212 3456 7890 123", "卡号:+****0123"),
        ("+86 6222 0212 3456 7890 123", "+****0123"),
        # what must stay readable
        ("2026-11-24 10:00 开会，20261124 复盘", "2026-11-24 10:00 开会，20261124 复盘"),
        ("#42 in inc-20261124-42-ka-hao, ticket 12345", "#42 in inc-20261124-42-ka-hao, ticket 12345"),
        ("服务器192.168.100.200宕机", "服务器192.168.100.200宕机"),
        ("金额1234567.89元，14:30-15:00", "金额1234567.89元，14:30-15:00"),
        ("<@U0123ABCD> in <#C0123456789>", "<@U0123ABCD> in <#C0123456789>"),
        ("<@U13812345678>", "<@U138****5678>"),  # too long for a Slack ID: a number in brackets
    ],
)
def test_masking_on_real_text(raw: str, masked: str) -> None:
    assert mask_identifiers(raw) == masked
    assert mask_identifiers(masked) == masked  # idempotent


# Numbers broken by the separators bank staff paste (issue: masking gaps): one number when the joined digits
# have an identifier's shape; list-like separators (/ _ ， · 。) only for card/ID length or a mobile.
SEPARATED = [
    ("卡号6222/0212/3456/7890/123", "卡号****0123"),
    ("卡号6222_0212_3456_7890_123被扣", "卡号****0123被扣"),
    ("卡号6222，0212，3456，7890，123", "卡号****0123"),
    ("卡号6222／0212／3456／7890", "卡号****7890"),
    ("卡号6222·0212·3456·7890·123", "卡号****0123"),
    ("卡号6222。0212。3456。7890。123", "卡号****0123"),  # typed in Chinese punctuation mode
    ("卡号6222 / 0212 / 3456 / 7890", "卡号****7890"),
    ("卡号6 2 2 2 0 2 1 2 3 4 5 6 7 8 9 0 1 2 3", "卡号****0123"),
    ("卡号6-2-2-2-0-2-1-2-3-4-5-6-7-8-9-0", "卡号****7890"),
    ("卡号6222-0212-3456-7890-123", "卡号****0123"),
    ("卡号6222 0212 3456 7890 123", "卡号****0123"),
    ("卡号6222－0212－3456－7890－123", "卡号****0123"),
    ("卡号6222\u30000212\u30003456\u30007890\u3000123", "卡号****0123"),
    ("卡号6222．0212．3456．7890．123", "卡号****0123"),
    ("账号6222-0212-3456", "账号****3456"),  # twelve digits with dashes: an account
    ("电话+86 138 1234 5678", "电话+86 138****5678"),
    ("电话138/1234/5678", "电话138****5678"),
    ("电话1 3 8 1 2 3 4 5 6 7 8", "电话138****5678"),
    ("身份证110105/19491231/002X", "身份证**************002X"),
    ("身份证1101 0519 4912 3100 2X", "身份证**************002X"),
    ("身份证1 1 0 1 0 5 1 9 4 9 1 2 3 1 0 0 2 X", "身份证**************002X"),
    # what must stay readable
    ("2026-11-28", None),
    ("2026/11/28 09:30", None),
    ("2026年11月28日 10:00-18:00", None),
    ("2026-11-28_10-30-00 日志", None),
    ("20261128_1030_1234", None),
    ("金额1,288.50元，¥50,000.00", None),
    ("金额1，288，500，000，000，000元", None),  # thousands in full-width commas
    ("版本2026.11-3", None),
    ("事件#12，ticket 12345", None),
    ("网点1001/1002/1003受影响", None),
    ("网点1001，1002，1003", None),
    ("成功率95%，持续30分钟", None),
    ("影响 1 2 3 4 5 个网点", None),
    ("0 1 2 3 4 5 6 7 8 9", None),
    ("服务器192.168.1.10与10.0.0.1", None),
    ("共 3 笔，金额 1,288.50 元，2026/11/28 09:30", None),
    ("12/34/56/78/90", None),
    ("ts 1764300000.123456", None),
]


@pytest.mark.parametrize(("raw", "masked"), SEPARATED)
def test_numbers_split_by_separators(raw: str, masked: str | None) -> None:
    """Masked when the joined digits are a card, account, ID or mobile; ordinary numbers stay as typed."""
    assert mask_identifiers(raw) == (masked or raw)
    assert mask_identifiers(masked or raw) == (masked or raw)  # idempotent


def test_folding_skips_only_characters_that_never_fold() -> None:
    """fold_digits leaves CJK ideographs and punctuation alone for speed: none of them folds to anything."""
    for first, last in ((0x3000, 0x303F), (0x3400, 0x4DBF), (0x4E00, 0x9FFF)):
        for code in range(first, last + 1):
            assert _fold_char(chr(code)) == chr(code), hex(code)
    assert fold_digits("卡号６２２２，电话＋８６。") == "卡号6222，电话+86。"


def test_the_bank_adds_its_own_formats_in_the_playbook() -> None:
    playbook = test_playbook()
    (pattern,) = playbook.masking.patterns
    assert pattern.name == "policy"
    set_bank_patterns(p.regex for p in playbook.masking.patterns)
    assert mask_identifiers("保单号PL20260012理赔") == "保单号****0012理赔"  # 8 digits: no built-in rule's
    assert mask_identifiers("保单号ＰＬ－２０２６００１２") == "保单号****0012"  # full-width too
    set_bank_patterns(())
    assert mask_identifiers("保单号PL20260012理赔") == "保单号PL20260012理赔"


@pytest.mark.parametrize(
    ("regex", "problem"),
    [
        ("PL[0-9", "'PL[0-9' is not a regular expression"),
        ("[0-9]*", "'[0-9]*' matches empty text"),
    ],
)
def test_check_config_names_a_bad_masking_pattern(regex: str, problem: str, tmp_path: Path) -> None:
    shipped = 'regex: "PL-?[0-9]{8,12}(?![0-9])"'
    with pytest.raises(ConfigError) as caught:
        load_playbook_text(playbook_text(**{shipped: f'regex: "{regex}"'}))
    field = "masking.patterns.0.regex (line "  # the field path and its line in the file
    assert any(p.startswith(field) and problem in p for p in caught.value.problems), caught.value.problems
    path = tmp_path / "config.yaml"
    path.write_text(playbook_text(**{shipped: f'regex: "{regex}"'}), encoding="utf-8")
    assert main(["check-config", str(path)]) == 2


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        (SEEN, "ke-hu-ka-hao-bei-chong-fu-kou-kuan-dian"),
        ("ATM取款失败 13812345678", "atm-qu-kuan-shi-bai"),
        ("zhang.san@bank.com.cn 的网银登录异常", "de-wang-yin-deng-lu-yi-chang"),
        ("１３８１２３４５６７８", "complaint"),  # nothing but a number: the kind names it
    ],
)
def test_a_chinese_title_gives_a_pinyin_channel_name_without_user_digits(title: str, slug: str) -> None:
    name = build_channel_name(
        "inc-{date}-{number}-{slug}", date="20261124", number=7, title=title, kind="complaint", severity="sev3"
    )
    assert name == f"inc-20261124-7-{slug}"


def test_control_characters_are_stripped_but_newlines_and_tabs_kept() -> None:
    raw = "a\x00b\x01c\x1b[31md\x7fe\x85f\u2028g\ud800h\ufffei\n\tj"
    assert strip_control(raw) == "abc[31mdef\u2028ghi\n\tj"
    assert mask_identifiers(raw) == strip_control(raw)


def test_error_echoes_of_the_users_text_are_masked() -> None:
    playbook = test_playbook()
    for typed in (
        "sev 6222021234567890123",
        "assign lead 13812345678",
        "open complaint cat:邮箱zhang.san@bank.com.cn x",
    ):
        with pytest.raises(UserInputError) as caught:
            parse_command(typed, playbook)
        assert not planted_watch().leaks_in(caught.value.message), caught.value.message


def planted_watch() -> LeakWatch:
    watch = LeakWatch()
    watch.plant("6222021234567890123", "13812345678", "zhang.san@bank.com.cn")
    return watch


def test_every_log_record_is_masked(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("bot.anything")
    with caplog.at_level(logging.INFO):
        log.warning("incident %s: %s", 3, SEEN)
        try:
            raise ValueError(f"could not parse {SEEN}")
        except ValueError:
            log.exception("failed on %r", {"title": SEEN})
    assert "6222021234567890123" not in caplog.text and "13812345678" not in caplog.text
    assert "客户卡号****0123被重复扣款，电话138****5678" in caplog.text
    assert "ValueError: could not parse 客户卡号****0123" in caplog.text  # the traceback too
    assert caplog.records[0].getMessage() == "incident 3: 客户卡号****0123被重复扣款，电话138****5678"


def test_database_errors_do_not_carry_sql_parameters(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, title TEXT NOT NULL UNIQUE)"))
        conn.execute(text("INSERT INTO t (title) VALUES (:title)"), {"title": SEEN})
    with pytest.raises(StatementError) as caught, engine.begin() as conn:
        conn.execute(text("INSERT INTO t (title) VALUES (:title)"), {"title": SEEN})
    assert "6222021234567890123" not in str(caught.value)
    assert "hidden due to hide_parameters=True" in str(caught.value)
    engine.dispose()


def test_the_sandbox_flags_a_planted_identifier_in_any_form() -> None:
    watch = planted_watch()
    for leaked in (
        "卡号6222021234567890123",
        "卡号 6222 0212 3456 7890 123",
        "tail 4567890123",
        "１３８１２３４５６７８",
        "138-1234-5678",
        "ZHANG.SAN@BANK.COM.CN",
    ):
        assert watch.leaks_in(leaked), leaked
    for fine in ("****0123", "138****5678", "z***@bank.com.cn", "2026-11-24 10:00", "C0000000012"):
        assert not watch.leaks_in(fine), fine
    watch.scan("chat.postMessage", {"blocks": [{"type": "section", "text": {"text": "phone 13812345678"}}]})
    assert watch.violations and "13812345678" in watch.violations[0]


def test_a_leak_to_the_sandbox_fails_the_test(stack: Stack) -> None:
    """The check every test gets for free: the bot's own call with an unmasked number is recorded."""
    channel = stack.open().id
    stack.bot.services.slack.post(channel, "raw 13812345678")  # a bug that skipped the renderer
    assert stack.sandbox.leaks.violations
    stack.sandbox.leaks.violations.clear()  # so this test itself passes


def test_the_atom_feed_stays_valid_xml_with_pasted_control_characters(stack: Stack) -> None:
    # Commands refuse control characters now; a row stored before that (or by another system) may hold them.
    channel = stack.open("outage sev3 网银登录异常").id
    with stack.bot.services.db.begin() as s:
        from store.queries import get_incident

        incident = get_incident(s, 1)
        assert incident is not None
        incident.title = "网银\x01登录\x1b异常"
    stack.driver.slash(LEAD, channel, "notice initial status_page")
    notice = next(m for m in reversed(stack.sandbox.channel_messages(channel)) if "Customer notice" in str(m.blocks))
    from bot.sandbox.driver import click_button

    click_button(stack.driver, LEAD, channel, notice.ts, "Publish")
    import urllib.request

    with urllib.request.urlopen(stack.http.url + "/status/feed.atom", timeout=10) as response:
        feed = response.read()
    ET.fromstring(feed)  # parses: no control character survived
    assert "网银登录异常".encode() in feed


@settings(max_examples=300, deadline=None)
@given(
    when=st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2099, 12, 31)),
    fmt=st.sampled_from(
        ["%Y-%m-%d %H:%M", "%Y%m%d", "%Y/%m/%d %H:%M:%S", "%m-%d %H:%M", "%Y.%m.%d", "%Y年%m月%d日%H:%M"]
    ),
    number=st.integers(min_value=1, max_value=10**6),
    before=st.sampled_from(["", "于", "at ", "事件#"]),
)
def test_dates_times_and_incident_numbers_stay_readable(when: datetime, fmt: str, number: int, before: str) -> None:
    text = f"{before}{when.strftime(fmt)}开会，#{number}已恢复"
    assert mask_identifiers(text) == text


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(st.one_of(st.text(max_size=8), IDENTIFIERS), min_size=1, max_size=6))
@example(parts=["+0", "6222 0212 3456 7890 123"])  # a plus sign before a card: once read as a phone number
@example(parts=["电话138\u200b1234", "\u200b5678"])  # zero-width spaces pasted inside a number
def test_no_planted_identifier_survives_masking_in_any_text(parts: list[str]) -> None:
    """The pure function over any text: what the end-to-end property test checks on every surface."""
    watch = LeakWatch()
    watch.plant(*(p for p in parts if p in SAMPLES))
    masked = mask_identifiers(" ".join(parts))
    assert not watch.leaks_in(masked), masked
    assert mask_identifiers(masked) == masked


def test_a_long_chinese_title_is_masked_before_it_is_shortened() -> None:
    """Chinese has no spaces to cut at: a cut through a card number must not leave its digits behind."""
    for before in range(60, 82):
        title = "客" * before + "卡号6222021234567890123被重复扣款"
        for limit in (80, 120, 150):
            cut = truncate(title, limit)
            assert len(cut) <= limit
            assert "6222021" not in cut and "2345678" not in cut, (before, limit, cut)
