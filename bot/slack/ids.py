"""Every action_id, callback_id and block_id the bot uses, in one place."""

from enum import StrEnum


class ActionId(StrEnum):
    TAKE_ROLE = "take_role"  # suffixed with ":<role>" so each button in a block is unique
    MARK_DONE = "mark_done"
    SNOOZE = "snooze"
    ACKNOWLEDGE = "acknowledge"
    EDIT_NOTICE = "edit_notice"
    RATE_CUSTOMER = "rate_customer"  # suffixed with ":<score>", like TAKE_ROLE
    RATE_RESPONSE = "rate_response"
    APPROVE_NOTICE = "approve_notice"
    PUBLISH_NOTICE = "publish_notice"
    CONFIRM_PLAN = "confirm_plan"  # "I have read the new version of the plan" (value: the version's row id)
    END_SURGE = "end_surge"  # the surge plan's End (leadership only; bot/surge/plan.py)
    # the surge plan's warning-line proposal (bot/surge/proposals.py)
    ACTIVATE_SURGE = "activate_surge"
    DISMISS_SURGE = "dismiss_surge"
    ESCALATE_COMPLAINT = "escalate_complaint"  # the complaint list's Escalate button; value: the complaint's number


class CallbackId(StrEnum):
    OPEN_INCIDENT = "open_incident"
    EDIT_NOTICE = "edit_notice"
    DISMISS_SURGE = "dismiss_surge"  # why a surge proposal is dismissed


class BlockId(StrEnum):
    KIND = "kind"
    SEVERITY = "severity"
    CATEGORY = "category"
    TITLE = "title"
    DESCRIPTION = "description"
    CUSTOMER_REF = "customer_ref"
    ROLES = "roles"
    ROLE_ACTIONS = "role_actions"
    NOTICE_ACTIONS = "notice_actions"
    NOTICE_TEXT = "notice"  # suffixed with ":<channel>:<locale>" in the edit modal
    SURGE_REASON = "surge_reason"  # the dismiss modal's reason


INPUT_ACTION = "value"  # the action_id of the single element inside each modal input block
