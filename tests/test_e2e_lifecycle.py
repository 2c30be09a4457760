"""Staffing and moving an incident: roles, severity, updates, resolve, close; and every refusal."""

from __future__ import annotations

import pytest

from bot.sandbox.driver import click_button
from bot.slack.ids import BlockId
from store.queries import get_incident, list_timeline
from tests.conftest import ADMIN, COMMS, LEAD, LEGAL, OUTSIDER, REPORTER, TECH, Stack


def roles_text(stack: Stack, channel: str) -> str:
    card = stack.sandbox.channel_messages(channel)[0]
    return str(next(b for b in card.blocks if b.get("block_id") == BlockId.ROLES)["text"]["text"])


def last_ephemeral(stack: Stack, user: str) -> str:
    texts = stack.ephemeral_texts(user)
    return texts[-1] if texts else ""


def test_assign_announces_invites_and_updates_the_card(stack: Stack) -> None:
    channel = stack.open()
    stack.driver.slash(LEAD, channel.id, f"assign legal <@{LEGAL}|lena.legal>")

    assert (
        stack.texts(channel.id)[-1]
        == f":bust_in_silhouette: <@{LEAD}> assigned <@{LEGAL}> as *Legal &amp; compliance*."
    )
    assert LEGAL in channel.members
    assert f"*Legal &amp; compliance*: <@{LEGAL}>" in roles_text(stack, channel.id)
    assert stack.sandbox.channel_messages(channel.id)[0].edited


def test_reassigning_names_the_previous_owner(stack: Stack) -> None:
    channel = stack.open()
    stack.driver.slash(LEAD, channel.id, "assign tech @oscar.outsider")
    assert stack.texts(channel.id)[-1] == (
        f":bust_in_silhouette: <@{LEAD}> assigned <@{OUTSIDER}> as *Tech support* (was <@{TECH}>)."
    )
    assert f"*Tech support*: <@{OUTSIDER}>" in roles_text(stack, channel.id)


def test_take_role_button_lets_anyone_claim_an_unowned_role(stack: Stack) -> None:
    channel = stack.open()
    card = stack.sandbox.channel_messages(channel.id)[0]
    stack.join(channel.id, COMMS)  # anyone who joins the channel is a participant and may take an open role
    reply = click_button(stack.driver, COMMS, channel.id, card.ts, "Take: Customer comms")

    assert reply.status == 200
    assert stack.texts(channel.id)[-1] == f":raising_hand: <@{COMMS}> took the role *Customer comms*."
    assert COMMS in channel.members
    refreshed = stack.sandbox.channel_messages(channel.id)[0]
    buttons = [e["text"]["text"] for b in refreshed.blocks if b["type"] == "actions" for e in b["elements"]]
    assert buttons == ["Take: Finance"]  # legal & compliance approves notices: the lead assigns it, nobody takes it
    assert "*Legal &amp; compliance*: _unassigned_ (approves notices; the lead assigns it)" in str(refreshed.blocks)


def test_take_role_on_a_role_someone_else_holds_is_refused(stack: Stack) -> None:
    channel = stack.open()
    card = stack.sandbox.channel_messages(channel.id)[0]
    stack.join(channel.id, OUTSIDER, COMMS)
    stack.driver.slash(OUTSIDER, channel.id, "assign comms me")  # a participant takes the open role: allowed
    assert stack.texts(channel.id)[-1] == f":raising_hand: <@{OUTSIDER}> took the role *Customer comms*."
    # A second person clicks the same button on a card that had not refreshed yet.
    stack.driver.click(COMMS, channel.id, card.ts, "take_role:customer_comms", "1:customer_comms")
    refusal = (
        f"*Customer comms* is already taken by <@{OUTSIDER}>. "
        f"Only the lead (<@{LEAD}>), the role's holder (<@{OUTSIDER}>) or a playbook admin can reassign roles"
    )
    assert last_ephemeral(stack, COMMS).startswith(refusal)
    stack.driver.slash(COMMS, channel.id, "assign comms me")
    assert last_ephemeral(stack, COMMS).startswith(refusal)
    assert f"*Customer comms*: <@{OUTSIDER}>" in roles_text(stack, channel.id)


