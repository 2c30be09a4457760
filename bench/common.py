"""Shared set-up for benchmarks: the offline stack (sandbox, bot over HTTP, SQLite), a scratch database on
SQLite or PostgreSQL, and percentiles."""

from __future__ import annotations

import os
import secrets
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory

import psycopg

from bot.core.config import load_playbook
from bot.offline import OfflineStack, offline_stack

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("INCIDENT_DESK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
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


@contextmanager
def database(store: str, name: str = "bench") -> Iterator[str]:
    """A scratch database for one run: a SQLite file in a temporary folder, or a PostgreSQL database created on
    the admin URL (INCIDENT_DESK_TEST_PG) and dropped afterwards."""
    if store == "sqlite":
        with TemporaryDirectory() as tmp:
            yield f"sqlite:///{Path(tmp) / f'{name}.db'}"
        return
    db = f"idesk_{name}_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{db}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
