"""The workspace's budget of channel creations: Slack lets an app create about 20 channels a minute.

Each channel creation books a moment before it calls Slack: now while fewer than `capacity` were booked in the
last `window`, else the earliest moment that keeps every window within the budget, and never before one booked
earlier (first come, first created). A creation booked for later is queued in the store: its outbox row waits
until its moment (bot/notices/outbox.py Deferred), the scheduler wakes then, and a restart loses nothing. The
moments are read from the store (done, or queued), so every process books against the same budget; the ones
being carried out right now are known to the process carrying them out. Within one process the booking is one
at a time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from bot.core.clock import Clock, utc
from bot.slack.pacing import SLACK_PACE
from store.volume import book_effect, booked_creates

CREATE_LIMIT = SLACK_PACE["conversations.create"]


@dataclass(frozen=True)
class Booking:
    at: datetime  # when the channel may be created
    ahead: int  # creations queued before this one (0 when it goes now)

    def queued(self, now: datetime) -> bool:
        return self.at > now


class ChannelBudget:
    def __init__(
        self,
        db: sessionmaker[Session],
        clock: Clock,
        *,
        capacity: int = CREATE_LIMIT.capacity,
        window: timedelta = timedelta(seconds=CREATE_LIMIT.seconds),
    ) -> None:
        self.db = db
        self.clock = clock
        self.capacity = capacity
        self.window = window
        self._lock = threading.Lock()
        self._under_way: dict[str, datetime] = {}

    def book(self, key: str) -> Booking:
        """Book the creation run by the outbox row `key` (its moment is written to the row)."""
        with self._lock, self.db.begin() as s:
            now = self.clock.now()
            since = now - self.window
            found = {k: utc(at) for k, at in booked_creates(s, since=since, other_than=key).items()}
            # what this process booked whose row is still leased (carried out, or being queued): not read above
            self._under_way = {k: at for k, at in self._under_way.items() if at > since and k not in found}
            booked = sorted([*found.values(), *(at for k, at in self._under_way.items() if k != key)])
            at = now
            if len(booked) >= self.capacity:
                at = max(at, booked[-self.capacity] + self.window)
            if booked:
                at = max(at, booked[-1])  # first come, first created
            book_effect(s, key, at)
            self._under_way[key] = at
            ahead = sum(1 for moment in booked if moment > now) if at > now else 0
            return Booking(at, ahead)
