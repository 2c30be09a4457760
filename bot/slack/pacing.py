"""The bot's own pace under Slack's published limits, so it is not refused with 429s at volume.

Slack counts the tiered methods per app, per workspace, per method (conversations.create and setTopic: Tier 2,
about 20 a minute; conversations.invite and chat.update: Tier 3, about 50 a minute) and allows about one
chat.postMessage per second per channel, with short bursts. The gateway asks the pacer before every attempt;
the pacer books the earliest moment the call stays within the limit and the caller waits until then (on the
injected clock's sleep, so a test clock moves instead of a test sleeping). The windows carry a margin: the
call reaches Slack a little after the moment it was booked for.

Waiting here is the last line: channel creation beyond the budget is queued in the store before it gets here
(bot/incidents/budget.py), so the request that opened an incident is never held for a minute.
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Limit:
    """`capacity` calls per `seconds`: in any window that long for the workspace, or (`per_channel`) a token
    bucket per channel holding `capacity` calls and refilled one per `seconds`."""

    capacity: int
    seconds: float
    per_channel: bool = False


PRUNE_AT = 10_000  # channels remembered before the idle ones are forgotten
MARGIN = 1.0  # seconds added to each workspace window: a booked call reaches Slack a little later
# What the bot allows itself: Slack's published limits, the burst a little under what Slack tolerates.
SLACK_PACE: dict[str, Limit] = {
    "conversations.create": Limit(20, 60.0 + MARGIN),
    "conversations.setTopic": Limit(20, 60.0 + MARGIN),
    "conversations.invite": Limit(50, 60.0 + MARGIN),
    "chat.update": Limit(50, 60.0 + MARGIN),
    "chat.postMessage": Limit(8, 1.0, per_channel=True),
}


@dataclass
class _State:
    booked: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    tat: dict[str, float] = field(default_factory=dict)


class Pacer:
    """Books calls within the limits and waits until their moment; thread-safe."""

    def __init__(
        self,
        now: Callable[[], float],
        sleep: Callable[[float], None],
        limits: dict[str, Limit] | None = None,
    ) -> None:
        self.now = now
        self.sleep = sleep
        self.limits = SLACK_PACE if limits is None else limits
        self._states: dict[str, _State] = defaultdict(_State)
        self._lock = threading.Lock()

    def book(self, method: str, channel: str = "") -> float:
        """Book one call of `method` (to `channel`): the seconds to wait before sending it (0: now)."""
        limit = self.limits.get(method)
        if limit is None:
            return 0.0
        with self._lock:
            now = self.now()
            state = self._states[method]
            if limit.per_channel:  # GCRA: the bucket as one "theoretical arrival time" per channel
                tolerance = (limit.capacity - 1) * limit.seconds
                tat = max(state.tat.get(channel, now), now)
                at = max(now, tat - tolerance)
                state.tat[channel] = max(tat, at) + limit.seconds
                if len(state.tat) > PRUNE_AT:  # a channel whose bucket is full again needs no entry
                    state.tat = {c: t for c, t in state.tat.items() if t > now}
                return at - now
            booked = state.booked[""]
            while booked and now - booked[0] >= limit.seconds:
                booked.popleft()
            at = now if len(booked) < limit.capacity else booked[-limit.capacity] + limit.seconds
            at = max(at, booked[-1] if booked else now)  # in the order booked
            booked.append(at)
            return at - now

    def wait(self, method: str, channel: str = "") -> None:
        """Book one call and wait for its moment."""
        delay = self.book(method, channel)
        if delay > 0:
            self.sleep(delay)
