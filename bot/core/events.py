"""The one event dispatcher: a service says what happened, and the composition root (bot/services.py)
declares, in one place, who reacts to it. Services never subscribe themselves, so who calls whom is read
from the code, not discovered at run time; once the app is wired the subscriptions are sealed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from store.models import Incident


@dataclass(frozen=True)
class ScheduleChanged:
    """A deadline, reminder or page moved: the timer plans its next wake-up."""


@dataclass(frozen=True)
class IncidentResolved:
    """An incident was resolved; `session` is the resolving transaction, so what a subscriber queues (the
    satisfaction prompts) commits with the resolve, or not at all."""

    session: Session
    incident: Incident


E = TypeVar("E")


class Events:
    """Typed publish/subscribe, synchronous and in order: a subscriber runs on the publisher's thread,
    inside its transaction when the event carries one."""

    def __init__(self) -> None:
        self._subscribers: dict[type[Any], list[Callable[[Any], None]]] = {}
        self._sealed = False

    def subscribe(self, kind: type[E], handler: Callable[[E], None]) -> None:
        if self._sealed:
            raise RuntimeError("subscriptions are declared in the composition root, before the app runs")
        self._subscribers.setdefault(kind, []).append(handler)

    def seal(self) -> None:
        """No more subscribers: the wiring is done."""
        self._sealed = True

    def publish(self, event: object) -> None:
        for handler in self._subscribers.get(type(event), ()):
            handler(event)

    def subscribers(self, kind: type[Any]) -> tuple[Callable[[Any], None], ...]:
        """Who reacts to `kind` (for tests and the architecture check)."""
        return tuple(self._subscribers.get(kind, ()))


@dataclass(frozen=True)
class SurgeProposed:
    """A warning line was crossed and its proposal recorded (committed): it goes to the leadership group."""

    proposal_id: int
