"""Block Kit builders: the incident card, the report modal, reminders, pages, ratings and notice drafts.

Built with slack_sdk's model classes, so a builder that breaks one of Slack's rules fails where it is built
(SlackObjectFormationError) instead of as `invalid_blocks` at send time; dicts come out at the boundary
(`to_dict()`). Builders take plain values (CardFacts, not ORM rows) and speak the current language (`_`,
see bot/core/i18n.py): the caller picks it with `use_locale`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    InputBlock,
    MarkdownBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.blocks import (
    Block as SlackBlock,
)
from slack_sdk.models.views import View

from bot.core.config import Playbook
from bot.core.i18n import N_, _, current_locale
from bot.core.render import Renderer
from bot.core.text import mask_identifiers, safe_text, truncate
from bot.slack.ids import INPUT_ACTION, ActionId, BlockId, CallbackId
from store.states import ACTIVE

Block = dict[str, Any]

# Slack's limits the builders cut to (slack_sdk's validators check the same ones).
HEADER_MAX = 150
SECTION_MAX = 3000
BUTTON_MAX = 75
LABEL_MAX = 2000
MODAL_TITLE_MAX = 24
NOTICE_TEXT_MAX = 3000  # what one notice text may hold: a section's limit, and the edit box's

# Status words as the card shows them (the stored values are the English ids).
STATUS_NAMES = {
    "reported": N_("reported"),
    "investigating": N_("investigating"),
    "paused": N_("paused"),
    "resolved": N_("resolved"),
    "closed": N_("closed"),
}


@dataclass(frozen=True)
class CardRole:
    """One role of the incident, as the card shows it."""

    role: str
    user_id: str | None
    assigned_by: str | None = None


@dataclass(frozen=True)
class CardFacts:
    """What the card shows of an incident: a snapshot taken by the caller, so no builder touches the store."""

    id: int
    title: str
    kind: str
    severity: str
    status: str
    reporter_id: str
    created_at: datetime
    playbook_version: str
    category: str | None = None
    description: str | None = None
    customer_ref: str | None = None
    resolution_summary: str | None = None
    is_drill: bool = False
    roles: tuple[CardRole, ...] = field(default_factory=tuple)


def plain(text: str, limit: int) -> PlainTextObject:
    """A plain_text object: never parsed for mentions, but still masked and cut to Slack's limit."""
    return PlainTextObject(text=truncate(mask_identifiers(text), limit) or " ", emoji=True)


def mrkdwn(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=text)


def to_dicts(blocks: Sequence[SlackBlock]) -> list[Block]:
    """The boundary: the blocks as Slack's JSON, each validated by its model on the way out."""
    return [block.to_dict() for block in blocks]


def text_blocks(text: str) -> list[Block]:
    """A message that is one mrkdwn section (cut to a section's limit)."""
    return to_dicts([SectionBlock(text=mrkdwn(truncate(text, SECTION_MAX)))])


def document_blocks(markdown: str, footer: str) -> list[Block]:
    """A long document (the review draft) as a markdown block, with a line of guidance under it."""
    return to_dicts([MarkdownBlock(text=markdown), ContextBlock(elements=[mrkdwn(truncate(footer, SECTION_MAX))])])


def _field(label: str, value: str) -> MarkdownTextObject:
    return mrkdwn(f"*{label}*\n{value}")


def card_text(incident: CardFacts, playbook: Playbook) -> str:
    """The notification fallback for the card (what a phone notification shows)."""
    kind = playbook.kinds[incident.kind].name_in(current_locale())
    text = f"{_drill(incident)}#{incident.id} {incident.severity.upper()} {kind}: {safe_text(incident.title)}"
    return truncate(text, 300)


def _drill(incident: CardFacts) -> str:
    """The prefix that tells a drill from a real incident at a glance."""
    return _("[DRILL]") + " " if incident.is_drill else ""


def _role_lines(incident: CardFacts, playbook: Playbook) -> tuple[list[str], list[tuple[str, str]]]:
    """One line per role, and the unowned roles anyone may take (not the approving ones: the lead assigns those)."""
    lines, unowned = [], []
    for assignment in incident.roles:
        role = playbook.roles.get(assignment.role)
        name = role.name_in(current_locale()) if role else assignment.role
        owner = f"<@{assignment.user_id}>" if assignment.user_id else "_" + _("unassigned") + "_"
        if (
            assignment.role == playbook.lead_role
            and assignment.user_id == incident.reporter_id
            and assignment.assigned_by is None
        ):  # nobody is the playbook's default lead: the reporter is in charge until handing over
            owner += " " + _("(the reporter, in charge until they hand over with `/incident assign lead @someone`)")
        approving = assignment.role in playbook.approval_roles
        if not assignment.user_id and approving:  # not self-service: no Take button
            owner += " " + _("(approves notices; the lead assigns it)")
        lines.append(f"*{safe_text(name)}*: {owner}")
        if not assignment.user_id and not approving:
            unowned.append((assignment.role, name))
    return lines, unowned


