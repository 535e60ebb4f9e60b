"""The monthly partitions of `events` on PostgreSQL (migration c14_partitions), created ahead
of time by `serve` (service.periodic). SQLite keeps one table and has nothing to do.

A month's partition is `events_YYYY_MM`, for [first instant of the month, first of the next)
in UTC; `events_default` takes what no month covers (backfills older than the oldest month,
clocks far ahead). Creating a month whose rows already sit in the default partition moves
them: the new month is made as a table of its own, filled from the default partition, and
attached (PostgreSQL refuses to attach a range the default partition still holds rows of).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import Event
from store.sqlfuncs import any_of, on_postgresql

# The idempotency keys of every month (migration c15_event_keys), kept by statement triggers.
EVENT_KEYS = "event_keys"
PARTITION_NAME = re.compile(r"events_(\d{4})_(\d{2})|events_default")


def month_of(instant: datetime) -> datetime:
    instant = instant.astimezone(UTC)
    return datetime(instant.year, instant.month, 1, tzinfo=UTC)


def next_month(month: datetime) -> datetime:
    return datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)


def partition_name(month: datetime) -> str:
    return f"events_{month:%Y_%m}"


def is_partition(table_name: str | None) -> bool:
    """One of events' partitions (its parent, `events`, is not)."""
    return table_name is not None and PARTITION_NAME.fullmatch(table_name) is not None


async def stored_event_keys(session: AsyncSession, keys: list[str]) -> set[str]:
    """Those of `keys` some stored event holds: on PostgreSQL from `event_keys` (one index),
    not from events (an index probe per month and key)."""
    if not on_postgresql(session):
        found = await session.scalars(
            select(Event.idempotency_key).where(any_of(session, Event.idempotency_key, keys))
        )
        return {key for key in found if key is not None}
    # A join on the unnested keys, not `= ANY(:keys)`: a generic plan cached while the table
    # was small kept scanning it whole for every batch once it had grown.
    rows = await session.scalars(
        text(
            f"SELECT k.idempotency_key FROM {EVENT_KEYS} AS k "
            "JOIN unnest(CAST(:keys AS varchar[])) AS given (key) ON k.idempotency_key = given.key"
        ),
        {"keys": keys},
    )
    return set(rows)


@dataclass(frozen=True, slots=True)
class PartitionChanges:
    created: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()


async def months(session: AsyncSession) -> list[datetime]:
    """The months events has partitions for, oldest first."""
    names = await session.scalars(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'events'::regclass"
        )
    )
    found = []
    for name in names:
        match = PARTITION_NAME.fullmatch(name)
        if match and match.group(1):
            found.append(datetime(int(match.group(1)), int(match.group(2)), 1, tzinfo=UTC))
    return sorted(found)


async def ensure_ahead(session: AsyncSession, now: datetime, ahead: int) -> PartitionChanges:
    """Partitions for this month and the `ahead` months after it, those missing created."""
    if not on_postgresql(session):
        return PartitionChanges()
    # Every `serve` worker runs this: one at a time, each seeing what the previous made.
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('c360.event_partitions'))"))
    have = set(await months(session))
    month, created = month_of(now), []
    for _ in range(ahead + 1):
        if month not in have:
            await _create(session, month)
            created.append(partition_name(month))
        month = next_month(month)
    return PartitionChanges(created=tuple(created))


async def _create(session: AsyncSession, month: datetime) -> None:
    name, bounds = partition_name(month), {"low": month, "high": next_month(month)}
    await session.execute(text(f"CREATE TABLE {name} (LIKE events INCLUDING DEFAULTS)"))
    await session.execute(
        text(
            f"WITH moved AS (DELETE FROM events_default WHERE occurred_at >= :low "
            f"AND occurred_at < :high RETURNING *) INSERT INTO {name} SELECT * FROM moved"
        ),
        bounds,
    )
    low, high = month.isoformat(), next_month(month).isoformat()
    await session.execute(
        text(f"ALTER TABLE events ATTACH PARTITION {name} FOR VALUES FROM ('{low}') TO ('{high}')")
    )


async def hold_before(session: AsyncSession, horizon: datetime) -> None:
    """Writes to events older than `horizon` wait until this transaction ends (PostgreSQL: a
    SHARE lock on those months' partitions and on the default partition), so that what is
    rolled up is exactly what `drop_before` drops. SQLite serializes writers already."""
    if not on_postgresql(session):
        return
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('c360.event_partitions'))"))
    for month in await months(session):
        if month < horizon:
            await session.execute(text(f"LOCK TABLE {partition_name(month)} IN SHARE MODE"))
    await session.execute(text("LOCK TABLE events_default IN SHARE MODE"))


async def drop_before(session: AsyncSession, horizon: datetime) -> tuple[str, ...]:
    """Events older than `horizon` gone; the partitions dropped, oldest first. PostgreSQL: each
    month before it detached and dropped, with its idempotency keys (no trigger fires on
    DROP), then the default partition's older rows deleted; SQLite: the rows deleted."""
    dropped = []
    if on_postgresql(session):
        for month in await months(session):
            if month >= horizon:
                continue
            name = partition_name(month)
            await session.execute(text(f"ALTER TABLE events DETACH PARTITION {name}"))
            await session.execute(text(f"DROP TABLE {name}"))
            await _forget_keys(session, month, next_month(month))
            dropped.append(name)
    await session.execute(delete(Event).where(Event.occurred_at < horizon))
    return tuple(dropped)


async def _forget_keys(session: AsyncSession, low: datetime, high: datetime) -> None:
    """The idempotency keys of events in [low, high) leave event_keys, where they would
    otherwise refuse a retry of an event that no longer exists."""
    await session.execute(
        text(f"DELETE FROM {EVENT_KEYS} WHERE occurred_at >= :low AND occurred_at < :high"),
        {"low": low, "high": high},
    )
