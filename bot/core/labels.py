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
    name = STATE_NAMES.get(state)
    return _(name) if name else state
