"""Customer notices end to end: draft, edit, approve and publish through Slack, received by a real SMTP
server, a webhook endpoint, a Slack channel and the bot's own status page."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from bot.sandbox.driver import click_button
from bot.sandbox.server import Message
from bot.slack.ids import INPUT_ACTION, ActionId, BlockId, CallbackId
from store.models import Deadline, Notice, NoticeDelivery
from store.queries import list_timeline
from tests.conftest import ADMIN, COMMS, LEAD, LEGAL, OUTSIDER, TECH, Stack
from tests.notice_targets import SmtpServer, WebhookReceiver, wire_targets

SECRET = "webhook-signing-secret"
CARD = "6222021234567890123"


@dataclass
class Targets:
    hooks: WebhookReceiver
    smtp: SmtpServer


@pytest.fixture
def targets(monkeypatch: pytest.MonkeyPatch, stack: Stack) -> Iterator[Targets]:
    """Every channel of the shipped playbook wired to a real receiver, through the environment as in production."""
    hooks, smtp = WebhookReceiver(), SmtpServer()
    wire_targets(monkeypatch, hooks, "social", "hotline", "complaints", smtp=smtp, secret=SECRET)
    stack.sandbox.add_channel("announcements", [stack.sandbox.bot_user_id, LEAD, COMMS])
    try:
        yield Targets(hooks, smtp)
    finally:
        hooks.close()
        smtp.close()


def preview(stack: Stack, channel: str) -> Message:
    return next(
        m
        for m in reversed(stack.sandbox.channel_messages(channel))
        if m.blocks and m.blocks[0].get("type") == "header" and "Customer notice" in m.blocks[0]["text"]["text"]
    )


def preview_status(stack: Stack, channel: str) -> str:
    message = preview(stack, channel)
    return str(next(b for b in message.blocks if b["type"] == "context")["elements"][0]["text"])


def sections(message: Message) -> list[str]:
    return [b["text"]["text"] for b in message.blocks if b["type"] == "section"]


def get(stack: Stack, path: str) -> bytes:
    with urllib.request.urlopen(stack.http.url + path, timeout=10) as response:
        return bytes(response.read())


def status_json(stack: Stack) -> dict[str, Any]:
    return dict(json.loads(get(stack, "/status.json")))


def last_ephemeral(stack: Stack, user: str) -> str:
    texts = stack.ephemeral_texts(user)
    return texts[-1] if texts else ""


def edit_notice(stack: Stack, user: str, channel: str, changes: dict[str, str]) -> None:
    """Click Edit, then submit the modal with some boxes changed (block ids are notice:<channel>:<locale>)."""
    before = set(stack.sandbox.views)
    click_button(stack.driver, user, channel, preview(stack, channel).ts, "Edit")
    (view_id,) = set(stack.sandbox.views) - before
    view = stack.sandbox.views[view_id]
    assert view["callback_id"] == CallbackId.EDIT_NOTICE
    values = {}
    for block in view["blocks"]:
        if block["type"] == "input":
            text = changes.get(block["block_id"], block["element"]["initial_value"])
            values[block["block_id"]] = {"value": {"type": "plain_text_input", "value": text}}
    reply = stack.driver.submit_view(user, view_id, values)
    assert reply.status == 200 and not reply.body, reply.body


def test_draft_edit_approve_publish_reaches_every_channel_in_both_locales(stack: Stack, targets: Targets) -> None:
    # An outage is public: it uses the status page, social media, hotline, e-mail and the internal broadcast.
    channel = stack.open(f"outage sev2 Card {CARD} payments failing").id
    stack.driver.slash(LEAD, channel, f"assign pr <@{LEGAL}>")  # the outage's approving role (the kind has no legal)
    stack.driver.slash(LEAD, channel, "notice initial")

    draft = preview(stack, channel)
    shown = sections(draft)
    assert len(shown) == 10  # five channels, two locales
    assert shown[0].startswith(
        "*Status page* · zh-CN\n>【服务公告】系统服务异常\n>尊敬的客户：我行于2026-11-24 10:00发现Card "
    )
    assert any(s.startswith("*E-mail* · en\n>Example Bank service notice: Service disruption") for s in shown)
    assert CARD not in json.dumps(draft.blocks)
    assert preview_status(stack, channel) == (
        f":hourglass: Draft. SEV2 notices need an approval by PR (<@{LEGAL}>) "
        "(not the drafter) before they are published."
    )

    click_button(stack.driver, LEGAL, channel, draft.ts, "Approve")
    assert preview_status(stack, channel).startswith(f":white_check_mark: Approved by <@{LEGAL}> at 2026-11-24 10:00")

    edited = (
        f"Dear customer, card payments are failing for some customers (e.g. card {CARD}) "
        "<b>since 10:00</b> & we are on it."
    )
    edit_notice(stack, LEAD, channel, {"notice:status_page:en": edited})
    assert stack.texts(channel)[-1] == (
        f":pencil2: <@{LEAD}> edited the approved initial notice; it needs a new approval."
    )
    assert preview_status(stack, channel).startswith(":hourglass: Draft.")
    click_button(stack.driver, LEAD, channel, draft.ts, "Publish")
    assert last_ephemeral(stack, LEAD) == (
        f"#1 is SEV2: its notices need an approval by PR (<@{LEGAL}>) or a playbook admin before they are published."
    )
    assert status_json(stack)["incidents"] == [] and targets.hooks.received == []

    click_button(stack.driver, LEGAL, channel, draft.ts, "Approve")
    click_button(stack.driver, LEAD, channel, draft.ts, "Publish")

    assert stack.texts(channel)[-1] == (
        f":loudspeaker: <@{LEAD}> published the *initial* notice:\n"
        ":white_check_mark: Status page: published at /status\n"
        ":white_check_mark: Social media: http 200\n"
        ":white_check_mark: Hotline script: http 200\n"
        ":white_check_mark: E-mail: sent to 1 recipient\n"
        ":white_check_mark: Internal broadcast: posted in #announcements"
    )
    assert preview_status(stack, channel).startswith(f":loudspeaker: Published by <@{LEAD}>")
    assert not [b for b in preview(stack, channel).blocks if b["type"] == "actions"]  # no buttons once published

    # Webhooks: one signed POST per system, both locales, identifiers masked.
    for path, opening in (("/social", "【示例银行服务公告】"), ("/hotline", "您好，这里是示例银行客服热线")):
        (hook,) = targets.hooks.to(path)
        assert hook.signed_by(SECRET) and not hook.signed_by("another-secret")
        assert hook.json["incident"] == 1 and hook.json["stage"] == "initial"
        assert hook.json["texts"]["zh-CN"].startswith(opening)
        assert hook.json["texts"]["en"]
        assert CARD not in hook.body.decode()

    # E-mail: a real SMTP conversation, with login, a text and an HTML part, both locales.
    (message,) = targets.smtp.inbox.messages
    assert targets.smtp.inbox.logins == [("notices", "smtp-secret")]
    assert targets.smtp.inbox.envelopes == [("notices@example-bank.cn", ["customer-notices@example-bank.cn"])]
    assert message["Subject"] == "【示例银行】服务公告：系统服务异常 / Example Bank service notice: Service disruption"
    text_part = message.get_body(("plain",))
    html_part = message.get_body(("html",))
    assert text_part is not None and html_part is not None
    text, html = text_part.get_content(), html_part.get_content()
    assert text.startswith("尊敬的客户：\n\n我行于2026-11-24 10:00发现Card ")
    assert "Dear customer,\n\nAt 2026-11-24 10:00 we identified: Card " in text
    assert '<section lang="zh-CN">' in html and '<section lang="en"' in html
    assert CARD not in text and CARD not in html

    # The internal broadcast in Slack, and the status page with the edited English text, escaped and masked.
    assert stack.texts("announcements")[0].startswith("【内部通报】#1 SEV2 系统服务异常：Card ")
    (incident,) = status_json(stack)["incidents"]
    texts = incident["notices"][0]["texts"]
    assert texts["en"].startswith("Dear customer, card payments are failing for some customers (e.g. card ")
    assert CARD not in texts["en"] and "<b>since 10:00</b> &amp; we are on it." not in texts["en"]
    page = get(stack, "/status").decode()
    assert "&lt;b&gt;since 10:00&lt;/b&gt; &amp; we are on it." in page and "<b>since" not in page

    # The record: who approved which text and every delivery (the complaint's first response met by a
    # notice is in test_a_complaint_is_answered_to_its_customer_and_never_on_the_status_page).
    with stack.bot.services.db() as s:
        events = [(e.event, e.actor_id) for e in list_timeline(s, 1) if e.event.startswith("notice_")]
        approvals = [e.data for e in list_timeline(s, 1) if e.event == "notice_approved"]
        deliveries = s.scalars(select(NoticeDelivery)).all()
    assert events == [
        ("notice_drafted", LEAD),
        ("notice_approved", LEGAL),
        ("notice_edited", LEAD),
        ("notice_approved", LEGAL),
        ("notice_published", LEAD),
    ]
    assert approvals[1]["texts"]["status_page"]["en"] == texts["en"]
    assert approvals[0]["digest"] != approvals[1]["digest"]
    assert sorted((d.channel, d.outcome) for d in deliveries) == [
        ("email", "delivered"),
        ("hotline", "delivered"),
        ("internal", "delivered"),
        ("social", "delivered"),
        ("status_page", "delivered"),
    ]


def test_an_unapproved_sev1_notice_cannot_be_published(stack: Stack, targets: Targets) -> None:
    channel = stack.open("outage sev1 Mobile banking down").id
    stack.driver.slash(LEAD, channel, "notice initial status_page social en")
    draft = preview(stack, channel)
    assert [s.split("\n")[0] for s in sections(draft)] == ["*Status page* · en", "*Social media* · en"]
    notice_id = next(b for b in draft.blocks if b["type"] == "actions")["elements"][0]["value"]

    click_button(stack.driver, LEAD, channel, draft.ts, "Publish")
    assert last_ephemeral(stack, LEAD) == (
        "#1 is SEV1: its notices need an approval by PR (nobody yet) or a playbook admin before they are published."
    )
    click_button(stack.driver, TECH, channel, draft.ts, "Approve")
    assert last_ephemeral(stack, TECH) == "Only PR (nobody yet) or a playbook admin can approve notices for #1."
    assert status_json(stack)["incidents"] == [] and targets.hooks.received == []

    stack.driver.slash(LEAD, channel, f"assign pr <@{COMMS}>")
    click_button(stack.driver, COMMS, channel, draft.ts, "Approve")
    click_button(stack.driver, OUTSIDER, channel, draft.ts, "Publish")  # approved, but not a responder
    assert last_ephemeral(stack, OUTSIDER).startswith(f"Only the lead (<@{LEAD}>), role owners (")
    click_button(stack.driver, TECH, channel, draft.ts, "Publish")
    assert stack.texts(channel)[-1].startswith(f":loudspeaker: <@{TECH}> published the *initial* notice:")
    assert [n["texts"]["en"][:16] for n in status_json(stack)["incidents"][0]["notices"]] == ["[Service notice]"]

    stack.driver.click(TECH, channel, draft.ts, ActionId.PUBLISH_NOTICE, notice_id)  # a stale second click
    assert last_ephemeral(stack, TECH) == f"This notice is already published by <@{TECH}>; draft a new one to say more."
    assert len(targets.hooks.to("/social")) == 1


def test_a_broken_webhook_is_retried_and_reported_while_the_others_go_out(stack: Stack, targets: Targets) -> None:
    targets.hooks.broken.add("/social")
    targets.hooks.fail["/hotline"] = 1
    channel = stack.open("outage sev3 Statements not loading").id
    stack.join(channel, COMMS)
    stack.driver.slash(COMMS, channel, "assign comms me")
    stack.driver.slash(COMMS, channel, "notice initial")
    before = stack.clock.now()
    click_button(stack.driver, COMMS, channel, preview(stack, channel).ts, "Publish")  # sev3: no approval needed

    assert stack.texts(channel)[-1] == (
        f":loudspeaker: <@{COMMS}> published the *initial* notice:\n"
        ":white_check_mark: Status page: published at /status\n"
        ":x: Social media: http 500 after 3 attempts\n"
        ":white_check_mark: Hotline script: http 200 after 2 attempts\n"
        ":white_check_mark: E-mail: sent to 1 recipient\n"
        ":white_check_mark: Internal broadcast: posted in #announcements\n"
        "Fix the failed targets and draft the notice again for them, e.g. `/incident notice initial social`."
    )
    assert len(targets.hooks.to("/social")) == 3 and len(targets.hooks.to("/hotline")) == 2
    assert (stack.clock.now() - before).total_seconds() == pytest.approx(0.5 + 1.0 + 0.5)  # backoff, on the clock
    assert len(targets.smtp.inbox.messages) == 1
    assert status_json(stack)["incidents"][0]["status"] == "ongoing"

    # Resending to the failed target alone, once it works again.
    targets.hooks.broken.clear()
    stack.driver.slash(COMMS, channel, "notice initial social")
    click_button(stack.driver, COMMS, channel, preview(stack, channel).ts, "Publish")
    assert stack.texts(channel)[-1] == (
        f":loudspeaker: <@{COMMS}> published the *initial* notice:\n:white_check_mark: Social media: http 200"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("notice", "Say which notice: `/incident notice <initial|update|resolved> [channels] [locales]`."),
        (
            "notice initail",
            "Unknown stage `initail`. Did you mean `initial`? Stages: initial, update, resolved, diversion.",
        ),
        (
            "notice initial fax",
            "`fax` is neither a notice channel (status_page, social, hotline, complaint_system, email,",
        ),
        ("notice update", "There is no progress to report yet: post one with `/incident update <text>`."),
        ("notice resolved", "#1 is not resolved yet; draft the `update` notice instead."),
    ],
)
def test_notice_commands_that_cannot_be_done_say_what_to_type(stack: Stack, text: str, expected: str) -> None:
    channel = stack.open().id
    stack.driver.slash(LEAD, channel, text)
    assert last_ephemeral(stack, LEAD).startswith(expected)
    with pytest.raises(StopIteration):  # no preview was posted
        preview(stack, channel)


def test_a_notice_outside_an_incident_channel_or_by_an_outsider_is_refused(stack: Stack) -> None:
    channel = stack.open().id
    general = stack.sandbox.channel_by_name("general")
    assert general is not None
    stack.driver.slash(LEAD, general.id, "notice initial")
    assert last_ephemeral(stack, LEAD).startswith("This isn't an incident channel.")
    stack.driver.slash(OUTSIDER, channel, "notice initial")
    assert last_ephemeral(stack, OUTSIDER).startswith(f"Only the lead (<@{LEAD}>), role owners (")


def test_an_admin_may_approve_and_an_empty_edit_is_refused_in_the_modal(stack: Stack, targets: Targets) -> None:
    channel = stack.open("complaint sev2 Card payments failing").id
    stack.driver.slash(LEAD, channel, "notice initial email")
    draft = preview(stack, channel)
    before = set(stack.sandbox.views)
    click_button(stack.driver, LEAD, channel, draft.ts, "Edit")
    (view_id,) = set(stack.sandbox.views) - before
    reply = stack.driver.submit_view(
        LEAD, view_id, {"notice:email:zh-CN": {"value": {"type": "plain_text_input", "value": "  "}}}
    )
    assert reply.json == {
        "response_action": "errors",
        "errors": {"notice:email:zh-CN": "A notice text cannot be empty."},
    }
    click_button(stack.driver, ADMIN, channel, draft.ts, "Approve")
    assert preview_status(stack, channel).startswith(f":white_check_mark: Approved by <@{ADMIN}>")


# ---- public surfaces: who a notice is for, what it may say, and where it may go ------------------------------

CHINESE_COMPLAINT = f"客户卡号{CARD}被重复扣款，电话13812345678"


def open_complaint_with_reference(stack: Stack, title: str, customer_ref: str, severity: str = "sev3") -> str:
    """Report a complaint through the modal, the way a customer reference (the customer's contact) is given."""
    general = stack.sandbox.channel_by_name("general")
    assert general is not None
    before = set(stack.sandbox.views)
    stack.driver.slash(COMMS, general.id, "open")
    (view_id,) = set(stack.sandbox.views) - before

    def value(text: str) -> dict[str, Any]:
        return {INPUT_ACTION: {"type": "plain_text_input", "value": text}}

    def choice(option: str) -> dict[str, Any]:
        return {INPUT_ACTION: {"type": "static_select", "selected_option": {"value": option}}}

    reply = stack.driver.submit_view(
        COMMS,
        view_id,
        {
            BlockId.KIND: choice("complaint"),
            BlockId.SEVERITY: choice(severity),
            BlockId.TITLE: value(title),
            BlockId.CATEGORY: value(""),
            BlockId.DESCRIPTION: value(""),
            BlockId.CUSTOMER_REF: value(customer_ref),
        },
    )
    assert reply.status == 200 and not reply.body, reply.body
    return stack.incident_channel(1).id


def test_a_complaint_is_answered_to_its_customer_and_never_on_the_status_page(stack: Stack, targets: Targets) -> None:
    # (identifiers glued to CJK text are masked by bot/core/text.py's rules; that is tested with masking)
    channel = open_complaint_with_reference(
        stack, CHINESE_COMPLAINT, "客户邮箱 zhang.san@example.com，电话 13812345678"
    )
    stack.join(channel, COMMS)
    stack.driver.slash(COMMS, channel, "assign comms me")

    help_text = stack.driver.slash(COMMS, channel, "help").text
    assert (
        "Channels: complaint → hotline, email, complaint_system, internal; outage → status_page, social," in help_text
    )

    # Asking for the status page (or social media) is refused, saying which channels a complaint uses.
    for asked in ("status_page", "status email", "social"):
        stack.driver.slash(COMMS, channel, f"notice initial {asked}")
        refusal = last_ephemeral(stack, COMMS)
        assert refusal.startswith("Customer complaint notices do not go to `"), refusal
        assert "this kind uses `hotline`, `email`, `complaint_system`, `internal`" in refusal
        assert "A single customer's complaint is answered to that customer, never in public." in refusal
        assert refusal.endswith("Type `/incident notice initial` for all of them, or name some of those.")
    with pytest.raises(StopIteration):
        preview(stack, channel)

    stack.driver.slash(COMMS, channel, "notice initial")
    draft = preview(stack, channel)
    assert [s.split("\n")[0] for s in sections(draft)] == [
        f"*{name}* · {locale}"
        for name in ("Hotline script", "E-mail", "Complaint system", "Internal broadcast")
        for locale in ("zh-CN", "en")
    ]
    shown = sections(draft)
    assert shown[0].startswith(
        "*Hotline script* · zh-CN\n>您好，这里是示例银行客户服务中心。关于您于2026-11-24 10:00反映"
    )
    assert shown[3].startswith("*E-mail* · en\n>Example Bank: we have received your complaint (reference #1)")
    click_button(stack.driver, COMMS, channel, draft.ts, "Publish")  # SEV3: no approval needed

    assert stack.texts(channel)[-1] == (
        f":loudspeaker: <@{COMMS}> published the *initial* notice:\n"
        ":white_check_mark: Hotline script: http 200\n"
        ":white_check_mark: E-mail: sent to the customer (z***@example.com)\n"
        ":white_check_mark: Complaint system: http 200\n"
        ":white_check_mark: Internal broadcast: posted in #announcements"
    )
    # The e-mail went to the customer alone, not to the public notices list.
    assert targets.smtp.inbox.envelopes == [("notices@example-bank.cn", ["zhang.san@example.com"])]
    (message,) = targets.smtp.inbox.messages
    assert (
        message["Subject"]
        == "【示例银行】您的投诉已受理（编号#1） / Example Bank: we have received your complaint (reference #1)"
    )
    # The complaint system got a signed POST with both locales and a masked hint of the customer.
    (hook,) = targets.hooks.to("/complaints")
    assert hook.signed_by(SECRET)
    assert hook.json["channel"] == "complaint_system" and hook.json["incident"] == 1
    assert hook.json["texts"]["zh-CN"].startswith("投诉#1（客户投诉）已于2026-11-24 10:00受理：客户卡号")
    assert hook.json["texts"]["en"].startswith("Complaint #1 (Customer complaint) registered at 2026-11-24 10:00")
    assert hook.json["customer_ref"] == "客户邮箱 z***@example.com，电话 138****5678"
    assert targets.hooks.to("/social") == [] and targets.hooks.to("/hotline")

    # Nothing of it on the public status page: HTML, JSON and Atom, and the banner says all is well.
    assert status_json(stack)["incidents"] == [] and status_json(stack)["status"] == "ok"
    page = get(stack, "/status?lang=en").decode()
    assert '<div class="banner ok" id="banner">All services are operating normally</div>' in page
    assert "complaint" not in page.lower()
    assert b"<entry" not in get(stack, "/status/feed.atom")

    # Answering the customer meets the complaint's first-response deadline.
    with stack.bot.services.db() as s:
        first_response = s.scalars(select(Deadline).where(Deadline.key == "first_response")).one()
    assert first_response.state == "met"


def test_a_complaint_without_a_customer_address_says_why_no_email_was_sent(stack: Stack, targets: Targets) -> None:
    channel = stack.open(f"complaint sev3 {CHINESE_COMPLAINT}").id
    stack.join(channel, COMMS)
    stack.driver.slash(COMMS, channel, "assign comms me")
    stack.driver.slash(COMMS, channel, "notice initial email hotline")
    click_button(stack.driver, COMMS, channel, preview(stack, channel).ts, "Publish")
    assert stack.texts(channel)[-1] == (
        f":loudspeaker: <@{COMMS}> published the *initial* notice:\n"
        ":x: E-mail: not sent: #1 has no customer e-mail address (its customer reference holds none); "
        "reach the customer by the hotline or the complaint system\n"
        ":white_check_mark: Hotline script: http 200"
    )
    assert targets.smtp.inbox.messages == []  # never to the public notices list instead


def test_a_complaint_published_on_the_status_page_before_kinds_had_channels_is_not_shown(
    stack: Stack, targets: Targets
) -> None:
    complaint = stack.open(f"complaint sev3 {CHINESE_COMPLAINT}").id
    outage = stack.open("outage sev3 Transfers delayed").id
    now = stack.clock.now()
    with stack.bot.services.db.begin() as s:  # a complaint notice the previous release put on the status page
        s.add(
            Notice(
                incident_id=1,
                stage="initial",
                texts={"status_page": {"zh-CN": "【服务公告】客户投诉 OLD-COMPLAINT", "en": "OLD-COMPLAINT"}},
                state="published",
                created_by=COMMS,
                created_at=now,
                published_by=COMMS,
                published_at=now,
            )
        )
    assert status_json(stack)["incidents"] == [] and status_json(stack)["status"] == "ok"
    stack.driver.slash(TECH, outage, "notice initial status_page")
    click_button(stack.driver, TECH, outage, preview(stack, outage).ts, "Publish")

    data = status_json(stack)
    assert [i["number"] for i in data["incidents"]] == [2] and data["status"] == "degraded"
    for body in (get(stack, "/status").decode(), get(stack, "/status/feed.atom").decode(), json.dumps(data)):
        assert "OLD-COMPLAINT" not in body and "Transfers delayed" in body
    assert complaint  # the complaint is still an incident; only the public surfaces leave it out


def test_a_complaint_draft_for_the_status_page_from_before_is_not_published_there(
    stack: Stack, targets: Targets
) -> None:
    channel = stack.open(f"complaint sev3 {CHINESE_COMPLAINT}").id
    stack.join(channel, COMMS)
    stack.driver.slash(COMMS, channel, "assign comms me")
    with stack.bot.services.db.begin() as s:  # drafted by the previous release, when complaints went public
        notice = Notice(
            incident_id=1,
            stage="initial",
            texts={"status_page": {"en": "OLD-DRAFT"}, "internal": {"en": "Internal OLD-DRAFT"}},
            state="draft",
            created_by=COMMS,
            created_at=stack.clock.now(),
        )
        s.add(notice)
        s.flush()
        notice_id = str(notice.id)
    card = stack.sandbox.channel_messages(channel)[0]
    stack.driver.click(COMMS, channel, card.ts, ActionId.PUBLISH_NOTICE, notice_id)
    assert stack.texts(channel)[-1] == (
        f":loudspeaker: <@{COMMS}> published the *initial* notice:\n"
        ":x: Status page: not sent: Customer complaint notices do not go to this channel\n"
        ":white_check_mark: Internal broadcast: posted in #announcements"
    )
    assert status_json(stack)["incidents"] == []


@pytest.mark.parametrize("kind", ["outage", "complaint"])
def test_an_internal_update_never_appears_in_any_notice_text(stack: Stack, targets: Targets, kind: str) -> None:
    """An engineer's English update (and resolution summary) stays internal; zh-CN and en customers get the
    templates' own wording, which the drafter edits in the modal."""
    channel = stack.open(f"{kind} sev3 Card payments failing").id
    stack.join(channel, COMMS)
    stack.driver.slash(COMMS, channel, "assign comms me")
    stack.driver.slash(TECH, channel, "update ZEBRAMARKER root cause: gateway pool exhausted, restarting nodes")
    stack.driver.slash(COMMS, channel, "notice update")
    draft = preview(stack, channel)
    assert len(sections(draft)) == (8 if kind == "complaint" else 10)
    assert "ZEBRAMARKER" not in json.dumps(draft.blocks, ensure_ascii=False)
    zh = next(s for s in sections(draft) if " · zh-CN" in s.split("\n")[0] and "Hotline" in s)
    assert "仍在" in zh  # a customer-facing sentence in the customer's language instead
    click_button(stack.driver, COMMS, channel, draft.ts, "Publish")

    stack.driver.slash(LEAD, channel, "resolve ZEBRAMARKER pool size raised; nodes back")
    stack.driver.slash(COMMS, channel, "notice resolved")
    assert "ZEBRAMARKER" not in json.dumps(preview(stack, channel).blocks, ensure_ascii=False)
    click_button(stack.driver, COMMS, channel, preview(stack, channel).ts, "Publish")

    published = [r.body.decode() for r in targets.hooks.received]
    published += [str(m) for m in targets.smtp.inbox.messages]
    published += stack.texts("announcements")
    published += [get(stack, "/status").decode(), get(stack, "/status/feed.atom").decode()]
    with stack.bot.services.db() as s:
        published += [json.dumps(n.texts, ensure_ascii=False) for n in s.scalars(select(Notice))]
    assert len(published) >= 8
    for text in published:
        assert "ZEBRAMARKER" not in text


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_webhook_answering_with_a_redirect_is_a_failure_and_is_not_followed(
    stack: Stack, targets: Targets, status: int
) -> None:
    targets.hooks.redirect["/social"] = (status, "/moved")
    channel = stack.open("outage sev3 Transfers delayed").id
    stack.driver.slash(TECH, channel, "notice initial social hotline")
    click_button(stack.driver, TECH, channel, preview(stack, channel).ts, "Publish")
    assert stack.texts(channel)[-1] == (
        f":loudspeaker: <@{TECH}> published the *initial* notice:\n"
        f":x: Social media: http {status}: a redirect, not followed; set the webhook URL to its final address\n"
        ":white_check_mark: Hotline script: http 200\n"
        "Fix the failed targets and draft the notice again for them, e.g. `/incident notice initial social`."
    )
    assert len(targets.hooks.to("/social")) == 1  # asked once, not retried
    assert targets.hooks.to("/moved") == []  # and the signed body never went where it pointed
    with stack.bot.services.db() as s:
        outcomes = {d.channel: d.outcome for d in s.scalars(select(NoticeDelivery))}
    assert outcomes == {"social": "failed", "hotline": "delivered"}
