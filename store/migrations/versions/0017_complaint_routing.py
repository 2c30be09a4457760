"""complaint routing: the incident a complaint opened or joined, its cluster, and the clusters' lock rows

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("complaints") as batch:
        batch.add_column(sa.Column("incident_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("routed", sa.String(length=10), nullable=True))
        batch.add_column(sa.Column("cluster_key", sa.String(length=64), nullable=True))
    op.create_index("ix_complaints_incident_id", "complaints", ["incident_id"])
    op.create_index("ix_complaints_cluster_key_created_at", "complaints", ["cluster_key", "created_at"])
    op.create_table(
        "complaint_clusters",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("complaints", sa.Integer(), server_default="0", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("complaint_clusters")
    op.drop_index("ix_complaints_cluster_key_created_at", table_name="complaints")
    op.drop_index("ix_complaints_incident_id", table_name="complaints")
    with op.batch_alter_table("complaints") as batch:
        batch.drop_column("cluster_key")
        batch.drop_column("routed")
        batch.drop_column("incident_id")
