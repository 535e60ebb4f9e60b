"""pii_attributes, and TEXT tags PII unless declared otherwise (issue 16: partners and PII)

Free text (a TEXT tag's value) is masked for partners unless the tag is declared non-PII:
existing TEXT tags become PII, as a new one is by default.

Revision ID: c11_pii
Revises: c10_read
Create Date: 2026-11-26 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.types

revision: str = "c11_pii"
down_revision: str | None = "c10_read"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pii_attributes",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("declared_by", sa.String(length=200), nullable=True),
        sa.Column("declared_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_pii_attributes")),
    )
    tags = sa.table("tag_definitions", sa.column("pii", sa.Boolean), sa.column("value_type"))
    op.execute(tags.update().where(tags.c.value_type == "TEXT").values(pii=True))


def downgrade() -> None:
    op.drop_table("pii_attributes")
