"""Block Kit builders: the incident card and the report modal. Plain dicts, within Slack's limits."""

from __future__ import annotations

from typing import Any

from bot.core.config import Playbook
from bot.core.render import Renderer
from bot.core.text import mask_identifiers, safe_text, truncate
from bot.slack.ids import INPUT_ACTION, ActionId, BlockId, CallbackId
from store.models import Incident, Notice
from store.states import ACTIVE, NoticeState

Block = dict[str, Any]


def plain(text: str, limit: int) -> dict[str, Any]:
    """A plain_text object: never parsed for mentions, but still masked and cut to Slack's limit."""
    return {"type": "plain_text", "text": truncate(mask_identifiers(text), limit) or " ", "emoji": True}


def mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def card_text(incident: Incident, playbook: Playbook) -> str:
    """The notification fallback for the card (what a phone notification shows)."""
    sev = incident.severity.upper()
    drill = "[DRILL] " if incident.is_drill else ""
    return truncate(
        f"{drill}#{incident.id} {sev} {playbook.kinds[incident.kind].name}: {safe_text(incident.title)}", 300
    )


def incident_card(incident: Incident, playbook: Playbook, renderer: Renderer) -> list[Block]:
    kind = playbook.kinds[incident.kind]
    severity = playbook.severities.get(incident.severity)
    sev_label = f"{incident.severity.upper()} · {severity.name}" if severity else incident.severity.upper()
    blocks: list[Block] = [
        {
            "type": "header",
            "text": plain(f"{'[DRILL] ' if incident.is_drill else ''}#{incident.id} {incident.title}", 150),
        },
        {
            "type": "section",
            "fields": [
                mrkdwn(f"*Kind*\n{safe_text(kind.name)}"),
                mrkdwn(f"*Severity*\n{safe_text(sev_label)}"),
                mrkdwn(f"*Category*\n{safe_text(incident.category or 'not set')}"),
                mrkdwn(f"*Status*\n{incident.status}"),
                mrkdwn(f"*Reporter*\n<@{incident.reporter_id}>"),
                mrkdwn(f"*Opened*\n{renderer.local_time(incident.created_at)}"),
            ],
        },
    ]
    if incident.description:
        blocks.append({"type": "section", "text": mrkdwn(truncate(safe_text(incident.description), 2900))})
    if incident.customer_ref:
        blocks.append(
            {
                "type": "context",
                "elements": [mrkdwn(f"Customer ref: {truncate(safe_text(incident.customer_ref), 200)}")],
            }
        )
    if incident.resolution_summary:
        blocks.append(
            {
                "type": "section",
                "text": mrkdwn(f"*Resolution*\n{truncate(safe_text(incident.resolution_summary), 2900)}"),
            }
        )
    lines, unowned = [], []
    for assignment in incident.roles:
        role = playbook.roles.get(assignment.role)
        name = role.name if role else assignment.role
        owner = f"<@{assignment.user_id}>" if assignment.user_id else "_unassigned_"
        if (
            assignment.role == playbook.lead_role
            and assignment.user_id == incident.reporter_id
            and assignment.assigned_by is None
        ):  # nobody is the playbook's default lead: the reporter is in charge until handing over
            owner += " (the reporter, in charge until they hand over with `/incident assign lead @someone`)"
        approving = assignment.role in playbook.approval_roles
        if not assignment.user_id and approving:  # not self-service: no Take button
            owner += " (approves notices; the lead assigns it)"
        lines.append(f"*{safe_text(name)}*: {owner}")
        if not assignment.user_id and not approving:
            unowned.append((assignment.role, name))
    blocks.append(
        {"type": "section", "block_id": BlockId.ROLES, "text": mrkdwn(truncate("\n".join(lines) or "_no roles_", 3000))}
    )
    if unowned and incident.status in ACTIVE:
        blocks.append(
            {
                "type": "actions",
                "block_id": BlockId.ROLE_ACTIONS,
                "elements": [
                    {
                        "type": "button",
                        "action_id": f"{ActionId.TAKE_ROLE}:{role}",
                        "text": plain(f"Take: {name}", 75),
                        "value": f"{incident.id}:{role}",
                    }
                    for role, name in unowned[:25]
                ],
            }
        )
    footer = f"Playbook {safe_text(incident.playbook_version)} · `/incident help` for commands"
    if incident.is_drill:
        footer = "*DRILL* — not a real incident, kept out of the KPIs · " + footer
    blocks.append({"type": "context", "elements": [mrkdwn(footer)]})
    return blocks


def _option(value: str, label: str) -> dict[str, Any]:
    return {"text": plain(label, 75), "value": value}


