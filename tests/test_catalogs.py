"""Every word the bot says exists in zh-CN: the message ids are extracted from the code and the templates the
way Babel's `pybabel extract` does, and each must be translated, with the same placeholders."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

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


# --- the audit: no user-facing English left outside the catalogs ------------------------------------------------

AUDITED = ("bot", "handlers")
# not the bot's words to staff: the Slack test server; the CLI's operator output (check-config, migrations...)
NOT_AUDITED = ("bot/sandbox/", "bot/cli.py")
# raised for staff to read (bot/slack/replies.py shows their message)
USER_ERRORS = {"UserInputError", "NotFoundError", "PermissionDeniedError", "ConflictError", "BotError"}
# Slack sends and replies: every argument is text someone reads (ids are not two English words)
SENDS = {"ack", "respond", "post", "dm", "ephemeral", "say", "tell", "update", "post_or_log", "post_update"}
LOGS = {"debug", "info", "warning", "error", "exception", "critical"}
# block / modal builders (bot/slack/blocks.py) and the keywords that carry words in Block Kit
BUILDERS = {"plain", "mrkdwn", "_button", "_option"}
TEXT_KEYS = {"text", "title", "label", "placeholder", "hint", "alt_text", "submit", "close"}
# a function with one of these return types returns a reply (`str | None`: the message for the actor)
SHOWN_RETURNS = {"str", "str | None", "SlackMarkup", "Optional[str]"}
WRAPPERS = {"SlackMarkup", "Markup", "str", "truncate", "safe_text", "safe_snippet"}
ENGLISH_WORD = re.compile(r"(?<![A-Za-z0-9-])[A-Za-z][A-Za-z']+(?![A-Za-z0-9-])")  # `zh-CN` is not two words
CODE = re.compile(r"\w\(|\bSELECT\b")  # SQL and expressions built as text (bot/review/kpi.py)
NOT_WORDS = re.compile(r"<[^>]*>|`[^`]*`|\{[^}]*\}|https?://\S+|:[a-z0-9_+-]+:")

# (file, the literal's text as the audit prints it): why it stays as it is
ALLOWED: dict[tuple[str, str], str] = {
    ("bot/core/config.py", "(top level)"): "a playbook path in check-config's problems, for the operator",
    ("bot/notices/outbox.py", "internal error ({})"): "an outbox step's error code, logged and counted, never posted",
    ("bot/review/weekly.py", "no channel #{}"): "the scheduler's/CLI's outcome of a weekly run, for the operator",
    ("bot/incidents/lifecycle.py", "reported → investigating"): "a status_changed event's stored text; the "
    "timeline shows it from the event's data (old/new), in the reader's language (bot/incidents/views.py)",
    ("bot/notices/service.py", "Card payments failing"): "NOTICE_SAMPLE: check-config's sample incident",
}


def _called(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _pieces(node: ast.expr) -> Iterator[ast.expr]:
    """The literal text in an expression that reaches the reader as it is: not what `_()` or a helper returns."""
    if isinstance(node, ast.Constant | ast.JoinedStr):
        yield node
    elif isinstance(node, ast.BinOp):
        yield from _pieces(node.left)
        yield from _pieces(node.right)
    elif isinstance(node, ast.IfExp):
        yield from _pieces(node.body)
        yield from _pieces(node.orelse)
    elif isinstance(node, ast.BoolOp):
        for value in node.values:
            yield from _pieces(value)
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("join", "format"):
        yield from _pieces(node.func.value)  # "...".format(...) and ", ".join([...])
        for arg in node.args:
            yield from _pieces(arg)
    elif isinstance(node, ast.Call) and _called(node) in WRAPPERS and node.args:
        yield from _pieces(node.args[0])  # SlackMarkup("..."), truncate("...", 300): the text is still shown
    elif isinstance(node, ast.List | ast.Tuple):
        for element in node.elts:
            yield from _pieces(element)


def _text(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return None


def _is_english(text: str) -> bool:
    return not CODE.search(text) and len(ENGLISH_WORD.findall(NOT_WORDS.sub(" ", text))) >= 2


def _shown(tree: ast.Module) -> Iterator[ast.expr]:
    """The expressions whose text a user reads: see USER_ERRORS, SENDS, BUILDERS/TEXT_KEYS, SHOWN_RETURNS."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _called(node)
            if name in USER_ERRORS:
                yield from node.args[:1]
                yield from (k.value for k in node.keywords if k.arg == "message")
            elif name in SENDS or name in BUILDERS:
                yield from (a for a in node.args if name not in BUILDERS or a is node.args[-1] or name == "plain")
                yield from (k.value for k in node.keywords if k.arg in TEXT_KEYS)
            elif name not in LOGS:  # a timeline event's text, a Send's text, a block's label...
                yield from (k.value for k in node.keywords if k.arg in TEXT_KEYS)
        elif isinstance(node, ast.Dict):  # Block Kit written out: {"type": "plain_text", "text": "..."}
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value in TEXT_KEYS:
                    yield value
        elif isinstance(node, ast.FunctionDef) and node.returns and ast.unparse(node.returns) in SHOWN_RETURNS:
            for inner in ast.walk(node):
                if isinstance(inner, ast.Return) and inner.value is not None:
                    yield inner.value


def untranslated() -> dict[tuple[str, str], int]:
    """Each English literal a user reads that did not go through `_()`/`ngettext`: (file, text) -> line."""
    found: dict[tuple[str, str], int] = {}
    for folder in AUDITED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            where = path.relative_to(ROOT).as_posix()
            if where.startswith(NOT_AUDITED):
                continue
            for shown in _shown(ast.parse(path.read_text(encoding="utf-8"))):
                for piece in _pieces(shown):
                    text = _text(piece)
                    if text is not None and _is_english(text):
                        found.setdefault((where, text), piece.lineno)
    return found


def test_user_facing_strings_go_through_the_catalog() -> None:
    left = [
        f"{where}:{line}: {text!r}" for (where, text), line in untranslated().items() if (where, text) not in ALLOWED
    ]
    assert not left, "wrap these in _() / ngettext (bot.core.i18n) and translate them:\n" + "\n".join(sorted(left))


def test_the_audit_sees_each_kind_of_user_facing_string(tmp_path: Path) -> None:
    """The audit finds what it is meant to (so its silence on the code means something), and only that."""
    source = '''
def reply(x) -> str | None:
    """A docstring is not shown."""
    log.info("a log line for operators %s", x)
    if x:
        raise UserInputError(f"Unknown role {x}; try again")
    if not x:
        raise ValueError("a programming error, in English")
    respond(text="Saved it for you")
    blocks = [{"type": "plain_text", "text": "Take the role"}, {"action_id": "take role"}]
    ok = _("Already translated text")
    return "Nothing to do here"
'''
    found = {_text(p) for shown in _shown(ast.parse(source)) for p in _pieces(shown) if _is_english(_text(p) or "")}
    assert found == {"Unknown role {}; try again", "Saved it for you", "Take the role", "Nothing to do here"}
