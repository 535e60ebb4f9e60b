"""events.properties GIN index (issue 21: event conditions filter on an event's properties)

PostgreSQL only: a GIN jsonb_path_ops index answers the JSONB containment an event condition's
`where` adds for an EQ on a text or boolean property. SQLite has no such index.

Revision ID: c12_event_properties
Revises: c11_pii
Create Date: 2026-11-27 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c12_event_properties"
down_revision: str | None = "c11_pii"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_events_properties",
            "events",
            ["properties"],
            postgresql_using="gin",
            postgresql_ops={"properties": "jsonb_path_ops"},
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_events_properties", table_name="events")
