"""complaint records: each complaint's deadlines (the seed's first response, investigation, solution and
satisfaction follow-up) and the complaint system's events that meet them, each carrying its complaint's
received_at so the KPI report reads a period by index without a join (complaints' own received_at index is 0015's)

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "complaint_deadlines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("complaint_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("clock", sa.String(length=10), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("met_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["complaint_id"], ["complaints.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("complaint_id", "key", name="uq_complaint_deadlines_key"),
    )
    op.create_index("ix_complaint_deadlines_due", "complaint_deadlines", ["state", "due_at"])
    op.create_index("ix_complaint_deadlines_received_at", "complaint_deadlines", ["received_at"])
    op.create_table(
        "complaint_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("complaint_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=30), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["complaint_id"], ["complaints.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("complaint_id", "type", name="uq_complaint_events_type"),
    )
    op.create_index("ix_complaint_events_received_at", "complaint_events", ["type", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_complaint_events_received_at", table_name="complaint_events")
    op.drop_table("complaint_events")
    op.drop_index("ix_complaint_deadlines_received_at", table_name="complaint_deadlines")
    op.drop_index("ix_complaint_deadlines_due", table_name="complaint_deadlines")
    op.drop_table("complaint_deadlines")
