"""Slash-command ack latency at a steady 20 commands/s (target: p99 ≤ 50 ms on 2 cores).

A realistic mix: every tenth command opens an incident (whose Slack work then runs in the background),
the rest are updates, severity changes and status look-ups inside open incidents.
"""

from __future__ import annotations

import argparse
import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from bench.common import PEOPLE, bench_stack, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=20.0, help="commands per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to send")
    args = parser.parse_args()
    with bench_stack() as stack:
        general = stack.sandbox.channel_by_name("general")
        assert general is not None
        stack.driver.slash(PEOPLE[0], general.id, "open outage sev2 Warm-up incident")
        channels = [c.id for c in stack.sandbox.channels.values() if c.name.startswith("inc-")]
        stack.driver.slash(PEOPLE[0], channels[0], f"assign lead <@{PEOPLE[0]}>")
        latencies: list[float] = []
        statuses: list[int] = []
        lock = threading.Lock()
        counter = itertools.count()

        def one(n: int) -> None:
            if n % 10 == 0:
                reply = stack.driver.slash(
                    PEOPLE[0], general.id, f"open complaint sev3 Bench complaint {n}", wait=False
                )
            else:
                text = (f"update progress note {n}", "status", "sev 2" if n % 2 else "sev 3")[n % 3]
                reply = stack.driver.slash(PEOPLE[0], channels[0], text, wait=False)
            with lock:
                latencies.append(reply.seconds)
                statuses.append(reply.status)

        total = int(args.rate * args.seconds)
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=32) as pool:
            for i in range(total):
                due = started + i / args.rate
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)  # pacing the load generator, not waiting for the bot
                pool.submit(one, next(counter))
        stack.bot.executor.wait_idle(120)
        print(summary(f"ack latency at {args.rate:g} commands/s over {args.seconds:g} s", latencies))
        print(f"non-200 answers: {sum(1 for s in statuses if s != 200)}")


if __name__ == "__main__":
    main()
