"""The outbox wakes its dispatchers; pruning finds an event's deliveries by index (issue 19)

PostgreSQL: a statement-level trigger sends NOTIFY c360_outbox from every transaction that
inserts outbox rows (delivered at commit, once per transaction), heard by
`store.outbox_notify.listen_for_outbox`. SQLite has no notifications and polls.
Both: an index on webhook_deliveries.outbox_id, for pruning the outbox (which looks up and
deletes an event's deliveries, and whose DELETE checks the foreign key).

Revision ID: c13_outbox_notify
Revises: c13_duplicates
Create Date: 2026-12-07 13:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c13_outbox_notify"
down_revision: str | None = "c13_duplicates"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The channel is store.outbox_notify.CHANNEL; spelled out here so the history never changes.
CREATE = (
    """CREATE FUNCTION c360_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_notify('c360_outbox', ''); RETURN NULL; END $$""",
    """CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION c360_outbox_notify()""",
)
DROP = (
    "DROP TRIGGER IF EXISTS outbox_notify ON outbox",
    "DROP FUNCTION IF EXISTS c360_outbox_notify()",
)


def upgrade() -> None:
    op.create_index("ix_webhook_deliveries_outbox_id", "webhook_deliveries", ["outbox_id"])
    if op.get_bind().dialect.name == "postgresql":
        for statement in CREATE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in DROP:
            op.execute(statement)
    op.drop_index("ix_webhook_deliveries_outbox_id", table_name="webhook_deliveries")
