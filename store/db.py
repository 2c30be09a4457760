"""Engine and session set-up, and schema upgrades through Alembic."""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine tuned per backend: SQLite gets WAL, a busy timeout and foreign keys. Errors never show the
    statement's parameters (they hold customer text), on either backend."""
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        # the busy timeout makes a concurrent writer wait for the write lock (up to 30 s) instead of failing with
        # "database is locked": twenty simultaneous clicks queue, and the conditional updates in store/queries.py
        # then let exactly one of them change the row
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes after commit, so services can return what they wrote."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` (the bot does this at start-up)."""
    command.upgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def ping(connection: Connection | Session) -> None:
    """One round trip to the database; raises if it is unreachable (the health check, a held lock's link)."""
    connection.execute(text("SELECT 1"))


def try_advisory_lock(connection: Connection, lock_id: int) -> bool:
    """Take a PostgreSQL session-level advisory lock on this connection, if no other session holds it: it is
    held until the connection closes."""
    return bool(connection.execute(text("SELECT pg_try_advisory_lock(:id)"), {"id": lock_id}).scalar())


# ---- one writer at a time on SQLite (the intake's hot path) ---------------------------------------------------

_WRITE_TURNS: dict[int, threading.Lock] = {}
_WRITE_TURNS_GUARD = threading.Lock()


def write_turn(db: sessionmaker[Session]) -> AbstractContextManager[object]:
    """Hold for a short write transaction: on SQLite, which lets one writer in at a time anyway, the writers of
    this process queue on a lock instead of in SQLite's busy handler (which sleeps in steps of up to 100 ms,
    so at a few hundred writes a second the sleeps, not the writes, would be the latency). On PostgreSQL,
    writers run side by side: no lock."""
    bind = db.kw.get("bind")
    if bind is None or bind.dialect.name != "sqlite":
        return nullcontext()
    with _WRITE_TURNS_GUARD:
        return _WRITE_TURNS.setdefault(id(bind), threading.Lock())
