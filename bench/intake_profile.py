"""Where the intake's time goes: the shipped playbook's bot (routing and the surge watch on) records complaints
in-process, one after the other, under cProfile; the rate and the top functions are printed. The HTTP front and
concurrency are bench/intake.py's; this is for finding the hot path's Python and round trips.

Run: `python -m bench.intake_profile [--n 1500] [--stores sqlite postgresql] [--top 30]`.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import secrets
import time
from datetime import UTC, datetime

from bench.common import ROOT
from bench.kpi import database
from bot.app import create_app
from bot.core.clock import SystemClock
from bot.core.config import load_playbook
from bot.intake.service import parse_complaint
from bot.sandbox.server import SlackSandbox
from bot.slack.gateway import make_web_client
from store.db import make_engine, make_session_factory, upgrade

CATEGORIES = ("payments", "cards", "mobile_app", "loans", "deposits")
CHANNELS = ("phone", "email", "online_chat", "branch", "app")


def body(prefix: str, n: int) -> dict[str, object]:
    return {
        "external_id": f"{prefix}-{n:06d}",
        "received_at": datetime.now(UTC).isoformat(),
        "contact_channel": CHANNELS[n % len(CHANNELS)],
        "category": CATEGORIES[n % len(CATEGORIES)],
        "product": "借记卡",
        "summary": f"客户卡号6222021234567{n:06d}被重复扣款，第{n}笔",
        "customer_ref": f"卡号6222021234567{n:06d}",
        "severity": "sev4",
        "amount": "88.00",
    }


def profile(store: str, n: int, top: int) -> None:
    sandbox = SlackSandbox().start()
    try:
        with database(store) as url:
            engine = make_engine(url)
            upgrade(engine)
            bot = create_app(
                load_playbook(ROOT / "config.yaml"),
                make_session_factory(engine),
                client=make_web_client(sandbox.bot_token, sandbox.api_url),
                signing_secret=secrets.token_hex(16),
                clock=SystemClock(),
            )
            intake = bot.services.intake
            for i in range(40):  # the clusters' incidents are opened: what follows is the usual join
                intake.record(parse_complaint(body("warm", i)))
            bot.services.routing.background.wait_idle()
            items = [parse_complaint(body("p", i)) for i in range(n)]
            profiler = cProfile.Profile()
            started = time.perf_counter()
            profiler.enable()
            for item in items:
                intake.record(item)
            profiler.disable()
            took = time.perf_counter() - started
            with open("/proc/loadavg") as load:
                print(f"{store}: {n / took:.0f} complaints/s in one thread under cProfile; load {load.read().strip()}")
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(top)
            bot.services.routing.background.wait_idle()
            bot.executor.shutdown(wait=True)
            engine.dispose()
    finally:
        sandbox.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1500)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--stores", nargs="+", default=["sqlite"], choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    for store in args.stores:
        profile(store, args.n, args.top)


if __name__ == "__main__":
    main()