def incident_card(incident: CardFacts, playbook: Playbook, renderer: Renderer) -> list[Block]:
    kind = playbook.kinds[incident.kind]
    severity = playbook.severities.get(incident.severity)
    sev_label = incident.severity.upper()
    if severity:
        sev_label += f" · {severity.name_in(current_locale())}"
    header = f"{_drill(incident)}#{incident.id} {incident.title}"
    status = STATUS_NAMES.get(incident.status)
    blocks: list[SlackBlock] = [
        HeaderBlock(text=plain(header, HEADER_MAX)),
        SectionBlock(
            fields=[
                _field(_("Kind"), safe_text(kind.name_in(current_locale()))),
                _field(_("Severity"), safe_text(sev_label)),
                _field(_("Category"), safe_text(incident.category or _("not set"))),
                _field(_("Status"), _(status) if status else incident.status),
                _field(_("Reporter"), f"<@{incident.reporter_id}>"),
                _field(_("Opened"), renderer.local_time(incident.created_at)),
            ]
        ),
    ]
    if incident.description:
        blocks.append(SectionBlock(text=mrkdwn(truncate(safe_text(incident.description), 2900))))
    if incident.customer_ref:
        ref = truncate(safe_text(incident.customer_ref), 200)
        blocks.append(ContextBlock(elements=[mrkdwn(_("Customer ref: {ref}", ref=ref))]))
    if incident.resolution_summary:
        summary = truncate(safe_text(incident.resolution_summary), 2900)
        blocks.append(SectionBlock(text=_field(_("Resolution"), summary)))
    lines, unowned = _role_lines(incident, playbook)
    roles_text = truncate("\n".join(lines) or "_" + _("no roles") + "_", SECTION_MAX)
    blocks.append(SectionBlock(block_id=BlockId.ROLES, text=mrkdwn(roles_text)))
    if unowned and incident.status in ACTIVE:
        buttons = [
            ButtonElement(
                action_id=f"{ActionId.TAKE_ROLE}:{role}",
                text=plain(_("Take: {role}", role=name), BUTTON_MAX),
                value=f"{incident.id}:{role}",
            )
            for role, name in unowned[:25]
        ]
        blocks.append(ActionsBlock(block_id=BlockId.ROLE_ACTIONS, elements=buttons))
    footer = _("Playbook {version} · `/incident help` for commands", version=safe_text(incident.playbook_version))
    if incident.is_drill:
        footer = _("*DRILL* — not a real incident, kept out of the KPIs") + " · " + footer
    blocks.append(ContextBlock(elements=[mrkdwn(footer)]))
    return to_dicts(blocks)


def _option(value: str, label: str) -> Option:
    return Option(value=value, text=plain(label, BUTTON_MAX))


def _text_input(
    block_id: str,
    label: str,
    *,
    optional: bool,
    multiline: bool = False,
    max_length: int = 2000,
    hint: str | None = None,
    initial_value: str | None = None,
) -> InputBlock:
    return InputBlock(
        block_id=block_id,
        optional=optional,
        label=plain(label, LABEL_MAX),
        element=PlainTextInputElement(
            action_id=INPUT_ACTION, multiline=multiline, max_length=max_length, initial_value=initial_value
        ),
        hint=plain(hint, LABEL_MAX) if hint else None,
    )


def report_modal(playbook: Playbook, *, origin_channel: str, kind: str | None = None) -> dict[str, Any]:
    """The form behind `/incident open` with no arguments."""
    locale = current_locale()
    kinds = [_option(k, spec.name_in(locale)) for k, spec in playbook.kinds.items()]
    sevs = [_option(k, f"{k.upper()} · {spec.name_in(locale)}") for k, spec in playbook.severities.items()]
    initial_kind = kinds[0] if kind is None else next(o for o in kinds if o.value == kind)
    categories = sorted({c for spec in playbook.kinds.values() for c in spec.categories})
    hint = _("One of: {categories}", categories=", ".join(categories)) if categories else None
    view = View(
        type="modal",
        callback_id=CallbackId.OPEN_INCIDENT,
        private_metadata=origin_channel,
        title=plain(_("Report an incident"), MODAL_TITLE_MAX),
        submit=plain(_("Open incident"), MODAL_TITLE_MAX),
        close=plain(_("Cancel"), MODAL_TITLE_MAX),
        blocks=[
            InputBlock(
                block_id=BlockId.KIND,
                label=plain(_("Kind"), LABEL_MAX),
                element=StaticSelectElement(action_id=INPUT_ACTION, options=kinds, initial_option=initial_kind),
            ),
            InputBlock(
                block_id=BlockId.SEVERITY,
                optional=True,
                label=plain(_("Severity (blank: the kind's default)"), LABEL_MAX),
                element=StaticSelectElement(action_id=INPUT_ACTION, options=sevs),
            ),
            _text_input(BlockId.TITLE, _("Title"), optional=False, max_length=2000),
            _text_input(BlockId.CATEGORY, _("Category"), optional=True, max_length=60, hint=hint),
            _text_input(BlockId.DESCRIPTION, _("What happened"), optional=True, multiline=True, max_length=3000),
            _text_input(
                BlockId.CUSTOMER_REF,
                _("Customer reference (masked wherever the bot writes it)"),
                optional=True,
                max_length=200,
            ),
        ],
    )
    return dict(view.to_dict())


