"""The workspace's budget of channel creations: Slack lets an app create about 20 channels a minute.

An incident's channel creation is booked in the transaction that opens it: now while fewer than `capacity` were
booked in the last `window`, else the earliest moment that keeps every window within the budget, and never
before one booked earlier (first opened, first created). A creation booked for later is queued in the store:
its outbox row is due at its moment, the scheduler wakes then, and a restart loses nothing. Bookings are read
from the store, so every process books against the same budget; within one process booking is one at a time
and also counts what was booked by transactions not yet committed. The gateway's pacer (bot/slack/pacing.py)
stays the last line for anything that gets past this (a repair, two processes booking at the same moment).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from bot.core.clock import Clock, utc
from bot.slack.pacing import SLACK_PACE
from store.volume import booked_creates

CREATE_LIMIT = SLACK_PACE["conversations.create"]


@dataclass(frozen=True)
class Booking:
    at: datetime  # when the channel may be created
    ahead: int  # creations queued before this one (0 when it goes now)
    queued: bool  # it waits for its moment (beyond the budget)


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
        self._recent: dict[str, datetime] = {}

    def book(self, s: Session, key: str) -> Booking:
        """Book the creation the outbox row `key` will run, in the caller's transaction (the one that writes it)."""
        with self._lock:
            now = self.clock.now()
            since = now - self.window
            found = {k: utc(at) for k, at in booked_creates(s, since=since, other_than=key).items()}
            # what this process booked that another transaction may not show yet (not committed)
            self._recent = {k: at for k, at in self._recent.items() if at > since and k not in found}
            booked = sorted([*found.values(), *(at for k, at in self._recent.items() if k != key)])
            at = now
            if len(booked) >= self.capacity:
                at = max(at, booked[-self.capacity] + self.window)
            if booked:
                at = max(at, booked[-1])  # first come, first created
            self._recent[key] = at
            ahead = sum(1 for moment in booked if moment > now) if at > now else 0
            return Booking(at, ahead, queued=at > now)
