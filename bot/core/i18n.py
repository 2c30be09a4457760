"""Every word the bot says, in the reader's language: gettext catalogs (Babel), one per part of the code.

The message ids are the English text, so `en` needs no translation; `zh-CN` must translate every id (a test
extracts the ids from the code and the templates and fails on one missing). Catalogs are the `.po` files under
`locales/<locale>/LC_MESSAGES/`; each part of the code keeps its own file (bot.po, templates.po, commands.po,
...), and they are merged on load, so no one file is edited by everyone.

Which language: the request's reader (the Slack user's locale, `users.info` with `include_locale`) for
ephemeral replies, refusals, DMs and modals; the playbook's default (`locale:`) for everything posted in a
channel (the card, announcements, reminders and pages posted in channels, notice previews, the review draft).
`use_locale` sets it for a block of work (a context variable, so threads and requests do not mix); `_` and the
templates translate in it. The entry points set it, not the code below them:

- a bolt listener runs in its reader's language (the middleware in bot/app.py; the listener executor copies
  the context into its threads);
- the scheduler's sweeps, the outbox, the CLI and the web routes (status page) run in the playbook's;
- where channel-bound text is built inside a reader-scoped listener, wrap that part in
  `with in_channel_language(playbook):` (the one rule a service author has to remember; tests/test_language.py
  audits that every channel post in a reader-scoped service is built inside one);
- a DM speaks its recipient's language, not the actor's: `with in_recipients_language(locale, playbook):`
  around the text, with `locale` the recipient's Slack locale (`SlackGateway.user_locale`, cached).

With no scope at all (a unit test calling a function directly) the language is English (`FALLBACK`), the
message ids themselves.
"""

from __future__ import annotations

import contextvars
import io
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES_DIR = Path(__file__).resolve().parents[2] / "locales"
SUPPORTED = ("zh-CN", "en")
FALLBACK = "en"  # outside any scope: the message ids as they are

_current: contextvars.ContextVar[str] = contextvars.ContextVar("locale", default=FALLBACK)


def normalize(locale: str | None, default: str = FALLBACK) -> str:
    """One of SUPPORTED for a Slack locale (`zh-CN`, `zh-TW`, `en-US`, `en-GB`, `ja-JP`, None...)."""
    if not locale:
        return default
    tag = locale.replace("_", "-").lower()
    if tag.startswith("zh"):
        return "zh-CN"
    if tag.startswith("en"):
        return "en"
    return default


def _folder(locale: str) -> str:
    return locale.replace("-", "_")


@cache
def translations(locale: str) -> NullTranslations:
    """The merged catalogs of `locale`, compiled in memory from the .po files (read once per process)."""
    merged: Translations | None = None
    for po in sorted((LOCALES_DIR / _folder(locale) / "LC_MESSAGES").glob("*.po")):
        with po.open("rb") as f:
            catalog = read_po(f, locale=_folder(locale))
        compiled = io.BytesIO()
        write_mo(compiled, catalog)  # fuzzy entries are left out, as msgfmt does
        compiled.seek(0)
        part = Translations(compiled, domain=po.stem)
        merged = part if merged is None else merged.merge(part)
    return merged or NullTranslations()


def current_locale() -> str:
    return _current.get()


@contextmanager
def use_locale(locale: str | None) -> Iterator[str]:
    """Speak `locale` (normalised; an unknown or empty one keeps the current language) inside the block."""
    token = _current.set(normalize(locale, _current.get()))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


class HasLocale(Protocol):
    """A playbook, as far as the language goes (its `locale:`)."""

    @property
    def locale(self) -> str: ...


@contextmanager
def in_channel_language(playbook: HasLocale) -> Iterator[str]:
    """Speak the channel's language (the playbook's `locale`) inside the block: text posted in a channel reads
    the same whoever's request built it."""
    with use_locale(playbook.locale) as locale:
        yield locale


@contextmanager
def in_recipients_language(locale: str | None, playbook: HasLocale) -> Iterator[str]:
    """Speak a DM's recipient's language (`locale`, their Slack locale) inside the block; the playbook's when
    theirs is unknown or unsupported, never the sender's."""
    with use_locale(normalize(locale, normalize(playbook.locale))) as chosen:
        yield chosen


def set_locale(locale: str | None) -> str:
    """Speak `locale` from here to the end of the current context. Only for an entry point that runs in a
    context of its own (bolt's dispatch of one request, see bot/app.py); everywhere else, `use_locale`."""
    _current.set(normalize(locale, _current.get()))
    return _current.get()


def gettext(message: str, /, **params: Any) -> str:
    """`message` in the current language, with `{name}` placeholders filled from `params`."""
    text = translations(_current.get()).gettext(message)
    return text.format(**params) if params else text


_ = gettext


def ngettext(singular: str, plural: str, n: int, /, **params: Any) -> str:
    """The singular or plural form for `n` (`{n}` is filled too)."""
    text = translations(_current.get()).ngettext(singular, plural, n)
    return text.format(n=n, **params)


def N_(message: str, /) -> str:  # noqa: N802  (gettext's own name for the marker)
    """Marks `message` for the catalog without translating it now (translated where it is shown)."""
    return message