def _button(action_id: str, text: str, value: str, style: str | None = None) -> ButtonElement:
    return ButtonElement(action_id=action_id, text=plain(text, BUTTON_MAX), value=value, style=style)


def reminder_blocks(text: str, deadline_id: int, snooze_label: str) -> list[Block]:
    """A reminder DM: the text, then Mark done and Snooze."""
    return to_dicts(
        [
            SectionBlock(text=mrkdwn(truncate(text, SECTION_MAX))),
            ActionsBlock(
                elements=[
                    _button(ActionId.MARK_DONE, _("Mark done"), str(deadline_id), "primary"),
                    _button(ActionId.SNOOZE, snooze_label, str(deadline_id)),
                ]
            ),
        ]
    )


def rating_blocks(text: str, incident_id: int, action: str) -> list[Block]:
    """A question and a row of 1-5 buttons (each action_id unique in its block)."""
    return to_dicts(
        [
            SectionBlock(text=mrkdwn(truncate(text, SECTION_MAX))),
            ActionsBlock(
                elements=[_button(f"{action}:{score}", str(score), f"{incident_id}:{score}") for score in range(1, 6)]
            ),
        ]
    )


def page_blocks(text: str, escalation_id: int) -> list[Block]:
    """A page DM: the text and one Acknowledge button."""
    return to_dicts(
        [
            SectionBlock(text=mrkdwn(truncate(text, SECTION_MAX))),
            ActionsBlock(elements=[_button(ActionId.ACKNOWLEDGE, _("Acknowledge"), str(escalation_id), "danger")]),
        ]
    )


def notice_preview_blocks(
    *,
    notice_id: int,
    number: int,
    stage: str,
    texts: dict[str, dict[str, str]],
    published: bool,
    channel_names: dict[str, str],
    status: str,
) -> list[Block]:
    """The draft as customers will read it, per channel and locale, with Edit, Approve and Publish."""
    blocks: list[SlackBlock] = [
        HeaderBlock(text=plain(_("Customer notice for #{number}: {stage}", number=number, stage=stage), HEADER_MAX))
    ]
    for channel, localized in list(texts.items())[:6]:  # every notice channel there is
        for locale, text in localized.items():
            label = f"*{safe_text(channel_names.get(channel, channel))}* · {safe_text(locale)}"
            body = truncate(safe_text(text), NOTICE_TEXT_MAX - len(label) - 10)
            blocks.append(SectionBlock(text=mrkdwn(f"{label}\n>{body.replace(chr(10), chr(10) + '>')}")))
    blocks.append(ContextBlock(elements=[mrkdwn(truncate(status, SECTION_MAX))]))
    if not published:
        value = str(notice_id)
        blocks.append(
            ActionsBlock(
                block_id=BlockId.NOTICE_ACTIONS,
                elements=[
                    _button(ActionId.EDIT_NOTICE, _("Edit"), value),
                    _button(ActionId.APPROVE_NOTICE, _("Approve"), value),
                    _button(ActionId.PUBLISH_NOTICE, _("Publish"), value, "primary"),
                ],
            )
        )
    return to_dicts(blocks)


def notice_edit_modal(
    notice_id: int, number: int, stage: str, texts: dict[str, dict[str, str]], channel_names: dict[str, str]
) -> dict[str, Any]:
    """One text box per channel and locale; saving clears any approval."""
    guidance = _(
        "Write for customers, in each language: internal updates are never copied into a notice. "
        "Customer identifiers are masked when published. Saving clears any approval."
    )
    blocks: list[SlackBlock] = [ContextBlock(elements=[mrkdwn(guidance)])]
    for channel, localized in texts.items():
        for locale, text in localized.items():
            blocks.append(
                _text_input(
                    f"{BlockId.NOTICE_TEXT}:{channel}:{locale}",
                    f"{channel_names.get(channel, channel)} · {locale}",
                    optional=False,
                    multiline=True,
                    max_length=NOTICE_TEXT_MAX,
                    initial_value=text[:NOTICE_TEXT_MAX],
                )
            )
    view = View(
        type="modal",
        callback_id=CallbackId.EDIT_NOTICE,
        private_metadata=str(notice_id),
        title=plain(_("Notice #{number} {stage}", number=number, stage=stage), MODAL_TITLE_MAX),
        submit=plain(_("Save"), MODAL_TITLE_MAX),
        close=plain(_("Cancel"), MODAL_TITLE_MAX),
        blocks=blocks,
    )
    return dict(view.to_dict())


def end_surge_blocks(text: str, incident_id: int) -> list[Block]:
    """The surge plan's End suggestion: the figures, and one End button (the leadership group's to click)."""
    return to_dicts(
        [
            SectionBlock(text=mrkdwn(truncate(text, SECTION_MAX))),
            ActionsBlock(elements=[_button(ActionId.END_SURGE, _("End the surge plan"), str(incident_id), "primary")]),
        ]
    )
