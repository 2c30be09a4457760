"""Fixtures: a Slack sandbox on a free loopback port, a fresh database per test, a clock that only moves
when told, and the bot itself served over HTTP so tests drive it with signed requests."""

from __future__ import annotations

import atexit
import os
import queue
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine

from bot.app import Bot, create_app
from bot.core.clock import FixedClock
from bot.core.config import Playbook, load_playbook_text
from bot.core.logs import install_log_masking
from bot.core.text import set_bank_patterns
from bot.sandbox.driver import SlackDriver
from bot.sandbox.server import Channel, SlackSandbox
from bot.slack.gateway import make_web_client
from bot.slack.web import HttpServer, make_wsgi
from store.db import make_engine, make_session_factory, upgrade
from tests.notice_targets import WebhookReceiver, wire_targets

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("INCIDENT_DESK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

# People in the sandbox workspace.
REPORTER = "UREPORTER01"
LEAD = "ULEAD000001"
TECH = "UTECH000001"
COMMS = "UCOMMS00001"
LEGAL = "ULEGAL00001"
OUTSIDER = "UOUTSIDER01"
ADMIN = "UADMIN00001"
PEOPLE = {
    REPORTER: "rita.reporter",
    LEAD: "lee.lead",
    TECH: "tom.tech",
    COMMS: "cora.comms",
    LEGAL: "lena.legal",
    OUTSIDER: "oscar.outsider",
    ADMIN: "ada.admin",
}
SIGNING_SECRET = "test-signing-secret"
# Customer identifiers the tests type; the sandbox fails any test whose bot sends one of them unmasked.
PLANTED = (
    "6222021234567890123",
    "6222021234567890",
    "13812345678",
    "13912345678",
    "11010519900307777X",
    "11010519491231002X",
    "110105194912310021",
    "zhang.san@example.com",
    "zhang.san@bank.com.cn",
)

install_log_masking()  # as the CLI does: every log record is masked before any handler sees it


def playbook_text(**overrides: str) -> str:
    """The shipped config.yaml with some lines replaced (a simple, visible way to vary it per test)."""
    text = (ROOT / "config.yaml").read_text(encoding="utf-8")
    for old, new in overrides.items():
        assert old in text, f"{old!r} is not in config.yaml"
        text = text.replace(old, new, 1)
    return text


SHIPPED_LOCALE = "locale: zh-CN"
# The stacks speak English unless a test asks otherwise (`@pytest.mark.playbook({SHIPPED_LOCALE: ...})` or
# `test_playbook({SHIPPED_LOCALE: SHIPPED_LOCALE})` for the shipped zh-CN); their people use Slack in en-US.
ENGLISH = {SHIPPED_LOCALE: "locale: en"}
TEST_EDITS = {
    **ENGLISH,
    "admins: []": f"admins: [{ADMIN}]",
    "aliases: [commander, ic, 组长, 指挥长]\n    default_owners: []": (
        f"aliases: [commander, ic, 组长, 指挥长]\n    default_owners: [{LEAD}]"
    ),
    "aliases: [tech, technical, engineering, 技术支持]\n    default_owners: []": (
        f"aliases: [tech, technical, engineering, 技术支持]\n    default_owners: [{TECH}]"
    ),
}


@cache
def _parsed_playbook(text: str) -> Playbook:
    return load_playbook_text(text)


def test_playbook(edits: dict[str, str] | None = None) -> Playbook:
    """The shipped playbook with an admin and default owners for the lead and tech support, plus `edits`.
    Each text is parsed once per process (YAML parsing was a tenth of the suite); every caller gets its own
    deep copy, so no test sees another's playbook object."""
    return _parsed_playbook(playbook_text(**{**TEST_EDITS, **(edits or {})})).model_copy(deep=True)


test_playbook.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture
def playbook(request: pytest.FixtureRequest) -> Playbook:
    """The test playbook; `@pytest.mark.playbook({"old line": "new line"})` edits config.yaml text first."""
    marker = request.node.get_closest_marker("playbook")
    return test_playbook(marker.args[0] if marker else None)


@contextmanager
def workspace() -> Iterator[SlackSandbox]:
    """The sandbox with the people in it and the planted identifiers; fails if the bot sent unknown arguments."""
    with SlackSandbox(page_size=3) as sb:  # list methods answer in small pages: callers must follow cursors
        for user_id, name in PEOPLE.items():
            sb.add_user(user_id, name, real_name=name.replace(".", " ").title())
        sb.leaks.plant(*PLANTED)
        yield sb
        assert not sb.unknown_args, f"the bot sent arguments Slack does not know: {sb.unknown_args}"


@pytest.fixture
def sandbox() -> Iterator[SlackSandbox]:
    with workspace() as sb:
        yield sb


@pytest.fixture(autouse=True)
def no_identifier_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test checks masking for free: a planted identifier in any call to the sandbox fails it."""
    set_bank_patterns(())  # the app under test sets its playbook's own patterns
    yield
    for value in request.node.funcargs.values():
        sb = value if isinstance(value, SlackSandbox) else getattr(value, "sandbox", None)
        if isinstance(sb, SlackSandbox) and sb.leaks.violations:
            pytest.fail("unmasked customer identifiers reached Slack:\n" + "\n".join(sb.leaks.violations[:10]))


@pytest.fixture
def general(sandbox: SlackSandbox) -> str:
    """A public channel everyone is in, where people report from."""
    return sandbox.add_channel("general", list(PEOPLE))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'incident-desk.db'}"


_postgres_answered = False


def postgres_available() -> str | None:
    """None when the server answers, else why not (once it has answered, it is not asked again)."""
    global _postgres_answered
    if _postgres_answered:
        return None
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            _postgres_answered = True
            return None
    except psycopg.Error as exc:
        return f"no PostgreSQL server reachable at {PG_ADMIN_URL} ({type(exc).__name__})"


class PostgresDatabases:
    """Empty databases of their own for tests, made one ahead and dropped behind on a helper thread.

    With fsync on, CREATE and DROP DATABASE each wait a third of a second for the disk; the test needs
    neither wait. A database is handed out only once and dropped (WITH FORCE) after its test.

    `migrated`: each database is a copy of one migrated to head once per process (CREATE DATABASE ... TEMPLATE),
    for stacks, which would otherwise run every migration again (most of a second each); tests of the
    migrations themselves take empty ones. A migrated database given back is emptied (its connections ended,
    every table but alembic_version truncated, identities restarted) and handed out again: as new as a copy,
    without DROP DATABASE's checkpoint (seconds each on a busy disk)."""

    def __init__(self, admin_url: str, *, migrated: bool = False) -> None:
        self.admin_url = admin_url
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-databases")
        # DROP DATABASE waits for a checkpoint (seconds on a busy disk): on a thread of its own, so the next
        # CREATE is not queued behind it
        self._dropper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-drops")
        self._next: Future[str] | None = None
        self._drops: list[Future[None]] = []
        self._migrated = migrated
        self._template: str | None = None
        self._clean: queue.SimpleQueue[str] = queue.SimpleQueue()  # emptied, ready to hand out again

    def url(self, name: str) -> str:
        return f"{self.admin_url.rsplit('/', 1)[0]}/{name}"

    def _template_name(self) -> str:
        """The migrated database the copies are made from (on the helper thread, so only it connects)."""
        if self._template is None:
            name = f"idesk_template_{secrets.token_hex(6)}"
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            engine = make_engine(self.url(name))
            try:
                upgrade(engine)
            finally:
                engine.dispose()  # CREATE DATABASE ... TEMPLATE needs it without connections
            self._template = name
        return self._template

    def _create(self) -> str:
        name = f"idesk_test_{secrets.token_hex(6)}"
        template = f' TEMPLATE "{self._template_name()}"' if self._migrated else ""
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"{template}')
        return name

    def _drop(self, name: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def take(self) -> str:
        """A new database (empty, or a copy of the migrated template); the next one starts being made now."""
        with suppress(queue.Empty):
            return self._clean.get_nowait()
        ready = self._next or self._pool.submit(self._create)
        self._next = self._pool.submit(self._create)
        return ready.result()

    def give_back(self, name: str) -> None:
        recycle = self._migrated and name != self._template
        self._drops.append(self._dropper.submit(self._empty if recycle else self._drop, name))

    def _empty(self, name: str) -> None:
        """Make a used migrated database as it was copied: no connection left, every table empty."""
        try:
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()",
                    (name,),
                )
            with psycopg.connect(self.url(name), autocommit=True) as conn:
                tables = [
                    row[0]
                    for row in conn.execute(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                    )
                ]
                if tables:
                    conn.execute(
                        f"TRUNCATE {', '.join(chr(34) + t + chr(34) for t in tables)} RESTART IDENTITY CASCADE"
                    )
        except psycopg.Error:
            self._drop(name)  # not reusable: gone instead
            return
        self._clean.put(name)

    def close(self) -> None:
        """Drop the spare and wait for every drop, so no database outlives the run."""
        if self._next is not None:
            with suppress(Exception):
                self.give_back(self._next.result())
            self._next = None
        self._pool.shutdown(wait=True)  # no copy is being made from the template any more
        for drop in self._drops:  # databases being emptied end up in the clean queue
            drop.result()
        self._drops.clear()
        self._migrated = False  # from here on, a database given back is dropped
        while True:
            try:
                self.give_back(self._clean.get_nowait())
            except queue.Empty:
                break
        if self._template is not None:
            self.give_back(self._template)
            self._template = None
        for drop in self._drops:
            drop.result()
        self._drops.clear()
        self._dropper.shutdown(wait=True)


@cache
def postgres_databases(migrated: bool = False) -> PostgresDatabases:
    return PostgresDatabases(PG_ADMIN_URL, migrated=migrated)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if postgres_databases.cache_info().currsize:
        for migrated in (False, True):
            postgres_databases(migrated).close()


@contextmanager
def _postgres(migrated: bool) -> Iterator[str]:
    reason = postgres_available()
    if reason:
        pytest.skip(reason)
    databases = postgres_databases(migrated)
    name = databases.take()
    try:
        yield databases.url(name)
    finally:
        databases.give_back(name)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """An empty database of its own on the local PostgreSQL server, dropped afterwards."""
    with _postgres(migrated=False) as url:
        yield url


@pytest.fixture
def migrated_postgres_url() -> Iterator[str]:
    """A database of its own already migrated to head (a copy of a template), dropped afterwards."""
    with _postgres(migrated=True) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on either backend (for the tests of the migrations and the store)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def stack_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database on either backend for a running stack: starts at head (the migrations are tested on empty
    ones in test_store.py)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"  # build_stack copies the migrated template
    return str(request.getfixturevalue("migrated_postgres_url"))


def test_clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 24, 2, 0, tzinfo=UTC))  # 10:00 in Shanghai


