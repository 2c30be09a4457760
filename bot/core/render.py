"""The one jinja2 environment. Sandboxed, strict about undefined variables, and safe for Slack.

Every `{{ value }}` in a Slack template is masked for customer identifiers and escaped for mrkdwn
unless it is a `SlackMarkup` made by a filter here (a mention, a channel link), so a template author
cannot forget to escape a title.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import BytecodeCache, FileSystemLoader, StrictUndefined, TemplateError
from jinja2.bccache import Bucket
from jinja2.sandbox import SandboxedEnvironment

from bot.core.clock import utc
from bot.core.text import mask_identifiers, safe_text, strip_control, truncate

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"


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


MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~#])")


def escape_markdown(text: str) -> str:
    """Backslash-escape what Markdown (and Slack's markdown block) would read as markup or a mention."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", text)


# A masked identifier once escaped (`\*\*\*\*7890`, `138\*\*\*\*5678`): shown as code, so it reads `****7890`
# whether or not the reader's Markdown undoes backslashes, and two masks in a line never pair up as bold.
_ESCAPED_MASK = re.compile(r"([0-9A-Za-z]*)((?:\\\*){3,})([0-9A-Za-z]*)")


def _finalize_markdown(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, SlackMarkup):
        return value
    escaped = escape_markdown(mask_identifiers(str(value)))
    return _ESCAPED_MASK.sub(lambda m: f"`{m[1]}{'*' * (len(m[2]) // 2)}{m[3]}`", escaped)


def _finalize_plain(value: Any) -> Any:
    return "" if value is None else mask_identifiers(str(value))


class _CompiledTemplates(BytecodeCache):
    """Compiled templates kept in memory for every Renderer of one kind in the process (the offline demo and
    the tests start many apps; compiling was most of the rendering time). A bucket is keyed by the template's
    file and checks its source's checksum, so an edited or overriding template is compiled afresh."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


# One cache per environment kind: the settings below change the generated code, the cache key does not see them.
_COMPILED = {kind: _CompiledTemplates() for kind in ("plain", "html", "slack", "markdown")}


class Renderer:
    """Three outputs from one template tree: Slack mrkdwn (escaped), plain text (customer notices,
    webhooks, e-mail text) and HTML (status page, e-mail HTML, autoescaped). All mask identifiers in every
    value and strip control characters from the whole output (values, templates and markup alike)."""

    def __init__(self, timezone: str = "UTC", templates_dir: Path | None = None) -> None:
        """`templates_dir` (the playbook's `template_folder:`) is searched first, then the shipped templates,
        so a bank adds or overrides templates without touching code."""
        self.tz = ZoneInfo(timezone)
        dirs = [str(templates_dir)] if templates_dir else []
        loader = FileSystemLoader([*dirs, str(TEMPLATES_DIR)])
        self.plain_env = SandboxedEnvironment(
            loader=loader,
            bytecode_cache=_COMPILED["plain"],
            undefined=StrictUndefined,
            autoescape=False,
            finalize=_finalize_plain,
            keep_trailing_newline=False,
        )
        self.html_env = SandboxedEnvironment(
            loader=loader,
            bytecode_cache=_COMPILED["html"],
            undefined=StrictUndefined,
            autoescape=True,
            finalize=_finalize_plain,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env = SandboxedEnvironment(
            loader=loader,
            bytecode_cache=_COMPILED["slack"],
            undefined=StrictUndefined,
            autoescape=False,
            finalize=_finalize,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self.markdown_env = SandboxedEnvironment(
            loader=loader,
            bytecode_cache=_COMPILED["markdown"],
            undefined=StrictUndefined,
            autoescape=False,
            finalize=_finalize_markdown,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.markdown_env.filters.update(user=user_mention, local_time=self.local_time)
        for env in (self.plain_env, self.html_env):
            env.filters.update(local_time=self.local_time, mask=mask_identifiers)
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
        return strip_control(self.env.get_template(name).render(**context)).strip()

    def render_plain(self, name: str, **context: Any) -> str:
        """Render a plain-text template (a customer notice): masked, not escaped."""
        return strip_control(self.plain_env.get_template(name).render(**context)).strip()

    def render_html(self, name: str, **context: Any) -> str:
        """Render an HTML template with autoescaping (the status page, e-mail HTML)."""
        return strip_control(self.html_env.get_template(name).render(**context))

    def render_markdown(self, name: str, **context: Any) -> str:
        """Render a Markdown document (the review draft): values masked and Markdown-escaped."""
        return strip_control(self.markdown_env.get_template(name).render(**context)).strip() + "\n"

    def check(self, name: str, *, plain: bool = False, **context: Any) -> str | None:
        """Render once to prove a template exists and fills; returns the problem, or None."""
        try:
            (self.render_plain if plain else self.render)(name, **context)
        except TemplateError as exc:
            return f"{type(exc).__name__}: {exc}"
        return None
