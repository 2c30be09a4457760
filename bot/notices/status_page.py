"""The public status page the bot serves itself: HTML for phones, JSON, and an Atom feed.

Only what was published to the status-page channel appears, in the playbook's locales; drills never do.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot.core.clock import Clock
from bot.core.config import Playbook
from bot.core.i18n import N_, _, normalize, use_locale
from bot.core.render import Renderer
from bot.core.text import strip_control
from store.states import ACTIVE

ATOM = "http://www.w3.org/2005/Atom"

# The page's own words, translated into each locale the page shows (message catalogs, like every other word).
WORDS: dict[str, str] = {
    "title": N_("{bank} service status"),
    "ok": N_("All services are operating normally"),
    "degraded": N_("Some services are affected; we are working on it"),
    "current": N_("Current incidents"),
    "history": N_("Past notices"),
    "since": N_("Since"),
    "updated": N_("Updated"),
    "no_history": N_("No past notices."),
    "generated": N_("Page generated"),
    "initial": N_("Service notice"),
    "update": N_("Update"),
    "resolved": N_("Resolved"),
    "diversion": N_("Please use other channels"),
}


# Each language by its own name on the language links (an endonym is the same in every language: not translated).
LANGUAGE_NAMES = {"zh-CN": "中文", "en": "English"}


def words_for(locale: str) -> dict[str, str]:
    """The page's words in `locale` (a locale without a catalog reads English)."""
    with use_locale(normalize(locale, default="en")):
        return {key: _(text) for key, text in WORDS.items()}


