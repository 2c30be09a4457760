"""incident pause, deadline clock (calendar or business hours)

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incidents") as batch_op:
        batch_op.add_column(sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("deadlines") as batch_op:
        batch_op.add_column(sa.Column("clock", sa.String(length=10), nullable=False, server_default="calendar"))


def downgrade() -> None:
    with op.batch_alter_table("deadlines") as batch_op:
        batch_op.drop_column("clock")
    with op.batch_alter_table("incidents") as batch_op:
        batch_op.drop_column("paused_at")
