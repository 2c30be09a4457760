"""Block Kit limits as Slack enforces them, for the sandbox to reject what Slack would reject.

Two checks, both must pass: our own reading of Slack's limits (with Slack-style json-pointers), and slack_sdk's
models (`Block.parse`, `View`), whose validators raise SlackObjectFormationError for what they know is wrong.
On top, what neither checks: a `block_id` used twice in one message or view, an `action_id` twice in a block.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

MESSAGE_BLOCKS_MAX = 50
MODAL_BLOCKS_MAX = 100
SECTION_TEXT_MAX = 3000
SECTION_FIELDS_MAX = 10
FIELD_TEXT_MAX = 2000
HEADER_TEXT_MAX = 150
BUTTON_TEXT_MAX = 75
ID_MAX = 255
BUTTON_VALUE_MAX = 2000
ACTIONS_ELEMENTS_MAX = 25
CONTEXT_ELEMENTS_MAX = 10
MODAL_TITLE_MAX = 24
MODAL_BUTTON_MAX = 24
OPTION_TEXT_MAX = 75
OPTION_VALUE_MAX = 150
OPTIONS_MAX = 100
LABEL_MAX = 2000
PLACEHOLDER_MAX = 150

BLOCK_TYPES = {"section", "header", "divider", "actions", "context", "input", "image", "rich_text", "markdown"}
MARKDOWN_TEXT_MAX = 12_000  # per markdown block, and for all markdown blocks of a message together
ELEMENT_TYPES = {
    "button",
    "static_select",
    "users_select",
    "conversations_select",
    "channels_select",
    "multi_users_select",
    "multi_static_select",
    "overflow",
    "plain_text_input",
    "datepicker",
    "checkboxes",
    "radio_buttons",
}


class _Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def err(self, message: str, pointer: str) -> None:
        self.errors.append(f"[ERROR] {message} [json-pointer:{pointer}]")

    def text(self, obj: Any, ptr: str, *, limit: int, plain_only: bool = False) -> None:
        if not isinstance(obj, dict) or obj.get("type") not in ("plain_text", "mrkdwn"):
            self.err("must be a text object of type plain_text or mrkdwn", ptr)
            return
        if plain_only and obj["type"] != "plain_text":
            self.err("must be a plain_text object", ptr + "/type")
        value = obj.get("text")
        if not isinstance(value, str) or not value:
            self.err("must be more than 0 characters", ptr + "/text")
        elif len(value) > limit:
            self.err(f"must be less than {limit + 1} characters", ptr + "/text")

    def ident(self, value: Any, ptr: str) -> None:
        if value is not None and (not isinstance(value, str) or len(value) > ID_MAX):
            self.err(f"must be less than {ID_MAX + 1} characters", ptr)

    def options(self, options: Any, ptr: str) -> None:
        if not isinstance(options, list) or not options or len(options) > OPTIONS_MAX:
            self.err(f"must provide between 1 and {OPTIONS_MAX} options", ptr)
            return
        for i, opt in enumerate(options):
            self.text(opt.get("text") if isinstance(opt, dict) else None, f"{ptr}/{i}/text", limit=OPTION_TEXT_MAX)
            value = opt.get("value") if isinstance(opt, dict) else None
            if not isinstance(value, str) or len(value) > OPTION_VALUE_MAX:
                self.err(f"must be less than {OPTION_VALUE_MAX + 1} characters", f"{ptr}/{i}/value")

    def element(self, el: Any, ptr: str) -> None:
        if not isinstance(el, dict) or el.get("type") not in ELEMENT_TYPES:
            self.err("unsupported element type", ptr + "/type")
            return
        self.ident(el.get("action_id"), ptr + "/action_id")
        kind = el["type"]
        if kind == "button":
            self.text(el.get("text"), ptr + "/text", limit=BUTTON_TEXT_MAX, plain_only=True)
            value = el.get("value")
            if value is not None and len(str(value)) > BUTTON_VALUE_MAX:
                self.err(f"must be less than {BUTTON_VALUE_MAX + 1} characters", ptr + "/value")
            if el.get("style") not in (None, "primary", "danger"):
                self.err("must be primary or danger", ptr + "/style")
        elif kind in ("static_select", "multi_static_select", "checkboxes", "radio_buttons"):
            if "option_groups" not in el:
                self.options(el.get("options"), ptr + "/options")
        elif kind == "overflow":
            opts = el.get("options")
            if not isinstance(opts, list) or not 2 <= len(opts) <= 5:
                self.err("must provide between 2 and 5 options", ptr + "/options")
            else:
                self.options(opts, ptr + "/options")
        if "placeholder" in el:
            self.text(el["placeholder"], ptr + "/placeholder", limit=PLACEHOLDER_MAX, plain_only=True)

    def block(self, block: Any, ptr: str, surface: str) -> None:
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
            self.err("unsupported block type", ptr + "/type")
            return
        self.ident(block.get("block_id"), ptr + "/block_id")
        kind = block["type"]
        if kind == "section":
            if "text" not in block and "fields" not in block:
                self.err("must provide either text or fields", ptr)
            if "text" in block:
                self.text(block["text"], ptr + "/text", limit=SECTION_TEXT_MAX)
            if "fields" in block:
                fields = block["fields"]
                if not isinstance(fields, list) or not fields or len(fields) > SECTION_FIELDS_MAX:
                    self.err(f"must provide between 1 and {SECTION_FIELDS_MAX} fields", ptr + "/fields")
                else:
                    for i, f in enumerate(fields):
                        self.text(f, f"{ptr}/fields/{i}", limit=FIELD_TEXT_MAX)
            if "accessory" in block:
                self.element(block["accessory"], ptr + "/accessory")
        elif kind == "header":
            self.text(block.get("text"), ptr + "/text", limit=HEADER_TEXT_MAX, plain_only=True)
        elif kind == "markdown":
            text = block.get("text")
            if not isinstance(text, str) or not text:
                self.err("must provide a non-empty string", ptr + "/text")
            elif len(text) > MARKDOWN_TEXT_MAX:
                self.err(f"must be less than {MARKDOWN_TEXT_MAX + 1} characters", ptr + "/text")
        elif kind == "actions":
            els = block.get("elements")
            if not isinstance(els, list) or not els or len(els) > ACTIONS_ELEMENTS_MAX:
                self.err(f"must provide between 1 and {ACTIONS_ELEMENTS_MAX} elements", ptr + "/elements")
            else:
                for i, el in enumerate(els):
                    self.element(el, f"{ptr}/elements/{i}")
        elif kind == "context":
            els = block.get("elements")
            if not isinstance(els, list) or not els or len(els) > CONTEXT_ELEMENTS_MAX:
                self.err(f"must provide between 1 and {CONTEXT_ELEMENTS_MAX} elements", ptr + "/elements")
            else:
                for i, el in enumerate(els):
                    if isinstance(el, dict) and el.get("type") == "image":
                        continue
                    self.text(el, f"{ptr}/elements/{i}", limit=SECTION_TEXT_MAX)
        elif kind == "input":
            if surface != "modal":
                self.err("input blocks are only allowed in modals", ptr)
            self.text(block.get("label"), ptr + "/label", limit=LABEL_MAX, plain_only=True)
            if "hint" in block:
                self.text(block["hint"], ptr + "/hint", limit=LABEL_MAX, plain_only=True)
            self.element(block.get("element"), ptr + "/element")


def _model_errors(checker: _Checker, block: Any, ptr: str) -> None:
    """What slack_sdk's model of the block refuses (an unknown type, a limit, a missing field)."""
    if not isinstance(block, dict):
        return  # reported by the own checks
    try:
        model = Block.parse(block)
        if model is None:
            checker.err("unsupported block type (slack_sdk)", ptr + "/type")
            return
        model.to_dict()  # validates the block and everything in it
    except SlackObjectFormationError as exc:
        checker.err(f"{exc} (slack_sdk)", ptr)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a shape the model cannot even read
        checker.err(f"malformed block: {type(exc).__name__}: {exc} (slack_sdk)", ptr)


