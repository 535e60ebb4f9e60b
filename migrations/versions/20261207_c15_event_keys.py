"""events.idempotency_key unique across months, kept set-based: a table of keys

A partitioned table cannot hold a unique constraint without its partition key, so c14 kept the
idempotency key unique with a row trigger (an advisory lock and a probe of every month per
row): a plain INSERT of events ran at a tenth of its speed. Here the keys live in a table of
their own, `event_keys`, whose primary key is the uniqueness (and keeps the constraint's name,
`uq_events_idempotency_key`, so a duplicate is the same 23505 as before), filled and emptied by
statement-level triggers with transition tables: one INSERT … SELECT per statement, whatever
its rows. `occurred_at` rides along so that retiring a month can drop its keys (dropping a
partition fires no trigger). PostgreSQL only: SQLite keeps its plain UNIQUE constraint.

Revision ID: c15_event_keys
Revises: c14_partitions
Create Date: 2026-12-07 18:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c15_event_keys"
down_revision: str | None = "c14_partitions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTIONS = (
    """CREATE FUNCTION c360_event_keys_added() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO event_keys (idempotency_key, occurred_at)
      SELECT idempotency_key, occurred_at FROM added WHERE idempotency_key IS NOT NULL;
      RETURN NULL;
    END $$""",
    """CREATE FUNCTION c360_event_keys_removed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      DELETE FROM event_keys k USING removed r WHERE k.idempotency_key = r.idempotency_key;
      RETURN NULL;
    END $$""",
    # Only rows whose key or time changed touch event_keys (merges move thousands of events by
    # customer_id and change neither). All old keys go before any new one lands, so keys
    # swapped between rows in one statement are no conflict.
    """CREATE FUNCTION c360_event_keys_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      DELETE FROM event_keys k USING before_rows b JOIN after_rows a ON a.id = b.id
      WHERE k.idempotency_key = b.idempotency_key
        AND (a.idempotency_key IS DISTINCT FROM b.idempotency_key
             OR a.occurred_at IS DISTINCT FROM b.occurred_at);
      INSERT INTO event_keys (idempotency_key, occurred_at)
      SELECT a.idempotency_key, a.occurred_at
      FROM before_rows b JOIN after_rows a ON a.id = b.id
      WHERE a.idempotency_key IS NOT NULL
        AND (a.idempotency_key IS DISTINCT FROM b.idempotency_key
             OR a.occurred_at IS DISTINCT FROM b.occurred_at);
      RETURN NULL;
    END $$""",
    """CREATE FUNCTION c360_event_keys_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      TRUNCATE event_keys;
      RETURN NULL;
    END $$""",
)
TRIGGERS = (
    """CREATE TRIGGER event_keys_added AFTER INSERT ON events REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION c360_event_keys_added()""",
    """CREATE TRIGGER event_keys_removed AFTER DELETE ON events REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION c360_event_keys_removed()""",
    """CREATE TRIGGER event_keys_changed AFTER UPDATE ON events
    REFERENCING OLD TABLE AS before_rows NEW TABLE AS after_rows
    FOR EACH STATEMENT EXECUTE FUNCTION c360_event_keys_changed()""",
    """CREATE TRIGGER event_keys_truncated AFTER TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION c360_event_keys_truncated()""",
)
# c14's row trigger, restored on downgrade.
ROW_TRIGGER = (
    """CREATE FUNCTION c360_event_key_unique() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.idempotency_key IS NULL
         OR TG_OP = 'UPDATE' AND NEW.idempotency_key IS NOT DISTINCT FROM OLD.idempotency_key
      THEN RETURN NEW; END IF;
      PERFORM pg_advisory_xact_lock(hashtextextended('events.idempotency_key:'
                                                     || NEW.idempotency_key, 0));
      IF EXISTS (SELECT 1 FROM events WHERE idempotency_key = NEW.idempotency_key
                 AND (TG_OP = 'INSERT' OR id <> NEW.id)) THEN
        RAISE unique_violation USING
          MESSAGE = 'duplicate key value violates unique constraint "uq_events_idempotency_key"',
          CONSTRAINT = 'uq_events_idempotency_key';
      END IF;
      RETURN NEW;
    END $$""",
    """CREATE TRIGGER event_key_unique BEFORE INSERT OR UPDATE OF idempotency_key ON events
    FOR EACH ROW EXECUTE FUNCTION c360_event_key_unique()""",
)
NAMES = (
    ("event_keys_added", "c360_event_keys_added"),
    ("event_keys_removed", "c360_event_keys_removed"),
    ("event_keys_changed", "c360_event_keys_changed"),
    ("event_keys_truncated", "c360_event_keys_truncated"),
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER event_key_unique ON events")
    op.execute("DROP FUNCTION c360_event_key_unique()")
    op.execute(
        "CREATE TABLE event_keys (idempotency_key varchar(200) NOT NULL, "
        "occurred_at timestamptz NOT NULL, "
        "CONSTRAINT uq_events_idempotency_key PRIMARY KEY (idempotency_key))"
    )
    op.execute("CREATE INDEX ix_event_keys_occurred_at ON event_keys (occurred_at)")
    op.execute(
        "INSERT INTO event_keys SELECT idempotency_key, occurred_at FROM events "
        "WHERE idempotency_key IS NOT NULL"
    )
    for statement in (*FUNCTIONS, *TRIGGERS):
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for trigger, function in NAMES:
        op.execute(f"DROP TRIGGER {trigger} ON events")
        op.execute(f"DROP FUNCTION {function}()")
    op.execute("DROP TABLE event_keys")
    for statement in ROW_TRIGGER:
        op.execute(statement)
