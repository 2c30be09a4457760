"""Open → ready when a surge opens more incidents than Slack lets an app create channels for (about 20 a minute).

`--opens` incidents (default 60) are opened at once by concurrent slash commands, with the Slack test server
enforcing Slack's published limits (429 + Retry-After) on real time and the bot's timer running. The first
twenty channels are created at once; the rest are queued in the store and created as the budget allows. For
each incident, ready is the arrival of its card in its channel; the figures are per minute's batch, whether they
were created in the order opened, how many reporters were told "queued" and later "ready", and the Slack calls
(and 429s: 0 when the bot paces itself). It takes real time: about a minute per twenty incidents after the first.
Run: `python -m bench.queued_ready [--opens 60]`.
"""

from __future__ import annotations

import argparse
import re
import time
from concurrent.futures import ThreadPoolExecutor

from bench.common import PEOPLE, bench_stack, percentile

KEY = re.compile(r"^setup:(\d+):card\.post$")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--opens", type=int, default=60)
    parser.add_argument("--timeout", type=float, default=600.0, help="give up waiting after this many seconds")
    args = parser.parse_args()
    with bench_stack() as stack:
        sandbox = stack.sandbox
        sandbox.enforce_slack_limits()  # counted on real time (the sandbox's default time source)
        general = sandbox.channel_by_name("general")
        assert general is not None
        stack.bot.scheduler.start()
        try:
            started = time.time()

            def one(n: int) -> None:
                stack.driver.slash(PEOPLE[n % len(PEOPLE)], general.id, f"open outage sev3 Surge {n}", wait=False)

            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(one, range(args.opens)))
            opened = time.time() - started
            ready: dict[int, tuple[float, str]] = {}  # incident → (card's arrival, channel)
            while len(ready) < args.opens and time.time() - started < args.timeout:
                time.sleep(0.5)
                with sandbox.lock:
                    for message in sandbox.messages:
                        key = str((message.metadata or {}).get("event_payload", {}).get("key", ""))
                        found = KEY.match(key)
                        if found:
                            ready.setdefault(int(found.group(1)), (message.received, message.channel))
        finally:
            stack.bot.scheduler.stop()
        waits = {n: ready[n][0] - started for n in sorted(ready)}
        print(
            f"{args.opens} incidents opened at once (all commands answered in {opened:.1f} s); "
            f"ready: {len(ready)}/{args.opens}",
            flush=True,
        )
        for first in range(1, args.opens + 1, 20):
            batch = [waits[n] for n in range(first, first + 20) if n in waits]
            if batch:
                print(
                    f"  incidents #{first}–#{first + len(batch) - 1}: open → ready p50 {percentile(batch, 50):.1f} s, "
                    f"max {max(batch):.1f} s"
                )
        queued = [n for n in waits if waits[n] > 30]  # past the first minute's budget
        by_creation = sorted(queued, key=lambda n: ready[n][1])  # the test server's channel IDs grow with creation
        print(f"  queued channels created in the order opened: {by_creation == sorted(queued)} ({len(queued)} queued)")
        told = sum(1 for e in sandbox.ephemerals if "queued" in e.text or "排队" in e.text)
        told_ready = [m.text for m in sandbox.messages if "waited in the queue" in m.text or "排队后现已创建" in m.text]
        dms = len(told_ready)
        if len({re.search(r"#(\d+)", t).group(1) for t in told_ready if re.search(r"#(\d+)", t)}) != dms:
            print("  DUPLICATE ready messages:", sorted(re.findall(r"#(\d+)", " ".join(told_ready))))
        print(f"  reporters told 'queued': {told}; told 'ready' by DM: {dms}")
        for method, s in sandbox.call_stats().items():
            if method in ("conversations.create", "conversations.invite", "conversations.setTopic", "chat.update"):
                print(
                    f"  {method}: {int(s['calls'])} calls, max {int(s['max_per_minute'])} in a minute, "
                    f"429 {int(s['throttled'])}"
                )
            if method == "chat.postMessage":
                print(
                    f"  {method}: {int(s['calls'])} calls, max {int(s['max_per_second_one_channel'])} a second "
                    f"in one channel, 429 {int(s['throttled'])}"
                )


if __name__ == "__main__":
    main()