def test_severity_update_resolve_close_walk_the_states(stack: Stack) -> None:
    channel = stack.open("outage sev3 Transfers delayed")
    stack.driver.slash(TECH, channel.id, "sev 1")
    stack.driver.slash(TECH, channel.id, "update Queue drained; watching")
    stack.driver.slash(LEAD, channel.id, "resolve Consumer restarted")
    stack.driver.slash(LEAD, channel.id, "review done")
    stack.driver.slash(LEAD, channel.id, "close")

    assert stack.texts(channel.id)[2:] == [
        f":rotating_light: <@{TECH}> changed the severity from *SEV3* to *SEV1*.",
        f":mega: *Update* from <@{TECH}>: Queue drained; watching",
        f":white_check_mark: <@{LEAD}> resolved the incident: Consumer restarted",
        "When customer comms has called the customer back (满意度回访), record their rating for #1: click below, "
        "or `/incident satisfaction <1-5> [comment]`.",
        f":memo: <@{LEAD}> marked the review of #1 complete. `/incident close` may follow.",
        f":lock: <@{LEAD}> closed the incident.",
        f":checkered_flag: *Final summary of #1* — SEV1 Service outage: Transfers delayed\n"
        "• Open for 0m; deadlines: 1 met, 0 missed\n"
        "• Customer satisfaction: not recorded · the team's rating of the response: no ratings\n"
        f"• Review completed by <@{LEAD}>\n"
        "This channel is archived now; the record stays in incident-desk (`/incident timeline 1`).",
    ]
    assert channel.is_archived
    assert channel.topic == "SEV1 Service outage | Transfers delayed | Status: closed"
    with stack.bot.services.db() as s:
        incident = get_incident(s, 1)
        assert incident is not None
        assert incident.status == "closed"
        assert incident.resolved_at is not None and incident.closed_at is not None
        events = [(e.event, e.actor_id) for e in list_timeline(s, 1)]
    lifecycle = {"opened", "severity_changed", "update", "status_changed", "resolved", "closed"}
    assert [e for e in events if e[0] in lifecycle] == [
        ("opened", REPORTER),
        ("severity_changed", TECH),
        ("update", TECH),
        ("status_changed", TECH),
        ("resolved", LEAD),
        ("closed", LEAD),
    ]


def test_an_admin_may_act_on_any_incident(stack: Stack) -> None:
    channel = stack.open()
    stack.driver.slash(ADMIN, channel.id, "sev 4")
    assert stack.texts(channel.id)[-1] == f":rotating_light: <@{ADMIN}> changed the severity from *SEV2* to *SEV4*."


def test_status_timeline_list_and_help_answer_only_the_asker(stack: Stack) -> None:
    channel = stack.open("complaint sev2 Card payments failing")
    general = stack.sandbox.channel_by_name("general")
    assert general is not None
    before = len(stack.sandbox.messages)

    status = stack.driver.slash(REPORTER, channel.id, "status")
    assert status.json["blocks"][0]["text"]["text"] == "#1 Card payments failing"
    # outside the incident's channel its details are for participants (and admins) only
    refused = stack.driver.slash(OUTSIDER, general.id, "timeline 1")
    assert refused.text == (
        f"Only participants (<#{channel.id}>'s members, the reporter and role owners) or a playbook admin can read "
        f"the timeline of #1. Ask to be invited to <#{channel.id}>."
    )
    timeline = stack.driver.slash(REPORTER, general.id, "timeline 1")
    assert timeline.text.startswith("*Timeline of #1*")
    assert f"<@{REPORTER}> — opened it (SEV2 complaint): Card payments failing" in timeline.text
    listing = stack.driver.slash(OUTSIDER, general.id, "list")
    assert listing.text.splitlines()[0] == "*Open incidents* (1)"
    assert f"*#1* SEV2 complaint — Card payments failing — reported — <#{channel.id}> — lead <@{LEAD}>" in listing.text
    help_text = stack.driver.slash(OUTSIDER, general.id, "help").text
    for command in ("open", "assign", "sev", "update", "resolve", "close", "status", "timeline", "list", "repair"):
        assert f"`/incident {command}" in help_text
    assert "Example: `/incident assign tech @alice`" in help_text
    assert len(stack.sandbox.messages) == before  # nothing was posted for everyone


def test_list_says_so_when_nothing_is_open(stack: Stack) -> None:
    general = stack.sandbox.channel_by_name("general")
    assert general is not None
    assert stack.driver.slash(OUTSIDER, general.id, "list").text == (
        "No open incidents. Report one with `/incident open &lt;kind&gt; [sev] &lt;title&gt;`."
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("open meltdown sev1 Everything", "Unknown kind `meltdown`. Kinds: complaint, outage, surge, security."),
        ("open complaint sev7 Card failing", "Unknown severity `sev7`. Use one of sev1, sev2, sev3, sev4"),
        ("open complaint sev2", "Give the incident a title: `/incident open complaint sev2 Card payments failing`."),
        ("open complaint cat:weather Storm", "Unknown category `weather` for complaint. Categories: technical"),
        ("frobnicate", "I don't know `frobnicate`. Type `/incident help` for every command."),
        ("assign tech", "Say which role and who: `/incident assign tech @alice` (or `me`)."),
    ],
)
def test_malformed_commands_are_answered_in_the_ack_with_what_to_type(stack: Stack, text: str, expected: str) -> None:
    general = stack.sandbox.channel_by_name("general")
    assert general is not None
    reply = stack.driver.slash(REPORTER, general.id, text)
    assert reply.status == 200
    assert reply.json["response_type"] == "ephemeral"
    assert reply.text.startswith(expected)
    assert not any(c.name.startswith("inc-") for c in stack.sandbox.channels.values())


