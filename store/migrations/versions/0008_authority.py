"""authority: the peak severity notice approval is bound to, and who caused a page

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("peak_severity", sa.String(length=10), nullable=True))
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("caused_by", sa.String(length=40), nullable=True))
    # sev1 outranks sev2 and the names sort that way, so the peak of the history is its smallest name
    op.execute(
        "UPDATE incidents SET peak_severity = (SELECT MIN(x.sev) FROM ("
        " SELECT incidents.severity AS sev"
        " UNION SELECT json_extract(t.data, '$.old') FROM timeline_events t"
        " WHERE t.incident_id = incidents.id AND t.event = 'severity_changed'"
        ") x)"
        if op.get_bind().dialect.name == "sqlite"
        else "UPDATE incidents SET peak_severity = (SELECT MIN(x.sev) FROM ("
        " SELECT incidents.severity AS sev"
        " UNION SELECT t.data::json->>'old' FROM timeline_events t"
        " WHERE t.incident_id = incidents.id AND t.event = 'severity_changed'"
        ") x)"
    )


def downgrade() -> None:
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.drop_column("caused_by")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_column("peak_severity")
