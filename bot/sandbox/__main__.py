"""Run the Slack sandbox on its own: `python -m bot.sandbox [--port N]` (prints its API URL)."""

from __future__ import annotations

import argparse
import threading

from bot.sandbox.server import SlackSandbox


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every Web API call")
    args = parser.parse_args()
    sandbox = SlackSandbox().start(args.port)
    sandbox.latency = args.latency
    print(sandbox.api_url, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
