"""audit_customers and tag_definitions.pii (issue 8: access and safety)

Revision ID: c8_access
Revises: c5_conditions
Create Date: 2026-11-25 20:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c8_access"
down_revision: str | None = "c5_conditions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_customers",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("audit_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["audit_id"],
            ["audit_log.id"],
            name=op.f("fk_audit_customers_audit_id_audit_log"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", "audit_id", name=op.f("pk_audit_customers")),
    )
    with op.batch_alter_table("tag_definitions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("pii", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("tag_definitions", schema=None) as batch_op:
        batch_op.drop_column("pii")
    op.drop_table("audit_customers")
