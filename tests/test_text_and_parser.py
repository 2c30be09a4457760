"""Property-based tests of the command parser and the channel-name builder, and the masking rules."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.core.config import Playbook
from bot.core.errors import UserInputError
from bot.core.i18n import _, use_locale
from bot.core.text import CHANNEL_NAME_RE, build_channel_name, escape_mrkdwn, mask_identifiers, truncate
from bot.slack.commands import Command, parse_command
from bot.slack.registry import GROUPS, REGISTRY, help_text
from tests.conftest import OUTSIDER, Stack, test_playbook

PLAYBOOK: Playbook = test_playbook()
SUBCOMMANDS = [name for spec in REGISTRY for name in (spec.name, *spec.aliases)]
WORDS = st.sampled_from(
    [
        *SUBCOMMANDS,
        "complaint",
        "outage",
        "surge",
        "security",
        "sev1",
        "sev4",
        "sev9",
        "sev",
        "cat:technical",
        "cat:x",
        "tech",
        "lead",
        "me",
        "<@U123ABC|bob>",
        "@bob",
        "<!channel>",
        "#42",
        "42",
        "",
        "legal",
        "&",
        "客户投诉",
    ]
)
COMMAND_TEXT = st.one_of(
    st.text(max_size=300), st.lists(st.one_of(WORDS, st.text(max_size=12)), max_size=8).map(" ".join)
)


@settings(max_examples=400, deadline=None)
@example(text="SURGE END", command="/incident")  # a two-word subcommand
@example(text="surge dismiss 不是客流高峰", command="/incident")
@given(text=COMMAND_TEXT, command=st.sampled_from(["/incident", "/complaint", "/outage"]))
def test_any_input_gives_a_valid_parse_or_a_clear_error(text: str, command: str) -> None:
    try:
        parsed = parse_command(text, PLAYBOOK, command=command)
    except UserInputError as exc:
        assert exc.message and len(exc.message) < 500
        assert "<!channel>" not in exc.message  # echoed words are escaped
        assert "/incident" in exc.message or "`" in exc.message  # says what to type
        return
    assert isinstance(parsed, Command)
    if command == "/incident" and text.split():  # never a fall-through to an unrelated command
        words = text.lower().split()
        named = [s for s in REGISTRY if words[: len(s.name.split())] == s.name.split() or words[0] in s.aliases]
        spec = max(named, key=lambda s: len(s.name.split()))  # `surge end` before `surge`
        assert parsed.name in (spec.name, spec.empty.name if spec.empty else spec.name)
    if parsed.name == "open":
        assert parsed["kind"] in PLAYBOOK.kinds
        assert parsed["severity"] is None or parsed["severity"] in PLAYBOOK.severities
        assert parsed["title"] and parsed["title"].strip() == parsed["title"] and len(parsed["title"]) <= 2000
    if parsed.name == "assign":
        assert parsed["role"] in PLAYBOOK.roles and parsed["user"] is not None
    if parsed.name == "sev":
        assert parsed["severity"] in PLAYBOOK.severities


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Command("help")),
        ("open", Command("open_modal")),
        (
            "OPEN Complaint SEV2 cat:Technical  Card   failing",
            Command(
                "open", {"kind": "complaint", "severity": "sev2", "category": "technical", "title": "Card failing"}
            ),
        ),
        ("open outage Login down", Command("open", {"kind": "outage", "title": "Login down"})),
        ("sev 2", Command("sev", {"severity": "sev2"})),
        ("sev SEV3", Command("sev", {"severity": "sev3"})),
        ("status #7", Command("status", {"number": 7})),
    ],
)
def test_examples_parse(text: str, expected: Command) -> None:
    assert parse_command(text, PLAYBOOK) == expected


def test_assign_understands_aliases_multiword_roles_and_mentions() -> None:
    parsed = parse_command("assign Legal & Compliance <@U0LEGAL|lena>", PLAYBOOK)
    assert parsed["role"] == "legal_compliance" and parsed["user"] is not None and parsed["user"].user_id == "U0LEGAL"
    assert parse_command("assign 组长 me", PLAYBOOK)["role"] == "lead"


CJK = re.compile(r"[\u4e00-\u9fff]")
CARD = "6222021234567890123"


def test_help_in_zh_cn_is_chinese_and_lists_every_registered_command() -> None:
    with use_locale("zh-CN"):
        text = help_text(PLAYBOOK)
        groups = [_(group) for group in GROUPS]
    assert text.startswith("*incident-desk 命令*")
    assert all(f"*{group}*" in text for group in groups)
    for spec in REGISTRY:
        line = next(
            (
                ln
                for ln in text.splitlines()
                if ln.startswith(f"• `/incident {spec.name} ") or ln.startswith(f"• `/incident {spec.name}`")
            ),
            "",
        )
        assert line, f"{spec.name} is not in the help"
        assert CJK.search(line.split("—", 1)[1]), line  # its help line is in Chinese
    assert "• `/incident open &lt;类型&gt; [sev1-4] [cat:&lt;分类&gt;] &lt;标题&gt;` — 报告一个事件。" in text
    assert "示例：`/incident assign tech @alice`" in text


def test_help_in_english_lists_every_registered_command_with_its_usage_escaped() -> None:
    with use_locale("en"):
        text = help_text(PLAYBOOK)
    assert text.startswith("*incident-desk commands*")
    for spec in REGISTRY:
        with use_locale("en"):
            usage = spec.usage().replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        assert f"• `{usage}` — " in text, spec.name
    assert "• `/complaint [sev1-4] [cat:&lt;category&gt;] &lt;title&gt;` and `/outage " in text
    assert "<" not in text and ">" not in text


@pytest.mark.playbook({"locale: en": "locale: zh-CN"})
def test_a_zh_cn_playbook_answers_help_and_refusals_in_chinese(stack: Stack) -> None:
    stack.sandbox.set_user_locale(OUTSIDER, "zh-CN")  # a reader who uses Slack in Chinese (users.info's locale)
    general = stack.sandbox.channel_by_name("general")
    assert general is not None
    help_reply = stack.driver.slash(OUTSIDER, general.id, "help").text
    assert help_reply.startswith("*incident-desk 命令*")
    for spec in REGISTRY:
        assert f"`/incident {spec.name}" in help_reply, spec.name
    refused = stack.driver.slash(OUTSIDER, general.id, "asign tech me")
    assert refused.text == (
        "我不认识 `asign`。您是不是想输入 `/incident assign &lt;角色&gt; &lt;@用户|me&gt;`？"
        "输入 `/incident help` 查看所有命令。"
    )
    unknown_role = stack.driver.slash(OUTSIDER, general.id, f"assign 客户卡号{CARD}被重复扣款 me")
    assert unknown_role.text.startswith("未知的角色 `客户卡号****0123被重复扣款`。角色：lead, ")
    assert CARD not in unknown_role.text


@pytest.mark.parametrize(
    ("text", "told"),
    [
        ("asign tech me", "I don't know `asign`. Did you mean `/incident assign &lt;role&gt; &lt;@user|me&gt;`? "),
        ("frobnicate", "I don't know `frobnicate`. Type `/incident help` for every command."),
        ("close now", "`/incident close` takes nothing after it."),
        ("sev 1 2", "Give one severity: `/incident sev 2` (1 is the most severe)."),
        ("status 1 2", "`/incident status` takes an incident number or nothing, e.g. `/incident status 42`."),
        ("review", "`/incident review post` posts the draft now,"),
        ("review post now", "`/incident review post` posts the draft now,"),
        ("report 2026-11-02 2026-11-01", "The report's end is before its start"),
        ("report 2026-11-01 2026-11-02 2026-11-03", "`/incident report [from] [to]` takes at most two dates"),
        ("action 加告警 5d", "Say what, who and by when: `/incident action <text> @owner <due>`."),
        (f"sev {CARD}", "Unknown severity `****0123`."),
    ],
)
def test_bad_subcommands_and_arguments_are_refused_with_what_to_type(text: str, told: str) -> None:
    with use_locale("en"), pytest.raises(UserInputError) as caught:
        parse_command(text, PLAYBOOK)
    assert caught.value.message.startswith(told), caught.value.message
    assert CARD not in caught.value.message


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_every_example_in_the_help_parses_as_its_own_command(locale: str) -> None:
    with use_locale(locale):
        for spec in REGISTRY:
            if spec.example:
                assert parse_command(_(spec.example), PLAYBOOK).name == spec.name, spec.example


def test_typed_arguments_read_chinese_with_identifiers_and_mentions_glued() -> None:
    action = parse_command(f"action 客户卡号{CARD}被重复扣款<@U0TECH|tom> ５ｄ", PLAYBOOK)
    assert action["text"] == f"客户卡号{CARD}被重复扣款" and action["user"].user_id == "U0TECH"
    update = parse_command(f"update 客户卡号{CARD}被重复扣款\n已退款", PLAYBOOK)
    assert update == Command("update", {"text": f"客户卡号{CARD}被重复扣款\n已退款"})  # line breaks kept
    assign = parse_command("assign 组长<@U0LEAD>", PLAYBOOK)
    assert assign["role"] == "lead" and assign["user"].user_id == "U0LEAD"
    assert parse_command("ｓｅｖ　２", PLAYBOOK) == Command("sev", {"severity": "sev2"})
    assert parse_command("csat ４ 满意", PLAYBOOK) == Command("satisfaction", {"number": 4, "text": "满意"})
    assert parse_command("timeline #42", PLAYBOOK) == Command("timeline", {"number": 42})
    assert parse_command("sev3 转账延迟", PLAYBOOK, command="/complaint") == Command(
        "open", {"kind": "complaint", "severity": "sev3", "title": "转账延迟"}
    )


@settings(max_examples=500, deadline=None)
@given(
    title=st.text(max_size=6000),
    number=st.integers(min_value=1, max_value=10**9),
    kind=st.sampled_from(list(PLAYBOOK.kinds)),
    suffix=st.sampled_from(["", "-2", "-10"]),
    pattern=st.sampled_from(
        ["inc-{date}-{number}-{slug}", "{kind}_{severity}_{number}_{slug}", "INC {number} {slug}!"]
    ),
)
def test_every_generated_channel_name_obeys_slacks_rules(
    title: str, number: int, kind: str, suffix: str, pattern: str
) -> None:
    name = build_channel_name(
        pattern, date="20261124", number=number, title=title, kind=kind, severity="sev2", suffix=suffix
    )
    assert CHANNEL_NAME_RE.match(name), name
    assert len(name) <= 80
    assert str(number) in name  # names stay unique per incident
    assert not any(d in name for d in ("6222021234567890",))


def test_channel_names_never_carry_customer_identifiers() -> None:
    name = build_channel_name(
        "inc-{date}-{number}-{slug}",
        date="20261124",
        number=3,
        title="card 6222021234567890 phone 13812345678",
        kind="complaint",
        severity="sev2",
    )
    assert name == "inc-20261124-3-card-phone"  # no digit the user typed, not even a masked tail


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("card 6222 0212 3456 7890 123 declined", "card ****0123 declined"),
        ("acct 6222021234567890", "acct ****7890"),
        ("ID 11010519491231002X", "ID **************002X"),
        ("ID 110105194912310021.", "ID **************0021."),
        ("call 13812345678 or +86 13912345678", "call 138****5678 or +86 139****5678"),
        ("intl +44 20 7946 0958", "intl ****0958"),
        ("mail zhang.san@bank.com.cn", "mail z***@bank.com.cn"),
        ("incident #42 at 2026-11-24 10:00, ticket 12345", "incident #42 at 2026-11-24 10:00, ticket 12345"),
        ("channel <#C0123456789>", "channel <#C0123456789>"),
    ],
)
def test_masking(raw: str, masked: str) -> None:
    assert mask_identifiers(raw) == masked
    assert mask_identifiers(masked) == masked  # idempotent


@given(st.text(max_size=500))
def test_escaping_leaves_no_control_characters(text: str) -> None:
    escaped = escape_mrkdwn(text)
    assert "<" not in escaped and ">" not in escaped


@given(st.text(max_size=400), st.integers(min_value=2, max_value=300))
def test_truncate_respects_the_limit(text: str, limit: int) -> None:
    cut = truncate(text, limit)
    assert len(cut) <= limit
    assert cut == mask_identifiers(text) or cut.endswith("…")  # masked first, then cut


@pytest.mark.parametrize(
    ("text", "told"),
    [
        ("outage 手机银行登录失败", "To open an incident, start with `open`: `/incident open outage [sev1-4] <title>`"),
        ("客户投诉 客户卡号6222021234567890123被重复扣款", "`/incident open complaint [sev1-4] <title>`"),
        ("帮助", "To see every command, type `/incident help`"),
    ],
)
def test_a_kind_or_a_chinese_help_word_where_the_subcommand_goes_is_told_what_to_type(text: str, told: str) -> None:
    with pytest.raises(UserInputError) as refused:
        parse_command(text, PLAYBOOK)
    assert told in refused.value.message
    assert "6222021234567890123" not in refused.value.message
