"""Derived state follows writes through a worker: the profiles waiting for it (issue 19)

customer_dirty holds one row per profile whose metrics, RULE tags, stage or materialized
segment membership are behind its raw facts (domain.derived). PostgreSQL: a statement-level
trigger sends NOTIFY c360_derived from every transaction that marks profiles (delivered at
commit, once per transaction), which wakes the workers; SQLite polls.

Revision ID: c14_derived
Revises: c13_outbox_notify
Create Date: 2026-12-07 15:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from store.types import UTCDateTime

revision: str = "c14_derived"
down_revision: str | None = "c13_outbox_notify"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The channel is domain.derived.worker.CHANNEL; spelled out here so the history never changes.
CREATE = (
    """CREATE FUNCTION c360_derived_notify() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_notify('c360_derived', ''); RETURN NULL; END $$""",
    """CREATE TRIGGER customer_dirty_notify AFTER INSERT ON customer_dirty
    FOR EACH STATEMENT EXECUTE FUNCTION c360_derived_notify()""",
)
DROP = (
    "DROP TRIGGER IF EXISTS customer_dirty_notify ON customer_dirty",
    "DROP FUNCTION IF EXISTS c360_derived_notify()",
)


def upgrade() -> None:
    op.create_table(
        "customer_dirty",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("since", UTCDateTime(), nullable=False),
        sa.Column("marked_at", UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column("claimed_until", UTCDateTime(), nullable=True),
        sa.Column("claim", sa.Uuid(), nullable=True),
        sa.Column("claimed_version", sa.Integer(), nullable=True),
        sa.Column("remarked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_dirty")),
    )
    op.create_index("ix_customer_dirty_since", "customer_dirty", ["since"])
    op.create_index("ix_customer_dirty_claim", "customer_dirty", ["claim"])
    if op.get_bind().dialect.name == "postgresql":
        for statement in CREATE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in DROP:
            op.execute(statement)
    op.drop_index("ix_customer_dirty_claim", table_name="customer_dirty")
    op.drop_index("ix_customer_dirty_since", table_name="customer_dirty")
    op.drop_table("customer_dirty")
