"""The few names the bot shows everywhere, written one way: a severity (`SEV3`), the bot itself, a state.

Formatting drifted when each message spelled these itself (`sev3` next to `SEV3`, `bot` next to
`@incident-desk`, `resolved` in a Chinese sentence); every message takes them from here.
"""

from __future__ import annotations

from bot.core.i18n import N_, _

BOT_NAME = "incident-desk"  # the app's display name in slack-app-manifest.yaml


def severity_label(severity: str) -> str:
    """`sev3` (as stored and typed) as every message shows it: `SEV3`, in every language."""
    return severity.strip().upper()


def _label(table: dict[str, str], key: str, unknown: str | None = None) -> str:
    """`key`'s word from `table` in the current language; an unknown key as stored (or as `unknown` says)."""
    word = table.get(key)
    return _(word) if word else (key if unknown is None else unknown)


# The timeline events about one deadline, whose data names it by key (`first_response`)
DEADLINE_EVENTS = ("deadline_set", "deadline_met", "deadline_missed", "deadline_cancelled")
ROLE_EVENTS = ("assigned", "role_taken")


# Statuses and states as words a reader understands (stored in English, shown in the reader's language).
STATE_NAMES = {
    "reported": N_("reported"),
    "investigating": N_("investigating"),
    "resolved": N_("resolved"),
    "closed": N_("closed"),
    "pending": N_("pending"),
    "met": N_("met"),
    "missed": N_("missed"),
    "cancelled": N_("cancelled"),
    "active": N_("active"),
    "acknowledged": N_("acknowledged"),
    "exhausted": N_("exhausted"),
    "draft": N_("draft"),
    "approved": N_("approved"),
    "publishing": N_("publishing"),
    "published": N_("published"),
}


def state_label(state: str) -> str:
    """An incident status, deadline, page or notice state in the current language (`resolved` → 已解决)."""
    return _label(STATE_NAMES, state)


# What happened, as the record's timeline names it (English: the event's own name, underscores read as spaces).
EVENT_NAMES = {
    "opened": N_("opened"),
    "channel_created": N_("channel created"),
    "topic_set": N_("topic set"),
    "members_invited": N_("members invited"),
    "card_posted": N_("card posted"),
    "plan_posted": N_("plan posted"),
    "setup_failed": N_("setup failed"),
    "setup_resumed": N_("setup resumed"),
    "status_changed": N_("status changed"),
    "assigned": N_("assigned"),
    "role_taken": N_("role taken"),
    "severity_changed": N_("severity changed"),
    "update": N_("update"),
    "paused": N_("paused"),
    "resumed": N_("resumed"),
    "resolved": N_("resolved"),
    "closed": N_("closed"),
    "closed_without_review": N_("closed without review"),
    "archived": N_("archived"),
    "deadline_set": N_("deadline set"),
    "deadline_met": N_("deadline met"),
    "deadline_missed": N_("deadline missed"),
    "deadline_cancelled": N_("deadline cancelled"),
    "reminder_sent": N_("reminder sent"),
    "snoozed": N_("snoozed"),
    "escalation_started": N_("escalation started"),
    "paged": N_("paged"),
    "page_skipped": N_("page skipped"),
    "page_failed": N_("page failed"),
    "acknowledged": N_("acknowledged"),
    "escalation_exhausted": N_("escalation exhausted"),
    "solution_communicated": N_("solution communicated"),
    "notice_drafted": N_("notice drafted"),
    "notice_edited": N_("notice edited"),
    "notice_approved": N_("notice approved"),
    "notice_published": N_("notice published"),
    "satisfaction": N_("satisfaction"),
    "response_rated": N_("response rated"),
    "action_added": N_("action added"),
    "review_posted": N_("review posted"),
    "review_completed": N_("review completed"),
    # the running surge plan (bot/surge/plan.py)
    "surge_plan_started": N_("surge plan started"),
    "surge_ended": N_("surge plan ended"),
    "surge_activated": N_("surge plan activated"),
    # complaint routing (bot/intake/routing.py)
    "complaint_opened": N_("opened for a complaint"),
    "complaint_joined": N_("complaint joined"),
    "complaint_escalated": N_("escalated from a complaint"),
}


def event_label(event: str) -> str:
    """A timeline event's name in the current language (`severity_changed` → severity changed / 严重级别变更)."""
    return _label(EVENT_NAMES, event, event.replace("_", " "))


# A customer notice's stage (`/incident notice initial`), as stored and typed, shown in the reader's language.
STAGE_NAMES = {
    "initial": N_("initial"),
    "update": N_("update"),
    "resolved": N_("resolved"),
    "diversion": N_("diversion"),  # 客户分流 (seed 004)
}


def stage_label(stage: str) -> str:
    """A notice stage in the current language (`initial` → 首次通知); an unknown one as stored."""
    return _label(STAGE_NAMES, stage)


# A notice channel by the key staff type (`/incident notice initial hotline`): English shows the key, others translate.
NOTICE_CHANNEL_WORDS = {
    "status_page": N_("status_page"),
    "social": N_("social"),
    "hotline": N_("hotline"),
    "email": N_("email"),
    "internal": N_("internal"),
    "complaint_system": N_("complaint_system"),
}


def notice_channel_label(channel: str) -> str:
    """A notice channel's key in the current language (`hotline` → 客服热线); an unknown one as stored."""
    return _label(NOTICE_CHANNEL_WORDS, channel)