test_clock.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture
def clock() -> FixedClock:
    return test_clock()


@dataclass
class Stack:
    """The running bot and the workspace around it, as a test sees them."""

    sandbox: SlackSandbox
    bot: Bot
    driver: SlackDriver
    http: HttpServer
    engine: Engine
    clock: FixedClock

    def incident_channel(self, number: int = 1) -> Channel:
        with self.bot.services.db() as s:
            from store.queries import get_incident

            incident = get_incident(s, number)
            assert incident is not None and incident.channel_id, f"incident #{number} has no channel"
            return self.sandbox.channels[incident.channel_id]

    def advance(self, **delta: float) -> None:
        """Move the clock, stopping at every moment the scheduler's timer would wake, and sweep there
        (no sleeping: time is the injected clock's)."""
        from datetime import timedelta

        from bot.core.clock import utc
        from store.queries import next_wakeup

        target = self.clock.now() + timedelta(**delta)
        while True:
            with self.bot.services.db() as s:
                wake = next_wakeup(s)
            if wake is None or utc(wake) > target:
                break
            self.clock.set(max(utc(wake), self.clock.now()))
            self.bot.sweeper.sweep()
        self.clock.set(target)
        self.bot.sweeper.sweep()

    def join(self, channel: str, *users: str) -> None:
        """People join the (public) incident channel, as anyone in the workspace may: they become participants."""
        with self.sandbox.lock:
            members = self.sandbox.channels[channel].members
            members.extend(u for u in users if u not in members)

    def dm_texts(self, user: str) -> list[str]:
        return [m.text for m in self.sandbox.dm_messages(user)]

    def texts(self, channel: str) -> list[str]:
        return [m.text for m in self.sandbox.channel_messages(channel)]

    def ephemeral_texts(self, user: str) -> list[str]:
        return [e.text for e in self.sandbox.ephemerals_for(user)]

    def open(self, text: str = "complaint sev2 Card payments failing", user: str = REPORTER) -> Channel:
        general = self.sandbox.channel_by_name("general")
        assert general is not None
        reply = self.driver.slash(user, general.id, f"open {text}")
        assert reply.status == 200, reply.body
        with self.bot.services.db() as s:
            from sqlalchemy import func, select

            from store.models import Incident

            newest = s.scalar(select(func.max(Incident.id)))
        return self.incident_channel(int(newest or 0))