def _duplicate_ids(checker: _Checker, blocks: list[Any], prefix: str) -> None:
    """A block_id may appear once per message or view, an action_id once per block (Slack: invalid_blocks)."""
    seen_blocks: set[str] = set()
    for i, block in enumerate(blocks):
        if not isinstance(block, dict):
            continue
        block_id = block.get("block_id")
        if isinstance(block_id, str):
            if block_id in seen_blocks:
                checker.err(f"duplicate block_id {block_id!r}", f"{prefix}/{i}/block_id")
            seen_blocks.add(block_id)
        elements = [(f"elements/{j}", el) for j, el in enumerate(block.get("elements") or [])]
        elements += [(key, block[key]) for key in ("accessory", "element") if key in block]
        seen_actions: set[str] = set()
        for where, element in elements:
            action_id = element.get("action_id") if isinstance(element, dict) else None
            if isinstance(action_id, str):
                if action_id in seen_actions:
                    checker.err(f"duplicate action_id {action_id!r} in a block", f"{prefix}/{i}/{where}/action_id")
                seen_actions.add(action_id)


def validate_blocks(blocks: Any, surface: str = "message") -> list[str]:
    """Slack-style error strings for a blocks array; empty when Slack would accept it."""
    checker = _Checker()
    limit = MODAL_BLOCKS_MAX if surface == "modal" else MESSAGE_BLOCKS_MAX
    if not isinstance(blocks, list):
        checker.err("must be an array", "/blocks")
    elif len(blocks) > limit:
        checker.err(f"must provide fewer than {limit + 1} items", "/blocks")
    else:
        for i, block in enumerate(blocks):
            checker.block(block, f"/blocks/{i}", surface)
            _model_errors(checker, block, f"/blocks/{i}")
        _duplicate_ids(checker, blocks, "/blocks")
        markdown = sum(len(b.get("text") or "") for b in blocks if isinstance(b, dict) and b.get("type") == "markdown")
        if markdown > MARKDOWN_TEXT_MAX:
            checker.err(f"markdown blocks must total less than {MARKDOWN_TEXT_MAX + 1} characters", "/blocks")
    return checker.errors


