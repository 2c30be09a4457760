"""The plan's versions: each playbook the bot loads is stored once per (version, content hash), a changed file
under an unchanged version is refused, and the stored texts can be listed and compared.

The content hash is taken over the parsed YAML without `version` and `changelog`, so a comment or a re-indented
line is not a change of the plan, while any changed value is. Operator-facing (the CLI and start-up): English.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

import yaml
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.core.clock import utc
from bot.core.config import ConfigError, Playbook
from store import plan as queries

UNVERSIONED = ("version", "changelog")  # what the content hash leaves out
HASH_PREFIX = 12


def content_hash(text: str) -> str:
    """sha256 of the playbook's content: its parsed values (not comments or layout), without version and changelog."""
    data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml when there is one
    content = {k: v for k, v in data.items() if k not in UNVERSIONED} if isinstance(data, dict) else data
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Adoption:
    """What loading a playbook did to the store: `first` (nothing stored before), `same` (already stored), `new`."""

    outcome: Literal["first", "same", "new"]
    version: str
    content_hash: str
    previous: str | None = None  # the version in force before a new one


def _refusals(
    session: Session, playbook: Playbook, digest: str
) -> tuple[list[str], Literal["first", "same", "new"], str | None]:
    latest = queries.latest_playbook_version(session)
    if latest is None:
        return [], "first", None  # a fresh database: the first load is just recorded
    if latest.version == playbook.version:
        if latest.content_hash == digest:
            return [], "same", latest.version
        return (
            [
                f"version: the playbook's content changed but its version is still {playbook.version!r} "
                f"(stored {utc(latest.loaded_at):%Y-%m-%d %H:%M} UTC with hash {latest.content_hash[:HASH_PREFIX]}, "
                f"the file's is {digest[:HASH_PREFIX]}); raise `version` and add a `changelog` entry for the new "
                "version (version, date, reason)"
            ],
            "new",
            latest.version,
        )
    problems = []
    if queries.find_playbook_versions(session, playbook.version):
        problems.append(
            f"version: {playbook.version!r} is an old version of the plan (the one in force is {latest.version!r}); "
            "old versions are kept for tracing but never used again: raise `version` and add a `changelog` entry"
        )
    elif playbook.changelog_entry() is None:
        problems.append(
            f"changelog: no entry for version {playbook.version!r} (the version in force is {latest.version!r}); "
            f"add one: - {{version: {playbook.version!r}, date: YYYY-MM-DD, reason: why the plan changed}}"
        )
    return problems, "new", latest.version


def check_version(session: Session, playbook: Playbook, text: str, source: str = "config.yaml") -> Adoption:
    """Raise ConfigError if this playbook may not be used against this store; else say what loading it does."""
    digest = content_hash(text)
    problems, outcome, previous = _refusals(session, playbook, digest)
    if problems:
        raise ConfigError(source, problems)
    return Adoption(outcome, playbook.version, digest, previous)


def adopt_playbook(
    db: sessionmaker[Session], playbook: Playbook, text: str, now: datetime, source: str = "config.yaml"
) -> Adoption:
    """At start-up: refuse a changed playbook whose version was not raised, else store a version not seen yet.
    Each version is stored with its changelog entry (the first one a database sees may have none)."""
    try:
        return _adopt(db, playbook, text, now, source)
    except IntegrityError:  # another replica stored the same (version, hash) a moment ago: check again
        return _adopt(db, playbook, text, now, source)


def _adopt(db: sessionmaker[Session], playbook: Playbook, text: str, now: datetime, source: str) -> Adoption:
    with db.begin() as s:
        adoption = check_version(s, playbook, text, source)
        if adoption.outcome != "same":
            entry = playbook.changelog_entry()
            queries.add_playbook_version(
                s,
                version=playbook.version,
                content_hash=adoption.content_hash,
                text=text,
                loaded_at=now,
                effective_on=entry.date if entry else utc(now).astimezone(playbook.tz).date(),
                reason=entry.reason if entry else "",
                changes=list(entry.changes) if entry else [],
            )
    return adoption


@dataclass(frozen=True)
class HistoryLine:
    version: str
    loaded_at: datetime
    effective_on: date
    content_hash: str
    reason: str
    confirmed: int
    asked: int


def history(db: sessionmaker[Session]) -> list[HistoryLine]:
    """Every version loaded, oldest first, with how many of those asked confirmed reading it."""
    with db() as s:
        rows = queries.list_playbook_versions(s)
        counts = queries.count_plan_confirmations(s, [r.id for r in rows])
        return [
            HistoryLine(
                r.version,
                utc(r.loaded_at),
                r.effective_on,
                r.content_hash,
                r.reason,
                *counts.get(r.id, (0, 0)),
            )
            for r in rows
        ]


def stored_text(db: sessionmaker[Session], version: str) -> str:
    """The stored text of `version` (the latest load of it); ConfigError naming it if it was never loaded."""
    with db() as s:
        rows = queries.find_playbook_versions(s, version)
        if not rows:
            known = ", ".join(r.version for r in queries.list_playbook_versions(s)) or "none yet"
            raise ConfigError("command line", [f"version: {version!r} was never loaded (stored versions: {known})"])
        return rows[-1].text


def diff(db: sessionmaker[Session], a: str, b: str) -> str:
    """A unified diff of two stored versions' texts."""
    old, new = stored_text(db, a), stored_text(db, b)
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), fromfile=f"playbook {a}", tofile=f"playbook {b}"
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def describe(line: HistoryLine) -> dict[str, Any]:
    """A history line as plain values (the CLI prints them)."""
    return {
        "version": line.version,
        "loaded_at": f"{line.loaded_at:%Y-%m-%d %H:%M} UTC",
        "date": line.effective_on.isoformat(),
        "hash": line.content_hash[:HASH_PREFIX],
        "confirmed": f"{line.confirmed}/{line.asked}",
        "reason": line.reason.replace("\n", " ") or "-",
    }
