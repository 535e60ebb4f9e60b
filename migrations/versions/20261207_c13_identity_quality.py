"""Identity quality (issue 20): shared identifiers, placeholders as data, merge provenance,
survivorship rules and each field's source

- identity_types.shared_limit: how many values of each stronger type one identifier of this
  type may link before it counts as shared (a kiosk's device id) and stops linking; device ids
  link one. identities.shared_at: when it was found shared.
- identity_types.placeholder_patterns: regular expressions of values that are placeholders
  (`null@null.com`, `test@...`, a phone of one digit repeated), refused like blocked values.
- merge_records.via (identify, manual, duplicate) and linked_by (the ids of the identities
  that joined the two profiles); earlier merges by identify are marked so from their reason.
- customers.field_sources: the source that set each field, beside field_times.
- survivorship_rules (a rule per field) and source_trust (a rank per source).

Revision ID: c13_identity_quality
Revises: c13_key_budgets
Create Date: 2026-12-07 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.types

revision: str = "c13_identity_quality"
down_revision: str | None = "c13_key_budgets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EMAIL_PLACEHOLDERS = [
    r"(null|none|nil|test|testing|tester|noemail|no-email|noreply|no-reply|donotreply|"
    r"unknown|anonymous|asdf|qwerty|xxx+|abc|example)@.*",
    r".*@(null|none|test|noemail|nomail)\.(com|net|org|cn)",
]
PHONE_PLACEHOLDERS = [
    r"\+861(\d)\1{9}",  # 1 and ten times one digit: 18888888888
    r"\+861[3-9]\d(\d)\1{7}",  # a mobile prefix and eight times one digit: 13800000000
    r"\+\d*(0123456789|123456789|987654321)\d*",  # nine digits in a row, up or down
]


def upgrade() -> None:
    op.add_column("identity_types", sa.Column("shared_limit", sa.Integer(), nullable=True))
    op.add_column(
        "identity_types",
        sa.Column(
            "placeholder_patterns",
            store.types.JsonType,
            nullable=False,
            server_default=sa.text("'[]'"),
        ),
    )
    op.add_column(
        "identities",
        sa.Column("shared_at", store.types.UTCDateTime(timezone=True), nullable=True),
    )
    op.create_index(op.f("ix_identities_shared_at"), "identities", ["shared_at"])
    op.add_column(
        "merge_records",
        sa.Column("via", sa.String(length=16), nullable=False, server_default="manual"),
    )
    op.add_column(
        "merge_records",
        sa.Column(
            "linked_by", store.types.JsonType, nullable=False, server_default=sa.text("'[]'")
        ),
    )
    op.add_column(
        "customers",
        sa.Column(
            "field_sources", store.types.JsonType, nullable=False, server_default=sa.text("'{}'")
        ),
    )
    op.create_table(
        "survivorship_rules",
        sa.Column("field", sa.String(length=120), nullable=False),
        sa.Column("rule", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("field", name=op.f("pk_survivorship_rules")),
    )
    op.create_table(
        "source_trust",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_source_trust")),
    )
    merges = sa.table("merge_records", sa.column("via", sa.String), sa.column("reason", sa.Text))
    op.execute(merges.update().where(merges.c.reason.like("identify:%")).values(via="identify"))
    types = sa.table(
        "identity_types",
        sa.column("key", sa.String),
        sa.column("shared_limit", sa.Integer),
        sa.column("placeholder_patterns", store.types.JsonType),
    )
    op.execute(types.update().where(types.c.key == "device_id").values(shared_limit=1))
    for key, patterns in (("email", EMAIL_PLACEHOLDERS), ("phone", PHONE_PLACEHOLDERS)):
        op.execute(types.update().where(types.c.key == key).values(placeholder_patterns=patterns))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+): a batch copy of customers would lose its expression
    # indexes.
    op.drop_table("source_trust")
    op.drop_table("survivorship_rules")
    op.drop_column("customers", "field_sources")
    op.drop_column("merge_records", "linked_by")
    op.drop_column("merge_records", "via")
    op.drop_index(op.f("ix_identities_shared_at"), table_name="identities")
    op.drop_column("identities", "shared_at")
    op.drop_column("identity_types", "placeholder_patterns")
    op.drop_column("identity_types", "shared_limit")
