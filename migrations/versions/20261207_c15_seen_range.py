"""customer_dirty.seen_first / seen_last: the span of activity the writes that marked a
profile stored, so that the worker widens `customers.first_seen_at`/`last_seen_at` from the
mark (domain.activity.seen) instead of scanning every month of events and orders per profile.

Revision ID: c15_seen_range
Revises: c15_event_keys
Create Date: 2026-12-07 19:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from store.types import UTCDateTime

revision: str = "c15_seen_range"
down_revision: str | None = "c15_event_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customer_dirty") as table:
        table.add_column(sa.Column("seen_first", UTCDateTime(), nullable=True))
        table.add_column(sa.Column("seen_last", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customer_dirty") as table:
        table.drop_column("seen_last")
        table.drop_column("seen_first")
