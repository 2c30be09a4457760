"""Someone is always in charge, and only the right people act: each case seen on a fresh install, replayed.

The permission matrix (tests/test_permissions.py) covers every action × every kind of person; these tests
follow the stories that went wrong, end to end.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.core.clock import utc
from bot.core.config import load_playbook_text
from bot.sandbox.driver import click_button
from bot.sandbox.server import Message
from bot.slack.ids import ActionId
from store.models import Deadline, Escalation, Notice, TimelineEvent
from store.queries import get_incident
from tests.conftest import ADMIN, COMMS, LEAD, LEGAL, OUTSIDER, REPORTER, ROOT, TECH, Stack
from tests.notice_targets import WebhookReceiver, wire_targets

TITLE = "客户卡号6222021234567890123被重复扣款，电话13812345678"
LEADERSHIP = "- {name: Leadership group, names: {zh-CN: 预案领导小组}, leadership: true, ack_timeout: 1h}"


def last_ephemeral(stack: Stack, user: str) -> str:
    return stack.ephemeral_texts(user)[-1]


def roles_text(stack: Stack, channel: str) -> str:
    card = stack.sandbox.channel_messages(channel)[0]
    return str(next(b for b in card.blocks if b.get("block_id") == "roles")["text"]["text"])


def events(stack: Stack, name: str) -> list[TimelineEvent]:
    with stack.bot.services.db() as s:
        return list(s.scalars(select(TimelineEvent).where(TimelineEvent.event == name).order_by(TimelineEvent.id)))


def notice_preview(stack: Stack, channel: str) -> Message:
    return next(
        m
        for m in reversed(stack.sandbox.channel_messages(channel))
        if m.blocks and "Customer notice" in str(m.blocks[0].get("text", {}).get("text", ""))
    )


def notice_row(stack: Stack, notice_id: int = 1) -> Notice:
    with stack.bot.services.db() as s:
        row = s.get(Notice, notice_id)
        assert row is not None
        return row


# ---- someone is always in charge ------------------------------------------------------------------------


def test_on_a_fresh_install_the_reporter_leads_and_the_card_says_so(shipped_stack: Stack) -> None:
    stack = shipped_stack
    channel = stack.open(f"complaint sev3 {TITLE}", user=REPORTER).id
    assert f"*Incident lead*: <@{REPORTER}> (the reporter, in charge until they hand over" in roles_text(stack, channel)
    # in charge: the reporter assigns, drafts a notice and resolves, with nobody configured anywhere
    stack.driver.slash(REPORTER, channel, f"assign tech <@{TECH}>")
    assert stack.texts(channel)[-1] == f":bust_in_silhouette: <@{REPORTER}> assigned <@{TECH}> as *Tech support*."
    stack.driver.slash(REPORTER, channel, "notice initial hotline en")
    assert notice_row(stack).created_by == REPORTER
    stack.driver.slash(REPORTER, channel, "resolve 已为客户退款")
    with stack.bot.services.db() as s:
        incident = get_incident(s, 1)
        assert incident is not None and incident.status == "resolved"


def test_the_reporter_hands_the_lead_over(shipped_stack: Stack) -> None:
    stack = shipped_stack
    channel = stack.open(f"outage sev3 {TITLE}").id
    stack.driver.slash(REPORTER, channel, f"assign lead <@{LEAD}>")
    assert f"*Incident lead*: <@{LEAD}>\n" in roles_text(stack, channel) + "\n"
    assert "the reporter, in charge" not in roles_text(stack, channel)
    stack.driver.slash(REPORTER, channel, "sev 1")  # the reporter holds no role any more
    assert last_ephemeral(stack, REPORTER).startswith(f"Only the lead (<@{LEAD}>)")


def test_a_sev1_opened_by_its_lead_does_not_page_the_lead(shipped_stack: Stack) -> None:
    stack = shipped_stack
    channel = stack.open("outage sev1 核心系统无法登录").id
    stack.bot.sweeper.sweep()
    assert not any("Page for #1" in t for t in stack.dm_texts(REPORTER))
    skipped = events(stack, "page_skipped")
    assert [(e.text, e.data.get("why")) for e in skipped[:2]] == [("Owner", "caused it"), ("Team lead", "caused it")]
    # nobody else is configured: the channel is told, and check-config warns about it (below)
    assert any("Nobody is configured for escalation level *Leadership group" in t for t in stack.texts(channel))
    # the lead opened it, so the plan's "lead acknowledges" is met: no reminder or page for it later
    with stack.bot.services.db() as s:
        ack = s.scalar(select(Deadline).where(Deadline.key == "acknowledge"))
        assert ack is not None and (ack.state, ack.closed_by) == ("met", REPORTER)
    stack.advance(minutes=10)  # past the 5-minute acknowledgement deadline (the 30-minute update is not due)
    assert not any("Page for #1" in t or "acknowledges" in t for t in stack.dm_texts(REPORTER))


@pytest.mark.playbook({LEADERSHIP: LEADERSHIP.replace("leadership: true,", f"leadership: true, users: [{ADMIN}],")})
def test_the_lead_raising_to_sev1_is_not_paged_the_next_person_in_the_chain_is(stack: Stack) -> None:
    channel = stack.open("outage sev3 手机银行转账失败").id
    stack.driver.slash(LEAD, channel, "sev 1")
    stack.bot.sweeper.sweep()
    assert not any("*Page for #1*" in t for t in stack.dm_texts(LEAD))
    assert any(t.startswith(":rotating_light: *Page for #1*: severity raised to SEV1") for t in stack.dm_texts(ADMIN))
    with stack.bot.services.db() as s:
        chain = s.scalar(select(Escalation))
        assert chain is not None and chain.caused_by == LEAD
    # someone else raising it pages the lead as before
    other = stack.open("outage sev3 柜面系统缓慢").id
    stack.driver.slash(TECH, other, "sev 2")
    stack.bot.sweeper.sweep()
    assert any(t.startswith(":rotating_light: *Page for #2*") for t in stack.dm_texts(LEAD))


def test_check_config_warns_about_nobody_in_charge_but_the_shipped_file_loads(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["check-config", str(ROOT / "config.yaml")]) == 0
    out = capsys.readouterr().out
    assert "OK — playbook" in out
    assert "  ! admins: nobody; add Slack user IDs" in out
    assert "  ! roles.lead.default_owners: nobody by default (the reporter leads each incident" in out
    assert "  ! roles.pr.default_owners: nobody by default (it approves notices, so only the lead or an admin" in out
    # the leadership level pages the surge plan's leadership group; the warning says how it falls back
    assert (
        "  ! escalation.levels.2 (Leadership group): pages the leadership group, which names nobody, so the members "
        "of #incident-leadership and the admins are paged; add surge.leaders:"
    ) in out
    assert "reaches nobody" not in out
    assert "escalation.levels.0" not in out and "escalation.levels.1" not in out  # the owner and the lead exist


def test_a_playbook_without_escalation_or_notices_loads_and_defaults_raise_no_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = """
version: "1"
roles:
  commander: {name: Commander, description: Runs it}
  engineer: {name: Engineer, description: Fixes it}
