"""api_keys.cost_budget_per_minute (issue 22: budgets per key)

A key's own per-minute cost budget; NULL: the service's default (C360_COST_BUDGET_PER_MINUTE).

Revision ID: c13_key_budgets
Revises: c13_customer_channels
Create Date: 2026-12-07 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c13_key_budgets"
down_revision: str | None = "c13_customer_channels"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("cost_budget_per_minute", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("cost_budget_per_minute")