def validate_view(view: Any) -> list[str]:
    """Errors for a modal view payload (title length, buttons, blocks)."""
    checker = _Checker()
    if not isinstance(view, dict) or view.get("type") != "modal":
        checker.err("must be a view of type modal", "/view/type")
        return checker.errors
    checker.text(view.get("title"), "/view/title", limit=MODAL_TITLE_MAX, plain_only=True)
    for key in ("submit", "close"):
        if key in view:
            checker.text(view[key], f"/view/{key}", limit=MODAL_BUTTON_MAX, plain_only=True)
    blocks = view.get("blocks", [])
    if any(isinstance(b, dict) and b.get("type") == "input" for b in blocks) and "submit" not in view:
        checker.err("a view with input blocks must have a submit button", "/view/submit")
    checker.ident(view.get("callback_id"), "/view/callback_id")
    if len(str(view.get("private_metadata", ""))) > 3000:
        checker.err("must be less than 3001 characters", "/view/private_metadata")
    if not checker.errors and isinstance(blocks, list) and blocks:
        try:  # slack_sdk's model of the view (title, buttons, metadata, block count)
            View(**view).validate_json()
        except SlackObjectFormationError as exc:
            checker.err(f"{exc} (slack_sdk)", "/view")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            checker.err(f"malformed view: {type(exc).__name__}: {exc} (slack_sdk)", "/view")
    return checker.errors + validate_blocks(blocks, "modal")
