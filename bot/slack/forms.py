"""Reading the report modal's submitted values into an IncidentCreate, with per-field errors."""

from __future__ import annotations

from typing import Any

from bot.core.config import Playbook
from bot.core.errors import UserInputError
from bot.core.i18n import _
from bot.core.inputs import check_text
from bot.incidents.service import IncidentCreate
from bot.slack.ids import INPUT_ACTION, BlockId


def _value(values: dict[str, Any], block: str) -> str | None:
    element = values.get(block, {}).get(INPUT_ACTION, {})
    if element.get("type") == "static_select":
        option = element.get("selected_option") or {}
        return option.get("value")
    value = element.get("value")
    return value.strip() if isinstance(value, str) and value.strip() else None


def incident_from_view(values: dict[str, Any], playbook: Playbook) -> IncidentCreate:
    """Validate the modal; a UserInputError names the block the error belongs to."""
    for block in (BlockId.TITLE, BlockId.DESCRIPTION, BlockId.CUSTOMER_REF):
        check_text(_value(values, block) or "", field=block)
    kind = _value(values, BlockId.KIND)
    if kind not in playbook.kinds:
        raise UserInputError(_("Pick a kind."), field=BlockId.KIND)
    severity = _value(values, BlockId.SEVERITY)
    if severity is not None and severity not in playbook.severities:
        raise UserInputError(_("Pick a severity from the list."), field=BlockId.SEVERITY)
    title = _value(values, BlockId.TITLE)
    if not title:
        raise UserInputError(_("Give the incident a title, e.g. Card payments failing."), field=BlockId.TITLE)
    category = _value(values, BlockId.CATEGORY)
    if category is not None:
        category = category.lower()
        allowed = playbook.kinds[kind].categories
        if category not in allowed:
            listed = ", ".join(allowed) if allowed else _("none for {kind}; leave it blank", kind=kind)
            raise UserInputError(_("Unknown category. Categories: {listed}.", listed=listed), field=BlockId.CATEGORY)
    return IncidentCreate(
        kind=kind,
        title=title,
        severity=severity,
        category=category,
        description=_value(values, BlockId.DESCRIPTION),
        customer_ref=_value(values, BlockId.CUSTOMER_REF),
    )


def notice_texts_from_view(values: dict[str, Any]) -> dict[tuple[str, str], str]:
    """The notice editor's boxes, keyed by (channel, locale) from their block ids."""
    texts = {}
    for block_id, elements in values.items():
        prefix, _, rest = block_id.partition(":")
        channel, _, locale = rest.partition(":")
        if prefix != BlockId.NOTICE_TEXT or not channel or not locale:
            continue
        value = elements.get(INPUT_ACTION, {}).get("value")
        texts[(channel, locale)] = check_text(value, field=block_id) if isinstance(value, str) else ""
    return texts
