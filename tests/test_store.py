"""The store on both backends: migrations, constraints, and the services on top of them."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from bot.core.clock import FixedClock
from bot.incidents.service import IncidentCreate
from bot.sandbox.server import SlackSandbox
from bot.services import Services
from bot.slack.gateway import SlackGateway, make_web_client
from store import queries
from store.db import current_revision, make_engine, make_session_factory, upgrade
from store.models import Incident
from tests.conftest import LEAD, REPORTER, test_playbook

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def test_migrations_create_the_schema(any_db_url: str) -> None:
    engine = make_engine(any_db_url)
    upgrade(engine)
    upgrade(engine)  # idempotent
    assert current_revision(engine) == "0017"
    tables = set(inspect(engine).get_table_names())
    assert {
        "incidents",
        "role_assignments",
        "timeline_events",
        "role_rotation",
        "deadlines",
        "escalations",
        "sent_notifications",
        "outbox",
        "alembic_version",
    } <= tables
    engine.dispose()


def test_a_channel_name_can_be_claimed_once(any_db_url: str) -> None:
    engine = make_engine(any_db_url)
    upgrade(engine)
    db = make_session_factory(engine)

    def incident(name: str) -> Incident:
        return Incident(
            kind="complaint",
            severity="sev2",
            title="t",
            status="reported",
            is_drill=False,
            playbook_version="1",
            reporter_id=REPORTER,
            channel_name=name,
            created_at=NOW,
            updated_at=NOW,
            topic_set=False,
            members_invited=False,
            welcome_posted=False,
        )

    with db.begin() as s:
        queries.add_incident(s, incident("inc-1"))
    with pytest.raises(IntegrityError), db.begin() as s:
        queries.add_incident(s, incident("inc-1"))
    with db() as s:
        assert [i.channel_name for i in queries.list_open_incidents(s)] == ["inc-1"]
    engine.dispose()


def test_datetimes_come_back_aware_utc_and_naive_ones_are_refused(any_db_url: str) -> None:
    """One column type for every datetime: a moment written in any zone reads back as the same moment in
    UTC, aware, on both backends; a naive value is refused rather than stored as a guess."""
    from datetime import timedelta, timezone

    from sqlalchemy import select

    from store.models import Base
    from store.types import NaiveDatetimeError, UTCDateTime

    columns = [c for table in Base.metadata.tables.values() for c in table.columns if "DateTime" in repr(c.type)]
    assert columns and all(isinstance(c.type, UTCDateTime) for c in columns), [
        c for c in columns if not isinstance(c.type, UTCDateTime)
    ]
    engine = make_engine(any_db_url)
    upgrade(engine)
    db = make_session_factory(engine)
    shanghai = timezone(timedelta(hours=8))
    opened = datetime(2026, 11, 24, 10, 0, tzinfo=shanghai)  # 02:00 UTC
    row = Incident(
        kind="complaint",
        severity="sev3",
        title="客户卡号6222021234567890123被重复扣款",
        playbook_version="1",
        reporter_id=REPORTER,
        created_at=opened,
        updated_at=NOW,
    )
    with db.begin() as s:
        queries.add_incident(s, row)
    with db() as s:
        back = s.scalars(select(Incident)).one()
        assert back.created_at == NOW and back.created_at.tzinfo is UTC
        assert back.updated_at.utcoffset() == timedelta(0)
        assert s.scalar(select(Incident.id).where(Incident.created_at == NOW)) == back.id  # compared as moments
        assert queries.next_wakeup(s) is None
    with pytest.raises(Exception) as raised, db.begin() as s:
        back = s.scalars(select(Incident)).one()
        back.resolved_at = datetime(2026, 11, 24, 12, 0)  # naive: which zone?
    assert isinstance(raised.value, NaiveDatetimeError) or isinstance(raised.value.__cause__, NaiveDatetimeError)
    with db() as s:
        assert s.scalars(select(Incident)).one().resolved_at is None  # nothing was written
    engine.dispose()


def test_concurrent_opens_get_distinct_numbers_channels_and_rotation(any_db_url: str, sandbox: SlackSandbox) -> None:
    engine = make_engine(any_db_url)
    upgrade(engine)
    playbook = test_playbook()
    services = Services.build(
        playbook,
        make_session_factory(engine),
        SlackGateway(make_web_client(sandbox.bot_token, sandbox.api_url)),
        FixedClock(NOW),
    )
    service = services.incidents
    opened: list[Incident] = []
    errors: list[BaseException] = []

    def open_one(n: int) -> None:
        try:
            incident = service.open_incident(IncidentCreate(kind="complaint", title="Same title"), reporter=REPORTER)
            service.setup_channel(incident.id)
            opened.append(incident)
        except BaseException as exc:  # collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=open_one, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    names = sorted(c.name for c in sandbox.channels.values() if c.name.startswith("inc-"))
    assert names == sorted(f"inc-20261124-{i.id}-same-title" for i in opened)
    assert len({i.id for i in opened}) == 8
    with service.db() as s:
        leads = {a.user_id for i in opened for a in queries.get_incident(s, i.id).roles if a.role == "lead"}  # type: ignore[union-attr]
    assert leads == {LEAD}
    engine.dispose()


def test_the_migrations_match_the_models(any_db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from store.models import Base

    engine = make_engine(any_db_url)
    upgrade(engine)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    engine.dispose()


def test_migration_0006_backfills_the_peak_severity_from_the_history(any_db_url: str) -> None:
    """Incidents recorded before 0006 keep their approval binding: lowered from SEV1, they still need one."""
    from sqlalchemy import text

    engine = make_engine(any_db_url)
    upgrade(engine, "0005")
    with engine.begin() as conn:
        for number, severity in ((1, "sev3"), (2, "sev2")):
            conn.execute(
                text(
                    "INSERT INTO incidents (id, kind, severity, title, status, is_drill, playbook_version, reporter_id,"
                    " created_at, updated_at, topic_set, members_invited, welcome_posted)"
                    " VALUES (:id, 'outage', :sev, '核心系统', 'investigating', false, '1', :rep, :now, :now,"
                    " false, false, false)"
                ),
                {"id": number, "sev": severity, "rep": REPORTER, "now": NOW},
            )
        conn.execute(
            text(
                "INSERT INTO timeline_events (incident_id, at, event, text, data)"
                " VALUES (1, :now, 'severity_changed', 'sev1 → sev3', :data)"
            ),
            {"now": NOW, "data": '{"old": "sev1", "new": "sev3"}'},
        )
    upgrade(engine)
    with engine.connect() as conn:
        peaks = dict(conn.execute(text("SELECT id, peak_severity FROM incidents ORDER BY id")).all())
    assert peaks == {1: "sev1", 2: "sev2"}
    engine.dispose()