@cache
def migrated_sqlite_template() -> Path:
    """A SQLite file migrated to head once per test process. Running every migration costs a quarter of a
    second; a stack on a new SQLite file starts from a copy instead (tests/test_store.py still migrates
    real empty databases on both backends)."""
    folder = Path(tempfile.mkdtemp(prefix="idesk-template-"))
    atexit.register(shutil.rmtree, folder, True)
    path = folder / "migrated.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        upgrade(engine)
    finally:
        engine.dispose()  # the last connection checkpoints the WAL: the one file holds the whole schema
    return path


def seed_sqlite(db_url: str) -> bool:
    """Give a not-yet-created SQLite database the migrated schema by copying the template; True if it did."""
    if not db_url.startswith("sqlite:///"):
        return False
    path = Path(db_url.removeprefix("sqlite:///"))
    if path.exists():
        return False
    shutil.copyfile(migrated_sqlite_template(), path)
    return True


def build_stack(
    sandbox: SlackSandbox, playbook: Playbook, db_url: str, clock: FixedClock
) -> tuple[Bot, HttpServer, Engine]:
    seeded = seed_sqlite(db_url)
    engine = make_engine(db_url)
    if not seeded:  # a seeded copy is at head already (loading Alembic's scripts again costs more than the copy)
        upgrade(engine)
    bot = create_app(
        playbook,
        make_session_factory(engine),
        client=make_web_client(sandbox.bot_token, sandbox.api_url),
        signing_secret=SIGNING_SECRET,
        clock=clock,
    )
    http = HttpServer(make_wsgi(bot)).start()
    return bot, http, engine