def report_modal(playbook: Playbook, *, origin_channel: str, kind: str | None = None) -> dict[str, Any]:
    """The form behind `/incident open` with no arguments."""
    kinds = [_option(k, spec.name) for k, spec in playbook.kinds.items()]
    sevs = [_option(k, f"{k.upper()} · {spec.name}") for k, spec in playbook.severities.items()]
    initial_kind = kinds[0] if kind is None else next(o for o in kinds if o["value"] == kind)
    categories = sorted({c for spec in playbook.kinds.values() for c in spec.categories})

    def text_input(
        block_id: str,
        label: str,
        *,
        optional: bool,
        multiline: bool = False,
        max_length: int = 2000,
        hint: str | None = None,
    ) -> Block:
        block: Block = {
            "type": "input",
            "block_id": block_id,
            "optional": optional,
            "label": plain(label, 2000),
            "element": {
                "type": "plain_text_input",
                "action_id": INPUT_ACTION,
                "multiline": multiline,
                "max_length": max_length,
            },
        }
        if hint:
            block["hint"] = plain(hint, 2000)
        return block

    return {
        "type": "modal",
        "callback_id": CallbackId.OPEN_INCIDENT,
        "private_metadata": origin_channel,
        "title": plain("Report an incident", 24),
        "submit": plain("Open incident", 24),
        "close": plain("Cancel", 24),
        "blocks": [
            {
                "type": "input",
                "block_id": BlockId.KIND,
                "label": plain("Kind", 2000),
                "element": {
                    "type": "static_select",
                    "action_id": INPUT_ACTION,
                    "options": kinds,
                    "initial_option": initial_kind,
                },
            },
            {
                "type": "input",
                "block_id": BlockId.SEVERITY,
                "optional": True,
                "label": plain("Severity (blank: the kind's default)", 2000),
                "element": {"type": "static_select", "action_id": INPUT_ACTION, "options": sevs},
            },
            text_input(BlockId.TITLE, "Title", optional=False, max_length=2000),
            text_input(
                BlockId.CATEGORY,
                "Category",
                optional=True,
                max_length=60,
                hint="One of: " + ", ".join(categories) if categories else None,
            ),
            text_input(BlockId.DESCRIPTION, "What happened", optional=True, multiline=True, max_length=3000),
            text_input(
                BlockId.CUSTOMER_REF,
                "Customer reference (masked wherever the bot writes it)",
                optional=True,
                max_length=200,
            ),
        ],
    }


def _button(action_id: str, text: str, value: str, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {"type": "button", "action_id": action_id, "text": plain(text, 75), "value": value}
    if style:
        button["style"] = style
    return button


def reminder_blocks(text: str, deadline_id: int, snooze_label: str) -> list[Block]:
    """A reminder DM: the text, then Mark done and Snooze."""
    return [
        {"type": "section", "text": mrkdwn(truncate(text, 3000))},
        {
            "type": "actions",
            "elements": [
                _button(ActionId.MARK_DONE, "Mark done", str(deadline_id), "primary"),
                _button(ActionId.SNOOZE, snooze_label, str(deadline_id)),
            ],
        },
    ]


def rating_blocks(text: str, incident_id: int, action: str) -> list[Block]:
    """A question and a row of 1-5 buttons (each action_id unique in its block)."""
    return [
        {"type": "section", "text": mrkdwn(truncate(text, 3000))},
        {
            "type": "actions",
            "elements": [_button(f"{action}:{score}", str(score), f"{incident_id}:{score}") for score in range(1, 6)],
        },
    ]


def page_blocks(text: str, escalation_id: int) -> list[Block]:
    """A page DM: the text and one Acknowledge button."""
    return [
        {"type": "section", "text": mrkdwn(truncate(text, 3000))},
        {"type": "actions", "elements": [_button(ActionId.ACKNOWLEDGE, "Acknowledge", str(escalation_id), "danger")]},
    ]


NOTICE_TEXT_MAX = 3000  # what one notice text may hold: a section's limit, and the edit box's


def notice_preview_blocks(notice: Notice, *, channel_names: dict[str, str], status: str) -> list[Block]:
    """The draft as customers will read it, per channel and locale, with Edit, Approve and Publish."""
    number, stage, texts = notice.incident_id, notice.stage, notice.texts
    blocks: list[Block] = [{"type": "header", "text": plain(f"Customer notice for #{number}: {stage}", 150)}]
    for channel, localized in list(texts.items())[:6]:  # every notice channel there is
        for locale, text in localized.items():
            label = f"*{safe_text(channel_names.get(channel, channel))}* · {safe_text(locale)}"
            body = truncate(safe_text(text), NOTICE_TEXT_MAX - len(label) - 10)
            blocks.append({"type": "section", "text": mrkdwn(f"{label}\n>{body.replace(chr(10), chr(10) + '>')}")})
    blocks.append({"type": "context", "elements": [mrkdwn(truncate(status, 3000))]})
    if notice.state != NoticeState.PUBLISHED:
        value = str(notice.id)
        blocks.append(
            {
                "type": "actions",
                "block_id": BlockId.NOTICE_ACTIONS,
                "elements": [
                    _button(ActionId.EDIT_NOTICE, "Edit", value),
                    _button(ActionId.APPROVE_NOTICE, "Approve", value),
                    _button(ActionId.PUBLISH_NOTICE, "Publish", value, "primary"),
                ],
            }
        )
    return blocks


def notice_edit_modal(
    notice_id: int, number: int, stage: str, texts: dict[str, dict[str, str]], channel_names: dict[str, str]
) -> dict[str, Any]:
    """One text box per channel and locale; saving clears any approval."""
    blocks: list[Block] = [
        {
            "type": "context",
            "elements": [
                mrkdwn(
                    "Write for customers, in each language: internal updates are never copied into a notice. "
                    "Customer identifiers are masked when published. Saving clears any approval."
                )
            ],
        }
    ]
    for channel, localized in texts.items():
        for locale, text in localized.items():
            blocks.append(
                {
                    "type": "input",
                    "block_id": f"{BlockId.NOTICE_TEXT}:{channel}:{locale}",
                    "label": plain(f"{channel_names.get(channel, channel)} · {locale}", 2000),
                    "element": {
                        "type": "plain_text_input",
                        "action_id": INPUT_ACTION,
                        "multiline": True,
                        "max_length": NOTICE_TEXT_MAX,
                        "initial_value": text[:NOTICE_TEXT_MAX],
                    },
                }
            )
    return {
        "type": "modal",
        "callback_id": CallbackId.EDIT_NOTICE,
        "private_metadata": str(notice_id),
        "title": plain(f"Notice #{number} {stage}", 24),
        "submit": plain("Save", 24),
        "close": plain("Cancel", 24),
        "blocks": blocks,
    }
