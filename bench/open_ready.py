"""Open → channel ready with every Slack call taking 100 ms (target ≤ 350 ms p99).

Ready is when the channel exists with its topic, its people and the incident card: `conversations.create`,
then the topic, the invites and the card together — two round trips. The card's arrival at the Slack test server
marks it (the topic and invites go out in the same step). Done is when the rest has followed as well (the plan
posted while the reporter is told). The first opens warm the process up (the bot's identity, templates) and are
not counted."""

from __future__ import annotations

import argparse
import time

from bench.common import PEOPLE, bench_stack, summary
from bot.sandbox.server import Message


def card_key(message: Message) -> str:
    return str((message.metadata or {}).get("event_payload", {}).get("key", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added to every Web API call")
    # with the warm-up, 20 channels: Slack lets an app create about 20 a minute, and the bot queues the rest
    # (bench/queued_ready.py measures those)
    parser.add_argument("--opens", type=int, default=18)
    parser.add_argument("--warmup", type=int, default=2, help="opens run first and not counted")
    args = parser.parse_args()
    with bench_stack() as stack:
        general = stack.sandbox.channel_by_name("general")
        assert general is not None
        stack.sandbox.latency = args.latency
        for n in range(args.warmup):
            stack.driver.slash(PEOPLE[n % len(PEOPLE)], general.id, f"open outage sev2 Warm-up {n}")
        ready: list[float] = []
        done: list[float] = []
        calls: list[int] = []
        for n in range(args.opens):
            before = len(stack.sandbox.calls)
            channels = set(stack.sandbox.channels)
            started, wall = time.perf_counter(), time.time()
            stack.driver.slash(PEOPLE[n % len(PEOPLE)], general.id, f"open outage sev2 Bench outage {n}")
            done.append(time.perf_counter() - started)
            calls.append(len(stack.sandbox.calls) - before)
            (channel,) = set(stack.sandbox.channels) - channels
            card = next(m for m in stack.sandbox.channel_messages(channel) if "card.post" in card_key(m))
            ready.append(card.received - wall)
        print(
            summary(
                f"open → channel ready (channel, topic, invites, card) at {args.latency * 1000:g} ms per Slack call",
                ready,
            )
        )
        print(summary("open → everything done (the plan posted, the reporter told)", done))
        print(f"Slack calls per open: {min(calls)}–{max(calls)}")


if __name__ == "__main__":
    main()
