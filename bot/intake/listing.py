"""`/incident complaints [filter]`: the recent complaints, for the person who decides what becomes an incident.

Every complaint is shown masked, with its incident when it has one and an Escalate button when it has none;
high-priority customers (the playbook's `surge.high_priority`, seed 004) are flagged. Read-only: one query.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime, time

from sqlalchemy.orm import Session, sessionmaker

from bot.core.clock import Clock, utc
from bot.core.config import HighPrioritySpec, Playbook
from bot.core.errors import UserInputError
from bot.core.i18n import N_, _
from bot.core.text import safe_text, truncate
from bot.intake.routing import CHANNEL_NAMES, ComplaintRouter
from bot.intake.service import CONTACT_CHANNELS
from bot.slack.complaint_blocks import ComplaintLine, complaint_list_blocks
from store import routing as store
from store.models import Complaint, Incident
from store.states import DONE

SHOWN = 10  # complaints per answer; the rest are counted in a "N more" line
SCANNED = 500  # the newest complaints a filter looks through

# what a Chinese keyboard types for each filter word
WORDS = {
    "open": "open",
    "未处理": "open",
    "未结": "open",
    "high": "high",
    "高优先级": "high",
    "today": "today",
    "今天": "today",
    "今日": "today",
}
CATEGORY_PREFIXES = ("category:", "cat:", "类别:", "分类:")
CHANNEL_PREFIXES = ("channel:", "渠道:")
FILTER_HELP = N_(
    "Filters: `open`, `high`, `today`, `category:<category>`, `channel:<{channels}>`, or a complaint number. "
    "Example: `/incident complaints open category:financial`."
)


@dataclass(frozen=True)
class ComplaintFilter:
    open: bool = False
    high: bool = False
    today: bool = False
    category: str | None = None
    channel: str | None = None
    number: int | None = None


def _refuse(word: str) -> UserInputError:
    return UserInputError(
        _("I don't understand `{word}`.", word=safe_text(word))
        + " "
        + _(FILTER_HELP, channels="|".join(CONTACT_CHANNELS))
    )


def parse_filter(text: str) -> ComplaintFilter:
    """The filter words of `/incident complaints`, in any order; a word it does not know is refused by name."""
    values: dict[str, object] = {}
    for raw in unicodedata.normalize("NFKC", text or "").split():
        word = raw.casefold()
        if word in WORDS:
            values[WORDS[word]] = True
        elif word.startswith(CATEGORY_PREFIXES) and word.partition(":")[2]:
            values["category"] = word.partition(":")[2]
        elif word.startswith(CHANNEL_PREFIXES):
            channel = word.partition(":")[2]
            if channel not in CONTACT_CHANNELS:
                raise _refuse(raw)
            values["channel"] = channel
        elif word.lstrip("#").isdigit() and 0 < int(word.lstrip("#")) < 2**31:
            values["number"] = int(word.lstrip("#"))
        else:
            raise _refuse(raw)
    return ComplaintFilter(**values)  # type: ignore[arg-type]


def is_high_priority(complaint: Complaint, spec: HighPrioritySpec) -> bool:
    """Seed 004's high-priority customers: any of the playbook's rules flags one."""
    if spec.min_amount is not None and complaint.amount is not None and complaint.amount >= spec.min_amount:
        return True
    if complaint.severity is not None and complaint.severity in spec.severities:
        return True
    summary = unicodedata.normalize("NFKC", complaint.summary).casefold()
    if any(unicodedata.normalize("NFKC", word).casefold() in summary for word in spec.keywords):
        return True
    return complaint.product in spec.products


class ComplaintList:
    def __init__(self, *, playbook: Playbook, db: sessionmaker[Session], clock: Clock, router: ComplaintRouter) -> None:
        self.playbook = playbook
        self.db = db
        self.clock = clock
        self.router = router

    def answer(self, text: str) -> tuple[str, list[dict[str, object]]]:
        """The reader's list (text and blocks), newest first, at most SHOWN of them."""
        wanted = parse_filter(text)
        since = None
        if wanted.today:
            local = self.clock.now().astimezone(self.playbook.tz)
            since = datetime.combine(local.date(), time(0), self.playbook.tz)
        with self.db() as s:
            rows = store.list_recent_complaints(
                s, limit=SCANNED, number=wanted.number, since=since, contact_channel=wanted.channel
            )
        rows = [(c, i) for c, i in rows if self._keeps(wanted, c, i)]
        if not rows:
            text = _("No complaints match.") if text.strip() else _("No complaints recorded yet.")
            return text, complaint_list_blocks(text, [], None)
        shown, more = rows[:SHOWN], len(rows) - SHOWN
        header = _("Complaints, newest first ({count}):", count=len(rows))
        more_line = _("{n} more; narrow it with a filter, e.g. `open`, `high`, `today`.", n=more) if more > 0 else None
        lines = [self._line(c, i) for c, i in shown]
        return header, complaint_list_blocks(header, lines, more_line)

    def _keeps(self, wanted: ComplaintFilter, complaint: Complaint, incident: Incident | None) -> bool:
        if wanted.open and incident is not None and incident.status in DONE:
            return False
        if wanted.high and not is_high_priority(complaint, self.playbook.surge.high_priority):
            return False
        if wanted.category is not None:
            mapped = self.router.category_of(complaint.category)
            if wanted.category not in (mapped, complaint.category.casefold()):
                return False
        return True

    def _line(self, complaint: Complaint, incident: Incident | None) -> ComplaintLine:
        received = utc(complaint.received_at).astimezone(self.playbook.tz).strftime("%m-%d %H:%M")
        mapped = self.router.category_of(complaint.category)
        category = safe_text(complaint.category)
        if mapped is not None and mapped != complaint.category:
            category = f"{mapped} ({category})"
        flag = _(":small_red_triangle: high priority") + " · " if self._high(complaint) else ""
        channel = _(CHANNEL_NAMES.get(complaint.contact_channel, complaint.contact_channel))
        head = f"*#{complaint.id}* {flag}{received} · {channel} · {category} · {safe_text(complaint.product)}"
        body = "> " + safe_text(truncate(" ".join(complaint.summary.split()), 280))
        if incident is not None:
            where = f" <#{incident.channel_id}>" if incident.channel_id else ""
            body += "\n" + _("Incident #{number}{where}", number=incident.id, where=where)
            return ComplaintLine(f"{head}\n{body}", escalate=None)
        return ComplaintLine(f"{head}\n{body}", escalate=str(complaint.id))

    def _high(self, complaint: Complaint) -> bool:
        return is_high_priority(complaint, self.playbook.surge.high_priority)