def test_unknown_role_is_refused_with_the_list_of_roles(stack: Stack) -> None:
    channel = stack.open()
    reply = stack.driver.slash(LEAD, channel.id, f"assign wizard <@{TECH}>")
    assert reply.text == (
        "Unknown role `wizard`. Roles: lead, tech_support, customer_comms, legal_compliance, pr, risk_control, "
        "finance, marketing, hr. Example: `/incident assign tech @alice`."
    )


def test_a_user_who_does_not_exist_is_refused(stack: Stack) -> None:
    channel = stack.open()
    stack.driver.slash(LEAD, channel.id, "assign tech <@UNOBODY0001|ghost>")
    assert last_ephemeral(stack, LEAD) == (
        "I can't find <@UNOBODY0001> in this workspace. Mention them with @ so Slack completes the name."
    )
    stack.driver.slash(LEAD, channel.id, "assign tech @ghost")
    assert last_ephemeral(stack, LEAD).startswith("I can't find @ghost in this workspace.")
    assert f"*Tech support*: <@{TECH}>" in roles_text(stack, channel.id)


def test_commands_that_need_an_incident_channel_say_so_elsewhere(stack: Stack) -> None:
    stack.open()
    general = stack.sandbox.channel_by_name("general")
    assert general is not None
    for text in ("sev 1", "update hello", "resolve done", "close", f"assign tech <@{TECH}>", "status"):
        stack.driver.slash(LEAD, general.id, text)
        assert last_ephemeral(stack, LEAD).startswith("This isn't an incident channel."), text


def test_a_user_who_is_not_a_responder_is_refused_and_told_who_can(stack: Stack) -> None:
    channel = stack.open()
    for text in ("sev 1", "resolve done", "close"):
        stack.driver.slash(OUTSIDER, channel.id, text)
        message = last_ephemeral(stack, OUTSIDER)
        assert message.startswith(f"Only the lead (<@{LEAD}>), role owners (<@{TECH}>) or a playbook admin can "), text
    stack.driver.slash(OUTSIDER, channel.id, f"assign tech <@{OUTSIDER}>")
    assert last_ephemeral(stack, OUTSIDER) == (
        f"*Tech support* is already taken by <@{TECH}>. "
        f"Only the lead (<@{LEAD}>), the role's holder (<@{TECH}>) or a playbook admin can reassign roles in #1."
    )
    assert channel.topic.startswith("SEV2")
    with stack.bot.services.db() as s:
        incident = get_incident(s, 1)
        assert incident is not None and incident.status == "reported"


def test_illegal_transitions_are_refused_with_a_reason(stack: Stack) -> None:
    channel = stack.open()
    stack.driver.slash(LEAD, channel.id, "close")
    assert (
        last_ephemeral(stack, LEAD)
        == "#1 is reported; resolve it first with `/incident resolve <summary>`, then close it."
    )
    stack.driver.slash(LEAD, channel.id, "resolve Fixed")
    stack.driver.slash(LEAD, channel.id, "resolve Fixed again")
    assert last_ephemeral(stack, LEAD) == (
        "#1 is already resolved; only a reported or investigating incident can be resolved."
    )
    stack.driver.slash(LEAD, channel.id, "sev 1")
    assert last_ephemeral(stack, LEAD) == "#1 is resolved; you can no longer change the severity of it."
    stack.driver.slash(LEAD, channel.id, "close")
    assert last_ephemeral(stack, LEAD).startswith("The review of #1 is not complete: the lead marks it done with")
    stack.driver.slash(LEAD, channel.id, "review done")
    stack.driver.slash(LEAD, channel.id, "close")
    stack.driver.slash(LEAD, channel.id, "close")
    assert last_ephemeral(stack, LEAD) == "#1 is already closed."
    stack.driver.slash(LEAD, channel.id, "update one more thing")
    assert last_ephemeral(stack, LEAD) == "#1 is closed; updates are no longer recorded."


def test_an_unexpected_failure_shows_a_reference_not_the_exception(stack: Stack) -> None:
    channel = stack.open()
    stack.driver.slash(LEAD, channel.id, "status")  # the bot knows LEAD's language now (users.info, remembered)
    stack.sandbox.fail("users.info", error="account_inactive")  # not a user error the bot knows
    stack.driver.slash(LEAD, channel.id, f"assign tech <@{OUTSIDER}>")
    message = last_ephemeral(stack, LEAD)
    assert message.startswith("Something went wrong (ref ")
    assert message.endswith("); nothing was changed. Try again, or give the ref to an admin.")
    assert "account_inactive" not in message
    assert f"*Tech support*: <@{TECH}>" in roles_text(stack, channel.id)
