"""The one jinja2 environment. Sandboxed, strict about undefined variables, and safe for Slack.

Every `{{ value }}` in a Slack template is masked for customer identifiers and escaped for mrkdwn
unless it is a `SlackMarkup` made by a filter here (a mention, a channel link), so a template author
cannot forget to escape a title.

Templates speak through jinja2's i18n extension: `{% trans name=value %}English text {{ name }}{% endtrans %}`
(trimmed: line breaks inside a block are one space) or `_("English text %(name)s", name=value)`. The text is
looked up in bot.core.i18n's catalogs in the current language (`use_locale`, or `locale=` on a render call)
at render time, so one compiled template serves every language. The values placed into a translated text go
through the same masking and escaping as `{{ value }}` does, before they are placed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import BytecodeCache, FileSystemLoader, StrictUndefined, TemplateError, pass_context
from jinja2.bccache import Bucket
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from bot.core import i18n
from bot.core.clock import utc
from bot.core.i18n import N_, _
from bot.core.labels import STAGE_NAMES, STATE_NAMES
from bot.core.text import mask_identifiers, safe_text, strip_control, truncate

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"


class SlackMarkup(str):
    """Text already safe for Slack mrkdwn; the renderer will not escape it again."""

    __slots__ = ()


def user_mention(user_id: str | None) -> SlackMarkup:
    return SlackMarkup(f"<@{user_id}>") if user_id else SlackMarkup("_" + _("nobody") + "_")


def channel_link(channel_id: str | None) -> SlackMarkup:
    return SlackMarkup(f"<#{channel_id}>") if channel_id else SlackMarkup("_" + _("no channel yet") + "_")


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


def _finalize_html(value: Any) -> Any:
    """As plain, but a translated sentence (Markup, its values escaped already) stays markup."""
    if isinstance(value, Markup):
        return Markup(mask_identifiers(str(value)))
    return _finalize_plain(value)


Finalize = Callable[[Any], Any]


def _translating(env: SandboxedEnvironment, finalize: Finalize, wrap: Callable[[str], str]) -> None:
    """Give the environment gettext callables that translate in the current language and pass each value
    through the environment's `finalize` before it is placed, so `{% trans title=title %}` masks and escapes
    `title` exactly as `{{ title }}` would. The finished sentence is wrapped (SlackMarkup, or Markup where the
    environment autoescapes) so it is not escaped twice. jinja2's "newstyle" gettext: the callable receives
    the values and formats `%(name)s` itself (installed as globals, so jinja2 does not format them again)."""

    def fill(ctx: Context, text: str, values: dict[str, Any]) -> str:
        placed = {name: finalize(value) for name, value in values.items()}
        if ctx.eval_ctx.autoescape:
            return Markup(text) % placed  # markupsafe escapes each value
        return wrap(text % placed) if placed else wrap(text.replace("%%", "%"))

    @pass_context
    def gettext(ctx: Context, message: str, /, **values: Any) -> str:
        return fill(ctx, i18n.translations(i18n.current_locale()).gettext(message), values)

    @pass_context
    def ngettext(ctx: Context, singular: str, plural: str, n: int, /, **values: Any) -> str:
        values.setdefault("num", n)
        return fill(ctx, i18n.translations(i18n.current_locale()).ngettext(singular, plural, n), values)

    env.add_extension("jinja2.ext.i18n")
    env.policies["ext.i18n.trimmed"] = True  # as tests/test_catalogs.py extracts them
    env.newstyle_gettext = True  # type: ignore[attr-defined]
    env.globals.update(gettext=gettext, _=gettext, ngettext=ngettext)


def zone_label(when: datetime) -> str:
    """The zone of a local time, unambiguously: `UTC+8` (never `CST`, which is also US Central); in Chinese
    China's own zone reads `北京时间`."""
    offset = when.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    if i18n.current_locale() == "zh-CN" and minutes == 8 * 60 and str(when.tzinfo) in CHINA_ZONES:
        return "北京时间"
    if minutes == 0:
        return "UTC"
    sign, minutes = ("+" if minutes > 0 else "-"), abs(minutes)
    return f"UTC{sign}{minutes // 60}" + (f":{minutes % 60:02d}" if minutes % 60 else "")


