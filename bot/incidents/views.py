"""Read-only answers, just for the person asking: an incident's status card, its timeline, the open list, help.

Each loads what it shows in one read-only session and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot.core.config import Playbook
from bot.core.i18n import _, current_locale
from bot.core.labels import DEADLINE_EVENTS, event_label, stage_label, state_label
from bot.core.render import Renderer, SlackMarkup, user_mention
from bot.core.text import safe_snippet, safe_text, truncate
from bot.deadlines.escalation import level_name
from bot.incidents.card import card
from bot.incidents.channel import failed_step_name
from bot.incidents.permissions import Action, Permissions
from bot.incidents.records import locate_incident
from bot.slack.gateway import SlackGateway
from store import queries
from store.models import Incident

TIMELINE_MAX = 39_000  # under Slack's 40,000 characters for a message's text


# timeline events whose text is a deadline's name (as stored when it was set) and whose data names its key


class Views:
    def __init__(
        self,
        *,
        playbook: Playbook,
        db: sessionmaker[Session],
        slack: SlackGateway,
        renderer: Renderer,
        permissions: Permissions,
    ) -> None:
        self.playbook = playbook
        self.db = db
        self.slack = slack
        self.renderer = renderer
        self.permissions = permissions

    def readable(self, action: Action, *, channel_id: str | None, number: int | None, actor: str) -> Incident:
        """The incident a read names, if `actor` may read it from where they asked."""
        with self.db() as s:
            incident = locate_incident(s, channel_id=channel_id, number=number)
        self.permissions.require(action, incident, actor)
        return incident

    def status_blocks(
        self, *, channel_id: str | None, number: int | None, actor: str
    ) -> tuple[str, list[dict[str, Any]]]:
        incident = self.readable(Action.STATUS, channel_id=channel_id, number=number, actor=actor)
        return card(incident, self.playbook, self.renderer)

    def timeline_text(self, *, channel_id: str | None, number: int | None, actor: str) -> str:
        incident = self.readable(Action.TIMELINE, channel_id=channel_id, number=number, actor=actor)
        with self.db() as s:  # asking Slack who may read it happens outside any transaction
            named = self._names_in_language(s, incident.id, incident.kind)
            events = [
                {
                    "at": e.at,
                    "actor_id": e.actor_id or self.slack.bot_user_id,
                    "summary": self._summary(e.event, named(e.event, e.text, e.data or {}), e.data, kind=incident.kind),
                }
                for e in queries.list_timeline(s, incident.id)
            ]
        text = self.renderer.render("slack/timeline.j2", number=incident.id, events=events)
        return truncate(text, TIMELINE_MAX)

    def _names_in_language(self, s: Session, incident_id: int, kind: str) -> Callable[[str, str, dict[str, Any]], str]:
        """The record keeps a reminder's deadline and a page's level by their English names; the reader reads the
        playbook's name in their language (a frozen chain's level keeps the `names:` it was started with)."""
        deadlines = {d.id: d for d in queries.list_deadlines(s, incident_id)}
        chains = {c.id: c for c in queries.list_escalations(s, incident_id)}

        def named(event: str, text: str, data: dict[str, Any]) -> str:
            deadline = deadlines.get(int(data.get("deadline_id") or 0)) if event == "reminder_sent" else None
            if deadline is not None:
                return self.playbook.deadline_name(kind, deadline.key, deadline.name)
            chain = chains.get(int(data.get("escalation_id") or 0)) if event in ("paged", "page_skipped") else None
            level = data.get("level")
            if chain is not None and isinstance(level, int) and 0 <= level < len(chain.levels):
                return level_name(chain.levels[level])
            return text

        return named

    def _summary(self, event: str, text: str, data: dict[str, Any], *, kind: str = "") -> SlackMarkup:
        """One line of the timeline: what happened, in the reader's language (the text typed stays as typed)."""
        if event in DEADLINE_EVENTS and isinstance(data.get("key"), str):  # the playbook's name, not the stored one
            text = self.playbook.deadline_name(kind, data["key"], text)
        t = safe_snippet(text, 300)
        role = safe_text(self.playbook.role_name(data["role"]) if isinstance(data.get("role"), str) else text)
        summaries = {
            "opened": lambda: _(
                "opened it ({severity} {kind}): {text}",
                severity=str(data.get("severity", "")).upper(),
                kind=self._kind_word(str(data.get("kind", ""))),
                text=t,
            ),
            "assigned": lambda: _("assigned {user} as *{role}*", user=user_mention(data.get("user")), role=role),
            "role_taken": lambda: _("took the role *{role}*", role=role),
            "severity_changed": lambda: _("changed the severity {change}", change=t),
            "status_changed": lambda: _("status {change}", change=self._status_change(t, data)),
            "update": lambda: _("update: {text}", text=t),
            "resolved": lambda: _("resolved it: {text}", text=t),
            "closed": lambda: _("closed it"),
            "channel_created": lambda: _("created the channel #{name}", name=t),
            "setup_failed": lambda: (
                f":warning: {self._setup_failure(t, data)} (`{safe_text(str(data.get('error', '')))}`)"
            ),
            "repaired": lambda: _("repaired the set-up"),
        }
        if event.startswith("notice_"):
            t = safe_text(stage_label(text))  # a notice event's text is its stage
        said = summaries.get(event)
        if said is not None:
            return SlackMarkup(said())
        # every other event by its name in the reader's language (bot.core.labels), then what it was about
        return SlackMarkup(_("{event}: {detail}", event=event_label(event), detail=t) if t else event_label(event))

    def _kind_word(self, key: str) -> str:
        """The kind as a reader says it: its key in English (what staff type), its own name in Chinese."""
        spec = self.playbook.kinds.get(key)
        return spec.name_in(current_locale()) if spec is not None and current_locale() != "en" else key

    @staticmethod
    def _status_change(text: str, data: dict[str, Any]) -> str:
        """`reported → investigating` in the reader's language: the states are in the event's data (the stored
        text is English, written in whatever language the request that changed it spoke)."""
        old, new = data.get("old"), data.get("new")
        if isinstance(old, str) and isinstance(new, str):
            return f"{state_label(old)} → {state_label(new)}"
        return text

    @staticmethod
    def _setup_failure(text: str, data: dict[str, Any]) -> str:
        """What Slack failed at, in the reader's language (the failed effect is in the data since the audit)."""
        effect = data.get("effect")
        return _("Slack failed while {step}", step=failed_step_name(effect)) if isinstance(effect, str) else text

    def list_text(self) -> str:
        with self.db() as s:
            incidents = [
                {
                    "id": i.id,
                    "severity": i.severity,
                    "kind": self._kind_word(i.kind),
                    "title": i.title,
                    "status": i.status,
                    "channel_id": i.channel_id,
                    "lead": self.permissions.lead(i),
                }
                for i in queries.list_open_incidents(s)
            ]
        return self.renderer.render("slack/list.j2", incidents=incidents)
