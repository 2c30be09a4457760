"""surge_proposals: the warning line's proposals to the leadership group; complaints indexed by time received

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "surge_proposals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("line", sa.String(length=200), nullable=False),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column("line_window_seconds", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=60), nullable=True),
        sa.Column("contact_channel", sa.String(length=20), nullable=True),
        sa.Column("crossed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("channel_id", sa.String(length=40), nullable=True),
        sa.Column("message_ts", sa.String(length=40), nullable=True),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("repage_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("repaged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=40), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("fell_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    # one proposal per line until the volume has fallen below it: the guard against concurrent intakes
    op.create_index(
        "uq_surge_proposals_live_line",
        "surge_proposals",
        ["line"],
        unique=True,
        sqlite_where=sa.text("fell_at IS NULL"),
        postgresql_where=sa.text("fell_at IS NULL"),
    )
    op.create_index("ix_complaints_received_at", "complaints", ["received_at"])
    op.create_index("ix_complaints_category_received_at", "complaints", ["category", "received_at"])
    op.create_index("ix_complaints_channel_received_at", "complaints", ["contact_channel", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_complaints_channel_received_at", table_name="complaints")
    op.drop_index("ix_complaints_category_received_at", table_name="complaints")
    op.drop_index("ix_complaints_received_at", table_name="complaints")
    op.drop_index("uq_surge_proposals_live_line", table_name="surge_proposals")
    op.drop_table("surge_proposals")
