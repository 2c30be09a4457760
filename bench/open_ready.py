"""Open → channel ready (channel, topic, invites, card, plan, reporter told) with every Slack call taking
100 ms (target ≤ 350 ms p99: create, then topic, invites and card together, then the plan while the reporter
is told — three round trips). The first opens warm the process up (the bot's identity, templates) and are not
counted."""

from __future__ import annotations

import argparse
import time

from bench.common import PEOPLE, bench_stack, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added to every Web API call")
    parser.add_argument("--opens", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2, help="opens run first and not counted")
    args = parser.parse_args()
    with bench_stack() as stack:
        general = stack.sandbox.channel_by_name("general")
        assert general is not None
        stack.sandbox.latency = args.latency
        for n in range(args.warmup):
            stack.driver.slash(PEOPLE[n % len(PEOPLE)], general.id, f"open outage sev2 Warm-up {n}")
        ready: list[float] = []
        calls: list[int] = []
        for n in range(args.opens):
            before = len(stack.sandbox.calls)
            started = time.perf_counter()
            stack.driver.slash(PEOPLE[n % len(PEOPLE)], general.id, f"open outage sev2 Bench outage {n}")
            ready.append(time.perf_counter() - started)
            calls.append(len(stack.sandbox.calls) - before)
        print(summary(f"open → channel ready at {args.latency * 1000:g} ms per Slack call", ready))
        print(f"Slack calls per open: {min(calls)}–{max(calls)}")


if __name__ == "__main__":
    main()
