"""The test server's leak check: every call the bot makes is scanned for the customer identifiers a test
planted, so every test checks masking for free.

An identifier leaks when seven of its digits in a row show up anywhere (after NFKC, across the spaces,
dashes, dots, slashes, commas people type between groups), or when an e-mail address shows up whole.
"""

from __future__ import annotations

import json
import re
import threading
import unicodedata
from typing import Any

WINDOW = 7
# Between the digits of one number: the separators the masking reads (spaces, dashes, dots, and the list-like
# slash, underscore, full-width comma, middle dot and ideographic full stop).
_RUN = re.compile(r"[0-9](?:[ \t\-\u2010-\u2015\u2212.\u3000/\uff0f_\uff0c\u00b7\u30fb\u3002\uff61]{0,3}[0-9])*")
_SKIP_KEYS = frozenset({"ts", "thread_ts", "trigger_id", "view_id", "cursor", "hash"})  # Slack's own numbers


class LeakWatch:
    """Planted identifiers and the violations seen; thread-safe (the sandbox serves from many threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[str, str] = {}  # seven digits in a row → the identifier they come from
        self._emails: set[str] = set()
        self.violations: list[str] = []

    def plant(self, *identifiers: str) -> None:
        """Register identifiers a test puts into the bot's input; any of them in an output is a leak."""
        with self._lock:
            for identifier in identifiers:
                text = unicodedata.normalize("NFKC", identifier).lower()
                if "@" in text:
                    self._emails.add(text.strip())
                    continue
                digits = re.sub(r"[^0-9]", "", text)
                for i in range(len(digits) - WINDOW + 1):
                    self._windows[digits[i : i + WINDOW]] = identifier

    def leaks_in(self, text: str) -> list[str]:
        """The planted identifiers `text` gives away."""
        norm = unicodedata.normalize("NFKC", text)
        found = []
        if self._windows:
            for run in _RUN.findall(norm):
                digits = re.sub(r"[^0-9]", "", run)
                for i in range(len(digits) - WINDOW + 1):
                    hit = self._windows.get(digits[i : i + WINDOW])
                    if hit is not None:
                        found.append(hit)
                        break
        lowered = norm.lower()
        found += [e for e in self._emails if e in lowered]
        return found

    def scan(self, where: str, value: Any, key: str = "") -> None:
        """Check every string inside a call's arguments (text, blocks, views, names, topics, file content)."""
        if key in _SKIP_KEYS:
            return
        if isinstance(value, dict):
            for k, v in value.items():
                self.scan(where, v, str(k))
        elif isinstance(value, list | tuple):
            for v in value:
                self.scan(where, v, key)
        elif isinstance(value, bytes):
            try:
                self.scan(where, value.decode("utf-8"), key)
            except UnicodeDecodeError:
                return  # an image: no text to leak
        elif isinstance(value, str):
            if value[:1] in "[{":
                try:  # JSON inside a form field (blocks, view, files)
                    self.scan(where, json.loads(value), key)
                    return
                except ValueError:
                    pass
            for identifier in self.leaks_in(value):
                with self._lock:
                    self.violations.append(f"{where} {key or 'value'}: {identifier!r} unmasked in {value[:300]!r}")
