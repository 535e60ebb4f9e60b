"""condition language indexes (issue 5): events by type and time, for event-window leaves
evaluated over a whole population (an index-only range scan instead of a scan of all events)

Revision ID: c5_conditions
Revises: d03d991db626
Create Date: 2026-11-25 20:35:43.665649
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c5_conditions"
down_revision: str | None = "d03d991db626"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_events_type_occurred_at", ["type", "occurred_at", "customer_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_type_occurred_at")
