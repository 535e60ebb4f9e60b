"""What retention keeps of retired months of events: event_rollups (issue 23)

Before a month of events is dropped (domain.activity.retention), its events are counted per
customer, type, channel and month into event_rollups, with the first and last occurrence;
the all-time readers add these in. Both backends.

Revision ID: c16_event_rollups
Revises: c15_seen_range
Create Date: 2026-12-07 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from store.types import UTCDateTime

revision: str = "c16_event_rollups"
down_revision: str | None = "c15_seen_range"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_rollups",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=True),
        sa.Column("month", UTCDateTime(), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("first_at", UTCDateTime(), nullable=False),
        sa.Column("last_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_event_rollups_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_rollups")),
    )
    op.create_index("ix_event_rollups_customer_id_type", "event_rollups", ["customer_id", "type"])


def downgrade() -> None:
    op.drop_index("ix_event_rollups_customer_id_type", table_name="event_rollups")
    op.drop_table("event_rollups")
