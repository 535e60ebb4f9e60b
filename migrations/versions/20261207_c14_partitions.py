"""Events partitioned by month on PostgreSQL (issue 23); SQLite unchanged

PostgreSQL: `events` becomes a table partitioned by range of `occurred_at`, one partition per
calendar month (UTC) from the oldest event's month to three months ahead, and a default
partition for what falls outside (store.partitions keeps months ahead and moves such rows when
their month is created). The rows move month by month; the id sequence is handed over.

A partitioned table's unique constraints must contain the partition key: the primary key
becomes (id, occurred_at), and the idempotency key's uniqueness, which must hold whatever
`occurred_at` a retry carries, is kept by a trigger (`c360_event_key_unique`): it takes a
transaction-scoped advisory lock on the key, then raises unique_violation (23505, as the
constraint did) when another event holds it, so ingest's retry-and-skip path is unchanged.

Revision ID: c14_partitions
Revises: c14_derived
Create Date: 2026-12-07 15:30:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

from alembic import op
from sqlalchemy import text

revision: str = "c14_partitions"
down_revision: str | None = "c14_derived"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONTHS_AHEAD = 3
INDEXES = (
    "CREATE INDEX ix_events_customer_id_occurred_at ON events (customer_id, occurred_at)",
    "CREATE INDEX ix_events_customer_id_type_occurred_at ON events (customer_id, type, occurred_at)",
    "CREATE INDEX ix_events_type_occurred_at ON events (type, occurred_at, customer_id)",
    "CREATE INDEX ix_events_properties ON events USING gin (properties jsonb_path_ops)",
    "CREATE INDEX ix_events_idempotency_key ON events (idempotency_key)",
)
OLD_INDEXES = (
    "ix_events_customer_id_occurred_at",
    "ix_events_customer_id_type_occurred_at",
    "ix_events_type_occurred_at",
    "ix_events_properties",
)
# Spelled out here (not imported from store.partitions) so that the history never changes.
KEY_TRIGGER = (
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


def _month(value: datetime) -> datetime:
    return datetime(value.year, value.month, 1, tzinfo=UTC)


def _next(month: datetime) -> datetime:
    return datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)


def _partition(month: datetime) -> str:
    upper = _next(month)
    return (
        f"CREATE TABLE events_{month:%Y_%m} PARTITION OF events "
        f"FOR VALUES FROM ('{month.isoformat()}') TO ('{upper.isoformat()}')"
    )


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE events RENAME TO events_unpartitioned")
    op.execute("ALTER TABLE events_unpartitioned RENAME CONSTRAINT pk_events TO pk_events_old")
    op.execute(
        "ALTER TABLE events_unpartitioned RENAME CONSTRAINT "
        "fk_events_customer_id_customers TO fk_events_old_customer_id"
    )
    for name in OLD_INDEXES:
        op.execute(f"ALTER INDEX {name} RENAME TO {name}_old")
    op.execute("ALTER SEQUENCE events_id_seq OWNED BY NONE")
    op.execute(
        "CREATE TABLE events (LIKE events_unpartitioned INCLUDING DEFAULTS, "
        "CONSTRAINT pk_events PRIMARY KEY (id, occurred_at), "
        "CONSTRAINT fk_events_customer_id_customers FOREIGN KEY (customer_id) "
        "REFERENCES customers (id)) PARTITION BY RANGE (occurred_at)"
    )
    op.execute("ALTER SEQUENCE events_id_seq OWNED BY events.id")
    oldest = bind.execute(text("SELECT min(occurred_at) FROM events_unpartitioned")).scalar()
    now = datetime.now(UTC)
    month = _month(min(oldest, now) if oldest is not None else now)
    last = _month(now)
    for _ in range(MONTHS_AHEAD):
        last = _next(last)
    months = []
    while month <= last:
        months.append(month)
        month = _next(month)
    for month in months:
        op.execute(_partition(month))
    op.execute("CREATE TABLE events_default PARTITION OF events DEFAULT")
    for statement in INDEXES:
        op.execute(statement)
    for month in months:
        op.execute(
            f"INSERT INTO events SELECT * FROM events_unpartitioned "
            f"WHERE occurred_at >= '{month.isoformat()}' "
            f"AND occurred_at < '{_next(month).isoformat()}'"
        )
    op.execute(
        f"INSERT INTO events SELECT * FROM events_unpartitioned "
        f"WHERE occurred_at >= '{_next(months[-1]).isoformat()}'"
    )
    op.execute("DROP TABLE events_unpartitioned")
    for statement in KEY_TRIGGER:
        op.execute(statement)
    op.execute("ANALYZE events")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS event_key_unique ON events")
    op.execute("DROP FUNCTION IF EXISTS c360_event_key_unique()")
    op.execute("ALTER TABLE events RENAME TO events_partitioned")
    op.execute("ALTER TABLE events_partitioned RENAME CONSTRAINT pk_events TO pk_events_part")
    op.execute(
        "ALTER TABLE events_partitioned RENAME CONSTRAINT "
        "fk_events_customer_id_customers TO fk_events_part_customer_id"
    )
    for name in (*OLD_INDEXES, "ix_events_idempotency_key"):
        op.execute(f"ALTER INDEX {name} RENAME TO {name}_part")
    op.execute("ALTER SEQUENCE events_id_seq OWNED BY NONE")
    op.execute(
        "CREATE TABLE events (LIKE events_partitioned INCLUDING DEFAULTS, "
        "CONSTRAINT pk_events PRIMARY KEY (id), "
        "CONSTRAINT uq_events_idempotency_key UNIQUE (idempotency_key), "
        "CONSTRAINT fk_events_customer_id_customers FOREIGN KEY (customer_id) "
        "REFERENCES customers (id))"
    )
    op.execute("ALTER SEQUENCE events_id_seq OWNED BY events.id")
    op.execute("INSERT INTO events SELECT * FROM events_partitioned")
    op.execute("DROP TABLE events_partitioned CASCADE")
    for statement in INDEXES[:4]:
        op.execute(statement)