def local_time(when: datetime | None, tz: tzinfo, fmt: str = "%Y-%m-%d %H:%M %Z") -> str:
    """A UTC time shown in `tz` (the playbook's), for services with no renderer at hand: `%Z` is the
    unambiguous zone_label, so a time never reaches a reader without its zone."""
    if when is None:
        return "—"
    local = utc(when).astimezone(tz)
    return local.strftime(fmt.replace("%Z", zone_label(local).replace("%", "%%")))


# The states the code hands to templates as bare values, shown with `{{ value | word }}`: the labels' own tables.
WORDS = {**STATE_NAMES, **STAGE_NAMES, "no longer applies": N_("no longer applies")}


def word(value: Any) -> str:
    """A state's word in the current language (an unknown one as it is)."""
    text = str(value)
    return i18n.gettext(WORDS[text]) if text in WORDS else text


CHINA_ZONES = {"Asia/Shanghai", "Asia/Chongqing", "Asia/Chungking", "Asia/Harbin", "Asia/Urumqi", "PRC"}


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

        def environment(kind: str, finalize: Finalize, *, autoescape: bool, trim: bool) -> SandboxedEnvironment:
            return SandboxedEnvironment(
                loader=loader,
                bytecode_cache=_COMPILED[kind],
                undefined=StrictUndefined,
                autoescape=autoescape,
                finalize=finalize,
                trim_blocks=trim,
                lstrip_blocks=trim,
                keep_trailing_newline=False,
            )

        self.plain_env = environment("plain", _finalize_plain, autoescape=False, trim=False)
        self.html_env = environment("html", _finalize_html, autoescape=True, trim=True)
        self.env = environment("slack", _finalize, autoescape=False, trim=True)
        self.markdown_env = environment("markdown", _finalize_markdown, autoescape=False, trim=True)
        _translating(self.plain_env, _finalize_plain, str)
        _translating(self.html_env, _finalize_plain, str)
        _translating(self.env, _finalize, SlackMarkup)
        _translating(self.markdown_env, _finalize_markdown, SlackMarkup)
        self.markdown_env.filters.update(user=user_mention, local_time=self.local_time, word=word)
        for env in (self.plain_env, self.html_env):
            env.filters.update(local_time=self.local_time, mask=mask_identifiers, word=word)
        self.env.filters.update(
            user=user_mention,
            channel=channel_link,
            local_time=self.local_time,
            mask=mask_identifiers,
            shorten=lambda text, limit=200: truncate(str(text), int(limit)),
            raw=SlackMarkup,
            word=word,
        )

    def local_time(self, when: datetime | None, fmt: str = "%Y-%m-%d %H:%M %Z") -> str:
        """A UTC time shown in the playbook's timezone; `%Z` is the unambiguous zone_label."""
        return local_time(when, self.tz, fmt)

    def _render(self, env: SandboxedEnvironment, name: str, locale: str | None, context: dict[str, Any]) -> str:
        with i18n.use_locale(locale):  # None keeps the language the caller's scope speaks
            return env.get_template(name).render(**context)

    def render(self, name: str, *, locale: str | None = None, **context: Any) -> str:
        """Render templates/<name> for Slack, in `locale` or the current language."""
        return strip_control(self._render(self.env, name, locale, context)).strip()

    def render_plain(self, name: str, *, locale: str | None = None, **context: Any) -> str:
        """Render a plain-text template (a customer notice): masked, not escaped."""
        return strip_control(self._render(self.plain_env, name, locale, context)).strip()

    def render_html(self, name: str, *, locale: str | None = None, **context: Any) -> str:
        """Render an HTML template with autoescaping (the status page, e-mail HTML)."""
        return strip_control(self._render(self.html_env, name, locale, context))

    def render_markdown(self, name: str, *, locale: str | None = None, **context: Any) -> str:
        """Render a Markdown document (the review draft): values masked and Markdown-escaped."""
        return strip_control(self._render(self.markdown_env, name, locale, context)).strip() + "\n"

    def check(self, name: str, *, plain: bool = False, **context: Any) -> str | None:
        """Render once to prove a template exists and fills; returns the problem, or None."""
        try:
            (self.render_plain if plain else self.render)(name, **context)
        except TemplateError as exc:
            return f"{type(exc).__name__}: {exc}"
        return None
