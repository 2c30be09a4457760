"""Shared set-up for benchmarks: the offline stack (sandbox, bot over HTTP, SQLite) and percentiles."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory

from bot.core.config import load_playbook
from bot.offline import OfflineStack, offline_stack

ROOT = Path(__file__).resolve().parent.parent
PEOPLE = ["UBENCH00001", "UBENCH00002", "UBENCH00003", "UBENCH00004"]


@contextmanager
def bench_stack() -> Iterator[OfflineStack]:
    with (
        TemporaryDirectory() as tmp,
        offline_stack(load_playbook(ROOT / "config.yaml"), f"sqlite:///{tmp}/bench.db") as stack,
    ):
        for i, user in enumerate(PEOPLE):
            stack.sandbox.add_user(user, f"bench.user{i}")
        stack.sandbox.add_channel("general", PEOPLE)
        yield stack


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary(label: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return (
        f"{label}: n={len(ms)} mean={statistics.fmean(ms):.1f} ms p50={percentile(ms, 50):.1f} ms "
        f"p95={percentile(ms, 95):.1f} ms p99={percentile(ms, 99):.1f} ms max={max(ms):.1f} ms"
    )
