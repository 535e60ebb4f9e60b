"""customer_channels: each customer's activity per channel, filled from events and orders

Issue 21: Customer.channels and segment insights read a per-customer channel summary that
ingest keeps (domain.activity.channels). Existing events and orders are summarized once here.

Revision ID: c13_customer_channels
Revises: c13_stage_kpis
Create Date: 2026-12-07 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.types

revision: str = "c13_customer_channels"
down_revision: str | None = "c13_stage_kpis"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SUMMARIZE = """
INSERT INTO customer_channels (customer_id, channel, first_seen_at, last_seen_at, events, orders)
SELECT customer_id, channel, MIN(first_seen_at), MAX(last_seen_at), SUM(events), SUM(orders)
FROM (
    SELECT customer_id, channel, MIN(occurred_at) AS first_seen_at,
           MAX(occurred_at) AS last_seen_at, COUNT(*) AS events, 0 AS orders
    FROM events WHERE channel IS NOT NULL AND channel <> '' GROUP BY customer_id, channel
    UNION ALL
    SELECT customer_id, source, MIN(placed_at), MAX(placed_at), 0,
           COUNT(CASE WHEN status = 'completed' THEN 1 END)
    FROM orders WHERE source <> '' GROUP BY customer_id, source
) AS activity
GROUP BY customer_id, channel
"""


def upgrade() -> None:
    op.create_table(
        "customer_channels",
        sa.Column("customer_id", sa.Uuid(), sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("first_seen_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "channel"),
    )
    op.execute(SUMMARIZE)


def downgrade() -> None:
    op.drop_table("customer_channels")