lead_role: commander
severities:
  sev1: {name: Critical, description: Bad}
kinds:
  outage:
    name: Outage
    description: Down
    default_severity: sev1
    roles: [commander, engineer]
    welcome_template: slack/welcome_outage.j2
"""
    playbook = load_playbook_text(text)
    assert playbook.approval_roles == ()  # the default legal_compliance and pr are not in this playbook
    assert [level.name for level in playbook.escalation.levels] == ["Owner"]
    path = tmp_path / "small.yaml"
    path.write_text(text, encoding="utf-8")
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "roles.commander.default_owners: nobody by default (the reporter leads" in out
    assert "notices" not in out and "lead_role" not in out

    # no `lead` role and no lead_role: the problem is named where the user can fix it, not in a default
    path.write_text(text.replace("lead_role: commander\n", ""), encoding="utf-8")
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "add a `lead` role, or name the role that leads with `lead_role:` (commander, engineer)" in err
    assert "lead_role: 'lead' is not one of" not in err


# ---- approval cannot be self-granted --------------------------------------------------------------------


def test_assigning_pr_on_a_complaint_is_refused(stack: Stack) -> None:
    channel = stack.open(f"complaint sev2 {TITLE}").id
    stack.driver.slash(LEAD, channel, "assign pr me")
    assert last_ephemeral(stack, LEAD) == (
        "A customer complaint has no *PR* role. Its roles: lead (Incident lead), customer_comms (Customer comms), "
        "tech_support (Tech support), legal_compliance (Legal &amp; compliance), finance (Finance)."
    )
    assert "PR" not in roles_text(stack, channel)


def test_approving_roles_are_not_self_service(stack: Stack) -> None:
    channel = stack.open("outage sev2 网银登录失败").id
    stack.join(channel, COMMS)
    stack.driver.slash(COMMS, channel, "assign pr me")  # a participant may take open roles, but not this one
    assert (
        last_ephemeral(stack, COMMS)
        == f"Only the lead (<@{LEAD}>) or a playbook admin can assign approving roles in #1."
    )
    stack.driver.slash(LEAD, channel, "assign pr me")  # nor may the lead give it to himself
    assert last_ephemeral(stack, LEAD).startswith("*PR* approves customer notices, so nobody gives it to themselves.")
    assert "*PR*: _unassigned_" in roles_text(stack, channel)
    stack.driver.slash(LEAD, channel, f"assign pr <@{COMMS}>")  # the lead assigns it to someone else
    assert f"*PR*: <@{COMMS}>" in roles_text(stack, channel)


@pytest.mark.playbook(
    {
        "aliases: [public_relations, media, 公关]\n    default_owners: []": (
            f"aliases: [public_relations, media, 公关]\n    default_owners: [{LEGAL}]"
        )
    }
)
def test_the_playbooks_people_hold_approving_roles_from_the_start(stack: Stack) -> None:
    channel = stack.open("outage sev2 网银登录失败").id
    assert f"*PR*: <@{LEGAL}>" in roles_text(stack, channel)


def test_a_lead_cannot_approve_his_own_notice_nor_can_an_approver_who_wrote_it(stack: Stack) -> None:
    channel = stack.open("outage sev2 网银登录失败").id
    stack.driver.slash(LEAD, channel, f"assign pr <@{COMMS}>")
    stack.driver.slash(LEAD, channel, "notice initial status_page en")
    draft = notice_preview(stack, channel)
    click_button(stack.driver, LEAD, channel, draft.ts, "Approve")
    assert last_ephemeral(stack, LEAD) == f"Only PR (<@{COMMS}>) or a playbook admin can approve notices for #1."
    # the approver drafts the next notice: someone else has to approve it
    stack.driver.slash(COMMS, channel, "notice initial status_page en")
    second = notice_preview(stack, channel)
    click_button(stack.driver, COMMS, channel, second.ts, "Approve")
    assert last_ephemeral(stack, COMMS).startswith("You wrote this notice, so someone else approves it")
    assert notice_row(stack, 2).state == "draft"
    # an approver who edited a draft wrote part of it, too
    before = set(stack.sandbox.views)
    click_button(stack.driver, COMMS, channel, draft.ts, "Edit")
    (view_id,) = set(stack.sandbox.views) - before
    values = {"notice:status_page:en": {"value": {"type": "plain_text_input", "value": "我们正在处理网银登录问题。"}}}
    assert stack.driver.submit_view(COMMS, view_id, values).body == ""
    click_button(stack.driver, COMMS, channel, draft.ts, "Approve")
    assert last_ephemeral(stack, COMMS).startswith("You wrote this notice")
    click_button(stack.driver, ADMIN, channel, draft.ts, "Approve")
    assert notice_row(stack, 1).approved_by == ADMIN


def test_an_outsider_cannot_approve_publish_raise_the_severity_or_make_himself_lead(stack: Stack) -> None:
    channel = stack.open(f"complaint sev2 {TITLE}").id
    stack.driver.slash(LEAD, channel, f"assign legal <@{LEGAL}>")
    stack.driver.slash(LEAD, channel, "notice initial hotline en")
    draft = notice_preview(stack, channel)
    stack.join(channel, OUTSIDER)  # even after joining the public channel
    posted = len(stack.sandbox.messages)
    click_button(stack.driver, OUTSIDER, channel, draft.ts, "Approve")
    assert last_ephemeral(stack, OUTSIDER) == (
        f"Only Legal &amp; compliance (<@{LEGAL}>) or a playbook admin can approve notices for #1."
    )
    click_button(stack.driver, OUTSIDER, channel, draft.ts, "Publish")
    assert last_ephemeral(stack, OUTSIDER).startswith(f"Only the lead (<@{LEAD}>), role owners (")
    stack.driver.slash(OUTSIDER, channel, "sev 1")
    assert last_ephemeral(stack, OUTSIDER).startswith(f"Only the lead (<@{LEAD}>), role owners (")
    stack.driver.slash(OUTSIDER, channel, "assign lead me")
    assert last_ephemeral(stack, OUTSIDER) == (
        f"*Incident lead* is already taken by <@{LEAD}>. "
        f"Only the lead (<@{LEAD}>) or a playbook admin can reassign roles in #1."
    )
    assert len(stack.sandbox.messages) == posted
    row = notice_row(stack)
    assert (row.state, row.approved_by, row.published_by) == ("draft", None, None)
    with stack.bot.services.db() as s:
        incident = get_incident(s, 1)
        assert incident is not None and incident.severity == "sev2"
        assert next(a.user_id for a in incident.roles if a.role == "lead") == LEAD


def test_lowering_the_severity_to_publish_does_not_skip_the_approval(stack: Stack) -> None:
    channel = stack.open("outage sev1 核心系统宕机").id
    stack.driver.slash(LEAD, channel, f"assign pr <@{COMMS}>")
    stack.driver.slash(LEAD, channel, "sev 3")
    stack.driver.slash(LEAD, channel, "notice initial status_page en")
    draft = notice_preview(stack, channel)
    click_button(stack.driver, LEAD, channel, draft.ts, "Publish")
    assert last_ephemeral(stack, LEAD) == (
        f"#1 is SEV3 (it has been SEV1): its notices need an approval by PR (<@{COMMS}>) or a playbook admin "
        "before they are published."
    )
    assert notice_row(stack).state == "draft"


def test_an_approval_given_before_the_incident_got_worse_is_void(stack: Stack) -> None:
    channel = stack.open("outage sev2 网银登录失败").id
    stack.driver.slash(LEAD, channel, f"assign pr <@{COMMS}>")
    stack.driver.slash(LEAD, channel, "notice initial status_page en")
    draft = notice_preview(stack, channel)
    click_button(stack.driver, COMMS, channel, draft.ts, "Approve")
    stack.driver.slash(LEAD, channel, "sev 1")
    stack.driver.slash(LEAD, channel, "sev 3")
    click_button(stack.driver, LEAD, channel, draft.ts, "Publish")
    assert last_ephemeral(stack, LEAD).startswith("#1 is SEV3 (it has been SEV1): its notices need an approval")
    click_button(stack.driver, COMMS, channel, draft.ts, "Approve")  # approved again, now at SEV1
    click_button(stack.driver, LEAD, channel, draft.ts, "Publish")
    assert notice_row(stack).published_by == LEAD


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    wire_targets(monkeypatch, receiver, "social", secret="hook-secret")
    try:
        yield receiver
    finally:
        for event in receiver.held.values():
            event.set()
        receiver.close()


def test_a_notice_cannot_be_edited_once_publishing_starts(stack: Stack, hooks: WebhookReceiver) -> None:
    channel = stack.open("outage sev3 转账延迟").id
    stack.driver.slash(LEAD, channel, "notice initial status_page social en")
    draft = notice_preview(stack, channel)
    before = set(stack.sandbox.views)
    click_button(stack.driver, LEAD, channel, draft.ts, "Edit")  # the editor is open before publishing starts
    (view_id,) = set(stack.sandbox.views) - before
    original = notice_row(stack).texts

    release = hooks.held["/social"] = threading.Event()
    stack.driver.click(LEAD, channel, draft.ts, ActionId.PUBLISH_NOTICE, "1", wait=False)
    assert hooks.arrived.wait(30)  # the social webhook has the notice: publishing is under way
    assert notice_row(stack).state == "publishing"
    values = {
        "notice:status_page:en": {"value": {"type": "plain_text_input", "value": "Unapproved text"}},
        "notice:social:en": {"value": {"type": "plain_text_input", "value": "Unapproved text"}},
    }
    # answered in the ack, so the test need not wait for the publishing (held) to finish
    reply = stack.driver.submit_view(TECH, view_id, values, wait=False)
    assert list(reply.json["errors"].values()) == [
        "This notice is being published; its text can no longer change. Draft a new one."
    ]
    release.set()
    stack.bot.executor.wait_idle()
    assert notice_row(stack).state == "published" and notice_row(stack).texts == original
    with urllib.request.urlopen(stack.http.url + "/status.json", timeout=10) as response:
        published = response.read().decode()
    assert (
        "Unapproved text" not in published
        and original["status_page"]["en"][:20] in json.loads(published)["incidents"][0]["notices"][0]["texts"]["en"]
    )


# ---- missing checks -------------------------------------------------------------------------------------


def test_outsiders_cannot_update_snooze_or_repair(stack: Stack) -> None:
    channel = stack.open("outage sev3 转账延迟").id
    general = stack.sandbox.channel_by_name("general")
    assert general is not None
    stack.driver.slash(OUTSIDER, channel, "update 一切正常")  # would meet the cadence and silence its reminders
    assert last_ephemeral(stack, OUTSIDER).startswith(f"Only the lead (<@{LEAD}>), role owners (")
    with stack.bot.services.db() as s:
        cadence = s.scalar(select(Deadline).where(Deadline.key == "status_update"))
        assert cadence is not None and cadence.state == "pending" and utc(cadence.start_at) == stack.clock.now()
        incident = get_incident(s, 1)
        assert incident is not None and incident.status == "reported"
        deadline_id = cadence.id
    stack.driver.click(OUTSIDER, channel, "1.0", ActionId.SNOOZE, str(deadline_id))
    assert last_ephemeral(stack, OUTSIDER) == (
        f"Only the lead (<@{LEAD}>), the person the deadline reminds or a playbook admin can snooze deadlines of #1."
    )
    stack.driver.slash(OUTSIDER, general.id, "repair 1")
    assert last_ephemeral(stack, OUTSIDER).startswith("Only participants (")
    with stack.bot.services.db() as s:
        row = s.get(Deadline, deadline_id)
        assert row is not None and row.snoozes == 0
    assert not events(stack, "repaired") and not events(stack, "update")


def test_an_incidents_details_stay_with_its_participants(stack: Stack) -> None:
    channel = stack.open(f"complaint sev3 {TITLE}").id
    general = stack.sandbox.channel_by_name("general")
    assert general is not None
    for text in ("status 1", "timeline 1", "deadlines 1"):
        refused = stack.driver.slash(OUTSIDER, general.id, text)
        assert refused.text.startswith(f"Only participants (<#{channel}>'s members, the reporter and role owners)")
        assert TITLE[:6] not in refused.body
    stack.join(channel, COMMS)  # a member of the channel reads it from anywhere
    assert stack.driver.slash(COMMS, general.id, "timeline 1").text.startswith("*Timeline of #1*")
    assert stack.driver.slash(ADMIN, general.id, "deadlines 1").text.startswith("*Deadlines of #1*")
    assert stack.driver.slash(REPORTER, general.id, "status 1").json["blocks"][0]["text"]["text"].startswith("#1 ")


@pytest.mark.playbook(
    {
        "    welcome_template: slack/welcome_outage.j2\n": (
            "    welcome_template: slack/welcome_outage.j2\n    visible_to: everyone\n"
        )
    }
)
def test_a_kind_the_playbook_makes_visible_is_readable_by_everyone(stack: Stack) -> None:
    stack.open("outage sev3 转账延迟")
    general = stack.sandbox.channel_by_name("general")
    assert general is not None
    assert stack.driver.slash(OUTSIDER, general.id, "timeline 1").text.startswith("*Timeline of #1*")
    stack.open(f"complaint sev3 {TITLE}")
    assert stack.driver.slash(OUTSIDER, general.id, "timeline 2").text.startswith("Only participants")


def test_an_action_item_owner_without_a_role_marks_their_own_item_done(stack: Stack) -> None:
    channel = stack.open(f"complaint sev3 {TITLE}").id
    stack.driver.slash(LEAD, channel, f"action 增加清算重试告警 <@{OUTSIDER}> 5d")
    stack.driver.slash(LEAD, channel, "resolve 已退款")
    with stack.bot.services.db() as s:
        item = s.scalar(select(Deadline).where(Deadline.owner_user == OUTSIDER))
        assert item is not None
        item_id = item.id
    stack.driver.click(COMMS, channel, "1.0", ActionId.MARK_DONE, str(item_id))  # not theirs
    assert last_ephemeral(stack, COMMS).startswith(f"Only the lead (<@{LEAD}>), role owners (")
    stack.driver.click(OUTSIDER, channel, "1.0", ActionId.MARK_DONE, str(item_id))
    with stack.bot.services.db() as s:
        row = s.get(Deadline, item_id)
        assert row is not None and (row.state, row.closed_by) == ("met", OUTSIDER)
    assert f"<@{OUTSIDER}> marked *增加清算重试告警* done" in stack.texts(channel)[-1]
