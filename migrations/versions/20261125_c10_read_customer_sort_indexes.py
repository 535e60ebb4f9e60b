"""indexes on the sort values of customer lists (issue 10: read performance)

Customer lists sort a nullable column as `coalesce(column, floor)` (store.models.customers
.sort_value); without an index on that expression, every page of `customers(orderBy:
LAST_SEEN_AT)` sorted the whole table. The floor is written into the expression the same way
the queries write it, per dialect.

Revision ID: c10_read
Revises: c9_webhooks
Create Date: 2026-11-25 20:40:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

import store.types

revision: str = "c10_read"
down_revision: str | None = "c9_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FLOORS: dict[str, tuple[Any, sa.types.TypeEngine[Any]]] = {
    "last_seen_at": (EPOCH, store.types.UTCDateTime()),
    "stage_entered_at": (EPOCH, store.types.UTCDateTime()),
    "display_name": ("", sa.String(200)),
}


def upgrade() -> None:
    for name, (floor, type_) in FLOORS.items():
        value = sa.func.coalesce(
            sa.column(name, type_), sa.literal(floor, type_, literal_execute=True)
        )
        op.create_index(
            f"ix_customers_status_{name}_sort",
            "customers",
            [sa.column("status"), value, sa.column("id")],
        )


def downgrade() -> None:
    for name in FLOORS:
        op.drop_index(f"ix_customers_status_{name}_sort", table_name="customers")