@contextmanager
def running_stack(sandbox: SlackSandbox, playbook: Playbook, db_url: str, clock: FixedClock) -> Iterator[Stack]:
    bot, http, engine = build_stack(sandbox, playbook, db_url, clock)
    driver = SlackDriver(sandbox, http.url, SIGNING_SECRET, wait_idle=bot.executor.wait_idle)
    try:
        yield Stack(sandbox, bot, driver, http, engine, clock)
    finally:
        bot.executor.wait_idle()
        http.stop()
        bot.executor.shutdown(wait=True)
        bot.sweeper.close()
        engine.dispose()


@pytest.fixture
def stack(
    sandbox: SlackSandbox, general: str, playbook: Playbook, sqlite_url: str, clock: FixedClock
) -> Iterator[Stack]:
    with running_stack(sandbox, playbook, sqlite_url, clock) as running:
        yield running


@pytest.fixture
def shipped_stack(sandbox: SlackSandbox, general: str, sqlite_url: str, clock: FixedClock) -> Iterator[Stack]:
    """The bot on the shipped config.yaml as it is: no admins, no default owners (a fresh install); in English,
    as every stack unless a test asks for its language."""
    with running_stack(
        sandbox, _parsed_playbook(playbook_text(**ENGLISH)).model_copy(deep=True), sqlite_url, clock
    ) as running:
        yield running


@pytest.fixture
def hotline(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookReceiver]:
    """The bank's hotline system, where a complaint's notice (the call-back script) goes."""
    receiver = WebhookReceiver()
    wire_targets(monkeypatch, receiver, "hotline")
    try:
        yield receiver
    finally:
        receiver.close()
