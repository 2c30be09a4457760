"""The one jinja2 environment. Sandboxed, strict about undefined variables, and safe for Slack.

Every `{{ value }}` in a Slack template is masked for customer identifiers and escaped for mrkdwn
unless it is a `SlackMarkup` made by a filter here (a mention, a channel link), so a template author
cannot forget to escape a title.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from bot.clock import utc
from bot.text import mask_identifiers, safe_text, truncate

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


class SlackMarkup(str):
    """Text already safe for Slack mrkdwn; the renderer will not escape it again."""

    __slots__ = ()


def user_mention(user_id: str | None) -> SlackMarkup:
    return SlackMarkup(f"<@{user_id}>") if user_id else SlackMarkup("_nobody_")


def channel_link(channel_id: str | None) -> SlackMarkup:
    return SlackMarkup(f"<#{channel_id}>") if channel_id else SlackMarkup("_no channel yet_")


def _finalize(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, SlackMarkup):
        return value
    return safe_text(str(value))


class Renderer:
    def __init__(self, timezone: str = "UTC", templates_dir: Path = TEMPLATES_DIR) -> None:
        self.tz = ZoneInfo(timezone)
        self.env = SandboxedEnvironment(
            loader=FileSystemLoader(str(templates_dir)),
            undefined=StrictUndefined,
            autoescape=False,
            finalize=_finalize,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self.env.filters.update(
            user=user_mention,
            channel=channel_link,
            local_time=self.local_time,
            mask=mask_identifiers,
            shorten=lambda text, limit=200: truncate(str(text), int(limit)),
            raw=SlackMarkup,
        )

    def local_time(self, when: datetime | None, fmt: str = "%Y-%m-%d %H:%M %Z") -> str:
        """A UTC time shown in the playbook's timezone."""
        if when is None:
            return "—"
        return utc(when).astimezone(self.tz).strftime(fmt)

    def render(self, name: str, **context: Any) -> str:
        """Render templates/<name> for Slack."""
        return self.env.get_template(name).render(**context).strip()

    def check(self, name: str, **context: Any) -> str | None:
        """Render once to prove a template exists and fills; returns the problem, or None."""
        try:
            self.render(name, **context)
        except TemplateError as exc:
            return f"{type(exc).__name__}: {exc}"
        return None
