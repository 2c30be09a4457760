"""Property-based tests of the command parser and the channel-name builder, and the masking rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.config import Playbook
from bot.core.errors import UserInputError
from bot.core.text import CHANNEL_NAME_RE, build_channel_name, escape_mrkdwn, mask_identifiers, truncate
from bot.slack.commands import SUBCOMMANDS, Command, parse_command
from tests.conftest import test_playbook

PLAYBOOK: Playbook = test_playbook()
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
    if parsed.name == "open":
        assert parsed.kind in PLAYBOOK.kinds
        assert parsed.severity is None or parsed.severity in PLAYBOOK.severities
        assert parsed.title and parsed.title.strip() == parsed.title and len(parsed.title) <= 2000
    if parsed.name == "assign":
        assert parsed.role in PLAYBOOK.roles and parsed.user is not None
    if parsed.name == "sev":
        assert parsed.severity in PLAYBOOK.severities


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Command("help")),
        ("open", Command("open_modal")),
        (
            "OPEN Complaint SEV2 cat:Technical  Card   failing",
            Command("open", kind="complaint", severity="sev2", category="technical", title="Card failing"),
        ),
        ("open outage Login down", Command("open", kind="outage", title="Login down")),
        ("sev 2", Command("sev", severity="sev2")),
        ("sev SEV3", Command("sev", severity="sev3")),
        ("status #7", Command("status", number=7)),
    ],
)
def test_examples_parse(text: str, expected: Command) -> None:
    assert parse_command(text, PLAYBOOK) == expected


def test_assign_understands_aliases_multiword_roles_and_mentions() -> None:
    parsed = parse_command("assign Legal & Compliance <@U0LEGAL|lena>", PLAYBOOK)
    assert parsed.role == "legal_compliance" and parsed.user is not None and parsed.user.user_id == "U0LEGAL"
    assert parse_command("assign 组长 me", PLAYBOOK).role == "lead"


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
