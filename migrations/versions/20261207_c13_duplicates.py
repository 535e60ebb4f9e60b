"""probable duplicates: suggestions, compared features, the match model (issue 20)

Revision ID: c13_duplicates
Revises: c13_identity_quality
Create Date: 2026-12-07 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from store.types import JsonType, UTCDateTime

revision: str = "c13_duplicates"
down_revision: str | None = "c13_identity_quality"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "duplicate_suggestions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_a_id", sa.Uuid(), nullable=False),
        sa.Column("customer_b_id", sa.Uuid(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("evidence", JsonType, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_a_id"],
            ["customers.id"],
            name="fk_duplicate_suggestions_customer_a_id_customers",
        ),
        sa.ForeignKeyConstraint(
            ["customer_b_id"],
            ["customers.id"],
            name="fk_duplicate_suggestions_customer_b_id_customers",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_duplicate_suggestions"),
        sa.UniqueConstraint(
            "customer_a_id",
            "customer_b_id",
            name="uq_duplicate_suggestions_customer_a_id_customer_b_id",
        ),
    )
    op.create_index(
        "ix_duplicate_suggestions_status_score",
        "duplicate_suggestions",
        ["status", "score", "id"],
    )
    op.create_index(
        "ix_duplicate_suggestions_customer_b_id", "duplicate_suggestions", ["customer_b_id"]
    )
    op.create_table(
        "duplicate_profiles",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("first_name", sa.String(length=200), nullable=True),
        sa.Column("last_name", sa.String(length=200), nullable=True),
        sa.Column("email_local", sa.String(length=320), nullable=True),
        sa.Column("phone_digits", sa.String(length=32), nullable=True),
        sa.Column("birthday", sa.String(length=10), nullable=True),
        sa.Column("city", sa.String(length=200), nullable=True),
        sa.Column("first_initial", sa.String(length=1), nullable=True),
        sa.Column("phone_prefix", sa.String(length=7), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name="fk_duplicate_profiles_customer_id_customers"
        ),
        sa.PrimaryKeyConstraint("customer_id", name="pk_duplicate_profiles"),
    )
    op.create_index(
        "ix_duplicate_profiles_birthday", "duplicate_profiles", ["birthday", "first_initial"]
    )
    op.create_index("ix_duplicate_profiles_email_local", "duplicate_profiles", ["email_local"])
    op.create_index("ix_duplicate_profiles_phone_prefix", "duplicate_profiles", ["phone_prefix"])
    op.create_index(
        "ix_duplicate_profiles_name_city", "duplicate_profiles", ["first_name", "last_name", "city"]
    )
    op.create_table(
        "duplicate_scan",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", JsonType, nullable=True),
        sa.Column("trained_at", UTCDateTime(), nullable=True),
        sa.Column("trained_profiles", sa.Integer(), nullable=False),
        sa.Column("scanned_until", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_duplicate_scan"),
    )
    op.create_index("ix_customers_updated_at", "customers", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_customers_updated_at", table_name="customers")
    op.drop_table("duplicate_scan")
    op.drop_table("duplicate_profiles")
    op.drop_table("duplicate_suggestions")
