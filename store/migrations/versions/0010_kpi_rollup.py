"""kpi rollup: the KPI report's per-month figures, kept exact by triggers that mark a month stale

A whole year of incidents took seconds to aggregate on every report. The report now reads the per-month
cells (months of the playbook's timezone) of the months that were computed and are not stale, and queries
the rest (edges of the period, stale months) directly. Triggers on incidents, deadlines and escalations mark
the 15 minutes (UTC) in which the incident of every row that changes a figure was opened, so a late
deadline, a reopened incident or a drill flag set afterwards makes its month stale until the scheduler
computes it again. Triggers, not application code: they also see bulk updates and hand-made fixes. Slots
of 15 minutes, not months, because the timezone is the playbook's and every zone's months start on one.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# what a change to these columns does to the figures: see bot/review/kpi.py
INCIDENT_COLUMNS = (
    "created_at",
    "kind",
    "severity",
    "category",
    "is_drill",
    "resolved_at",
    "first_response_at",
    "satisfaction_score",
)
DEADLINE_COLUMNS = ("key", "state", "closed_at", "due_at", "incident_created_at", "incident_is_drill")
ESCALATION_COLUMNS = ("incident_id", "started_at", "acked_at")

PG_FUNCTIONS = """
CREATE FUNCTION kpi_slot(moment timestamptz) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT to_char(moment AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:')
        || lpad((floor(extract(minute FROM moment AT TIME ZONE 'UTC') / 15) * 15)::int::text, 2, '0')
$$;

CREATE FUNCTION kpi_mark_incident() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        INSERT INTO kpi_stale (slot) VALUES (kpi_slot(OLD.created_at))
        ON CONFLICT DO NOTHING;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO kpi_stale (slot) VALUES (kpi_slot(NEW.created_at))
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION kpi_mark_deadline() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.incident_created_at IS NOT NULL THEN
        INSERT INTO kpi_stale (slot) VALUES (kpi_slot(OLD.incident_created_at))
        ON CONFLICT DO NOTHING;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.incident_created_at IS NOT NULL THEN
        INSERT INTO kpi_stale (slot) VALUES (kpi_slot(NEW.incident_created_at))
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION kpi_mark_escalation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        INSERT INTO kpi_stale (slot)
        SELECT kpi_slot(i.created_at) FROM incidents i WHERE i.id = OLD.incident_id
        ON CONFLICT DO NOTHING;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO kpi_stale (slot)
        SELECT kpi_slot(i.created_at) FROM incidents i WHERE i.id = NEW.incident_id
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;
"""


def _changed(columns: tuple[str, ...], same: str) -> str:
    return " OR ".join(f"OLD.{c} {same} NEW.{c}" for c in columns)


def _pg_triggers() -> list[str]:
    statements = []
    for table, function, columns in (
        ("incidents", "kpi_mark_incident", INCIDENT_COLUMNS),
        ("deadlines", "kpi_mark_deadline", DEADLINE_COLUMNS),
        ("escalations", "kpi_mark_escalation", ESCALATION_COLUMNS),
    ):
        statements.append(
            f"CREATE TRIGGER kpi_{table}_row AFTER INSERT OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {function}()"
        )
        statements.append(
            f"CREATE TRIGGER kpi_{table}_update AFTER UPDATE ON {table} FOR EACH ROW "
            f"WHEN ({_changed(columns, 'IS DISTINCT FROM')}) EXECUTE FUNCTION {function}()"
        )
    return statements


def sqlite_slot(column: str) -> str:
    """`YYYY-MM-DD HH:MM` of the 15 minutes a stored UTC time (`YYYY-MM-DD HH:MM:SS.ffffff`) falls in."""
    return f"substr({column}, 1, 14) || printf('%02d', (CAST(substr({column}, 15, 2) AS INTEGER) / 15) * 15)"


def _sqlite_triggers() -> list[str]:
    def mark(row: str, table: str) -> str:
        if table == "incidents":
            return f"INSERT OR IGNORE INTO kpi_stale (slot) VALUES ({sqlite_slot(f'{row}.created_at')});"
        if table == "deadlines":
            return (
                f"INSERT OR IGNORE INTO kpi_stale (slot) SELECT {sqlite_slot(f'{row}.incident_created_at')} "
                f"WHERE {row}.incident_created_at IS NOT NULL;"
            )
        return (
            f"INSERT OR IGNORE INTO kpi_stale (slot) SELECT {sqlite_slot('i.created_at')} FROM incidents i "
            f"WHERE i.id = {row}.incident_id;"
        )

    statements = []
    for table, columns in (
        ("incidents", INCIDENT_COLUMNS),
        ("deadlines", DEADLINE_COLUMNS),
        ("escalations", ESCALATION_COLUMNS),
    ):
        statements += [
            f"CREATE TRIGGER kpi_{table}_insert AFTER INSERT ON {table} BEGIN {mark('NEW', table)} END",
            f"CREATE TRIGGER kpi_{table}_delete AFTER DELETE ON {table} BEGIN {mark('OLD', table)} END",
            f"CREATE TRIGGER kpi_{table}_update AFTER UPDATE ON {table} WHEN {_changed(columns, 'IS NOT')} "
            f"BEGIN {mark('OLD', table)} {mark('NEW', table)} END",
        ]
    return statements


def upgrade() -> None:
    op.create_table(
        "kpi_stale",
        sa.Column("slot", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("slot"),
    )
    op.create_table(
        "kpi_months",
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("good_at_least", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("month"),
    )
    op.create_table(
        "kpi_cells",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("measure", sa.String(length=10), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("category", sa.String(length=60), nullable=False),
        sa.Column("minute", sa.Integer(), nullable=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=True),
        sa.Column("rated", sa.Integer(), nullable=False),
        sa.Column("satisfied", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_kpi_cells_month", "kpi_cells", ["month", "measure"], unique=False)
    op.create_table(
        "kpi_deadline_cells",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_kpi_deadline_cells_month", "kpi_deadline_cells", ["month"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTIONS)
        for statement in _pg_triggers():
            op.execute(statement)
        op.execute("INSERT INTO kpi_stale (slot) SELECT DISTINCT kpi_slot(created_at) FROM incidents")
    else:
        for statement in _sqlite_triggers():
            op.execute(statement)
        op.execute(f"INSERT INTO kpi_stale (slot) SELECT DISTINCT {sqlite_slot('created_at')} FROM incidents")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("incidents", "deadlines", "escalations"):
            op.execute(f"DROP TRIGGER IF EXISTS kpi_{table}_row ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS kpi_{table}_update ON {table}")
        for function in ("kpi_mark_incident", "kpi_mark_deadline", "kpi_mark_escalation"):
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
        op.execute("DROP FUNCTION IF EXISTS kpi_slot(timestamptz)")
    else:
        for table in ("incidents", "deadlines", "escalations"):
            for event in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER IF EXISTS kpi_{table}_{event}")
    op.drop_index("ix_kpi_deadline_cells_month", table_name="kpi_deadline_cells")
    op.drop_table("kpi_deadline_cells")
    op.drop_index("ix_kpi_cells_month", table_name="kpi_cells")
    op.drop_table("kpi_cells")
    op.drop_table("kpi_months")
    op.drop_table("kpi_stale")
