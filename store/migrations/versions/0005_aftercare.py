"""aftercare

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "due_at", name="uq_report_run"),
    )
    op.create_table(
        "satisfaction_ratings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("rater_id", sa.String(length=40), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("incident_id", "source", "rater_id", name="uq_rating_per_rater"),
    )
    with op.batch_alter_table("satisfaction_ratings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_satisfaction_ratings_incident_id"), ["incident_id"], unique=False)

    with op.batch_alter_table("deadlines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner_user", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("incident_created_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("incident_is_drill", sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )
        batch_op.create_index(
            "ix_deadlines_kpi",
            ["incident_created_at"],
            unique=False,
            postgresql_include=["key", "state", "incident_is_drill"],
        )

    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("review_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("review_posted_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("review_completed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("review_completed_by", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("first_response_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("satisfaction_score", sa.Integer(), nullable=True))
        batch_op.create_index(
            "ix_incidents_kpi",
            ["created_at"],
            unique=False,
            postgresql_include=[
                "is_drill",
                "kind",
                "severity",
                "category",
                "resolved_at",
                "first_response_at",
                "satisfaction_score",
            ],
        )
        batch_op.create_index(batch_op.f("ix_incidents_review_at"), ["review_at"], unique=False)

    # the KPI copies, for incidents recorded before this revision
    op.execute(
        "UPDATE deadlines SET"
        " incident_created_at = (SELECT i.created_at FROM incidents i WHERE i.id = deadlines.incident_id),"
        " incident_is_drill = (SELECT i.is_drill FROM incidents i WHERE i.id = deadlines.incident_id)"
    )
    op.execute(
        "UPDATE incidents SET first_response_at = (SELECT MIN(d.closed_at) FROM deadlines d"
        " WHERE d.incident_id = incidents.id AND d.key = 'first_response' AND d.state = 'met')"
    )


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incidents_review_at"))
        batch_op.drop_index(
            "ix_incidents_kpi",
            postgresql_include=[
                "is_drill",
                "kind",
                "severity",
                "category",
                "resolved_at",
                "first_response_at",
                "satisfaction_score",
            ],
        )
        batch_op.drop_column("satisfaction_score")
        batch_op.drop_column("first_response_at")
        batch_op.drop_column("review_completed_by")
        batch_op.drop_column("review_completed_at")
        batch_op.drop_column("review_posted_at")
        batch_op.drop_column("review_at")

    with op.batch_alter_table("deadlines", schema=None) as batch_op:
        batch_op.drop_index("ix_deadlines_kpi", postgresql_include=["key", "state", "incident_is_drill"])
        batch_op.drop_column("incident_is_drill")
        batch_op.drop_column("incident_created_at")
        batch_op.drop_column("owner_user")

    with op.batch_alter_table("satisfaction_ratings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_satisfaction_ratings_incident_id"))

    op.drop_table("satisfaction_ratings")
    op.drop_table("report_runs")
