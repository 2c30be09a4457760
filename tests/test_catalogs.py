"""Every word the bot says exists in zh-CN: the message ids are extracted from the code and the templates the
way Babel's `pybabel extract` does, and each must be translated, with the same placeholders."""

from __future__ import annotations

import re

from babel.messages.extract import extract_from_dir

from bot.core.i18n import LOCALES_DIR, _, translations, use_locale
from tests.conftest import ROOT

KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
# Notice templates are written per locale (templates/notices/<locale>/), and the test server is not the bot.
SKIP = ("templates/notices/", "bot/sandbox/")
PLACEHOLDER = re.compile(r"\{(\w+)\}|%\((\w+)\)s")


def extracted() -> dict[str, str]:
    """Each message id, with where it was first found."""
    found: dict[str, str] = {}
    for folder, method in (("bot", "python"), ("handlers", "python"), ("templates", "jinja2.ext:babel_extract")):
        mapping = [("**.py", method)] if method == "python" else [("**.j2", method)]
        options = {"**.j2": {"extensions": "jinja2.ext.i18n", "trimmed": "true"}}
        for filename, lineno, message, _comments, _context in extract_from_dir(
            ROOT / folder, mapping, options_map=options, keywords=KEYWORDS
        ):
            where = f"{folder}/{filename}"
            if where.startswith(SKIP):
                continue
            for text in message if isinstance(message, tuple) else (message,):
                if text:
                    found.setdefault(text, f"{where}:{lineno}")
    return found


def test_every_message_has_a_zh_cn_translation_with_the_same_placeholders() -> None:
    zh = translations("zh-CN")
    missing, mismatched = [], []
    for text, where in extracted().items():
        translated = zh.gettext(text)
        if translated == text and re.search(r"[A-Za-z]{2}", text):
            missing.append(f"{where}: {text!r}")
        elif set(PLACEHOLDER.findall(translated)) != set(PLACEHOLDER.findall(text)):
            mismatched.append(f"{where}: {text!r} -> {translated!r}")
    assert not missing, "no zh-CN translation in locales/zh_CN/LC_MESSAGES/*.po for:\n" + "\n".join(missing)
    assert not mismatched, "placeholders differ:\n" + "\n".join(mismatched)


def test_the_catalogs_exist_for_both_languages_and_english_is_the_identity() -> None:
    assert list((LOCALES_DIR / "zh_CN" / "LC_MESSAGES").glob("*.po"))
    with use_locale("en-GB"):
        assert _("Incident {number} opened", number=7) == "Incident 7 opened"


def test_a_message_in_two_catalogs_reads_the_same_in_both() -> None:
    """Catalogs are merged on load, so a msgid two parts both translate must agree, or the load order decides."""
    from babel.messages.pofile import read_po

    seen: dict[str, tuple[str, str]] = {}
    clashes = []
    for po in sorted((LOCALES_DIR / "zh_CN" / "LC_MESSAGES").glob("*.po")):
        with po.open("rb") as f:
            for message in read_po(f):
                if not message.id or not message.string:
                    continue
                key, text = str(message.id), str(message.string)
                if key in seen and seen[key][1] != text:
                    clashes.append(f"{key!r}: {seen[key][0]} says {seen[key][1]!r}, {po.name} says {text!r}")
                seen.setdefault(key, (po.name, text))
    assert not clashes, "\n".join(clashes)