class StatusPage:
    def __init__(
        self,
        playbook: Playbook,
        db: sessionmaker[Session],
        renderer: Renderer,
        clock: Clock,
        published: Callable[[Session], list[dict[str, Any]]],
    ) -> None:
        self.playbook, self.db, self.renderer, self.clock = playbook, db, renderer, clock
        self.spec = playbook.notices
        self._published = published  # NoticeService.published

    def locales(self, lang: str | None) -> tuple[str, ...]:
        """One locale when asked for one the playbook publishes; otherwise all of them (bilingual)."""
        return (lang,) if lang in self.spec.locales else self.spec.locales

    def _bank(self, locale: str) -> str:
        return self.spec.bank_name.get(locale) or next(iter(self.spec.bank_name.values()), "")

    def _joined(self, locales: tuple[str, ...], key: str, **fmt: str) -> str:
        return " · ".join(words_for(loc)[key].format(**fmt, bank=self._bank(loc)) for loc in locales)

    def _kind_names(self, kind: str, locales: tuple[str, ...]) -> str:
        spec = self.playbook.kinds.get(kind)
        if spec is None:
            return kind
        return " / ".join(dict.fromkeys(spec.names.get(loc, spec.name) for loc in locales))

    def _entries(self) -> list[dict[str, Any]]:
        with self.db() as s:
            return list(self._published(s))

    def _time(self, when: datetime | None) -> str:
        return self.renderer.local_time(when) if when else ""  # with its zone: the page is read anywhere

    def html(self, lang: str | None, base: str = "") -> str:
        locales = self.locales(lang)

        def texts(notice: dict[str, Any]) -> list[dict[str, str]]:
            return [{"locale": loc, "text": notice["texts"][loc]} for loc in locales if loc in notice["texts"]]

        current: list[dict[str, Any]] = []
        history: list[dict[str, Any]] = []
        for entry in self._entries():
            item = {
                "number": entry["number"],
                "heading": self._kind_names(entry["kind"], locales),
                "opened": self._time(entry["opened_at"]),
                "resolved": self._time(entry["resolved_at"]),
                "latest": {
                    "texts": texts(entry["notices"][0]),
                    "published": self._time(entry["notices"][0]["published_at"]),
                },
                "notices": [{"texts": texts(n), "published": self._time(n["published_at"])} for n in entry["notices"]],
            }
            (current if entry["status"] in ACTIVE else history).append(item)
        words = {key: self._joined(locales, key) for key in WORDS}
        return self.renderer.render_html(
            "html/status.html.j2",
            lang=locales[0],
            page_title=self._joined(locales, "title"),
            bank_name=" / ".join(dict.fromkeys(self._bank(loc) for loc in locales)),
            languages=[(loc, LANGUAGE_NAMES.get(loc, loc)) for loc in self.spec.locales],
            words=words,
            current=current,
            history=history,
            generated=self._time(self.clock.now()),
            base=base,
        )

    def json(self) -> dict[str, Any]:
        incidents = []
        for entry in self._entries():
            incidents.append(
                {
                    "number": entry["number"],
                    "status": "ongoing" if entry["status"] in ACTIVE else "resolved",
                    "kind": {
                        loc: self.playbook.kinds[entry["kind"]].names.get(loc, self.playbook.kinds[entry["kind"]].name)
                        for loc in self.spec.locales
                    }
                    if entry["kind"] in self.playbook.kinds
                    else {},
                    "started_at": entry["opened_at"].isoformat(),
                    "resolved_at": entry["resolved_at"].isoformat() if entry["resolved_at"] else None,
                    "notices": [
                        {
                            "id": n["id"],
                            "stage": n["stage"],
                            "published_at": n["published_at"].isoformat(),
                            "texts": n["texts"],
                        }
                        for n in entry["notices"]
                    ],
                }
            )
        ongoing = any(i["status"] == "ongoing" for i in incidents)
        return {
            "generated_at": self.clock.now().isoformat(),
            "status": "degraded" if ongoing else "ok",
            "locales": list(self.spec.locales),
            "incidents": incidents,
        }

    def atom(self, base: str = "") -> bytes:
        """One entry per published notice, newest first; ElementTree does the XML escaping. `base` is the
        configured public URL (never the request's Host), or empty for relative links."""
        ET.register_namespace("", ATOM)
        locales = self.spec.locales
        feed = ET.Element(f"{{{ATOM}}}feed")
        ET.SubElement(feed, f"{{{ATOM}}}title").text = self._joined(locales, "title")
        # An Atom id must be an absolute IRI; links may be relative (to the feed's own address) without a base.
        feed_id = f"{base}/status" if base else "urn:incident-desk:status"
        ET.SubElement(feed, f"{{{ATOM}}}id").text = feed_id
        ET.SubElement(feed, f"{{{ATOM}}}link", href=f"{base}/status/feed.atom", rel="self")
        ET.SubElement(feed, f"{{{ATOM}}}link", href=f"{base}/status", rel="alternate")
        notices = [(entry, n) for entry in self._entries() for n in entry["notices"]]
        notices.sort(key=lambda pair: pair[1]["published_at"], reverse=True)
        updated = notices[0][1]["published_at"] if notices else self.clock.now()
        ET.SubElement(feed, f"{{{ATOM}}}updated").text = updated.isoformat()
        author = ET.SubElement(feed, f"{{{ATOM}}}author")
        ET.SubElement(author, f"{{{ATOM}}}name").text = " / ".join(dict.fromkeys(self._bank(loc) for loc in locales))
        for entry, notice in notices[:100]:
            item = ET.SubElement(feed, f"{{{ATOM}}}entry")
            stage = " / ".join(dict.fromkeys(words_for(loc).get(notice["stage"], notice["stage"]) for loc in locales))
            ET.SubElement(item, f"{{{ATOM}}}title").text = f"{stage}: {self._kind_names(entry['kind'], locales)}"
            ET.SubElement(item, f"{{{ATOM}}}id").text = f"{feed_id}#notice-{notice['id']}"
            ET.SubElement(item, f"{{{ATOM}}}link", href=f"{base}/status#incident-{entry['number']}")
            ET.SubElement(item, f"{{{ATOM}}}updated").text = notice["published_at"].isoformat()
            ET.SubElement(item, f"{{{ATOM}}}content", type="text").text = "\n\n".join(
                notice["texts"][loc] for loc in locales if loc in notice["texts"]
            )
        for element in feed.iter():  # one pasted control character would make the whole feed invalid XML
            element.text = strip_control(element.text) if element.text else element.text
            for key, value in element.attrib.items():
                element.set(key, strip_control(value))
        return ET.tostring(feed, encoding="utf-8", xml_declaration=True)
