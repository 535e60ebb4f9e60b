"""Retention of events (C360_EVENT_RETENTION_MONTHS): the months before the retained ones are
rolled up into event_rollups and dropped, in one transaction, by whoever makes the months
ahead (`serve`'s periodic work and `c360 work`).

With N months retained, the horizon is the first instant of the month N months before this
one: this month and the N before it are kept whole. A retired month keeps, per customer, type
and channel, how many events it had and the first and last (`EventRollup`); the readers that
count or date events over all time add the rollups in (last activity, channel summaries,
event conditions with neither a window nor a property filter), so they answer as before.
Forgotten: the events themselves, their properties and idempotency keys; a condition with a
window or a property filter, and the event history, see only the retained events. Ingest
refuses events older than the horizon (`OUTSIDE_RETENTION`): they would be dropped at the
next sweep.

PostgreSQL drops each retired month's partition (store.partitions); SQLite, which has one
table, deletes the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.errors import DomainError
from store import partitions
from store.models import Event, EventRollup
from store.types import UTCDateTime

# The other end of the span events live in: ingest refuses one more than this after the time it
# is received, so a window can be bounded above at `now + MAX_FUTURE` without losing any
# (and PostgreSQL then skips the months ahead and the default partition).
MAX_FUTURE = timedelta(days=1)
ROLLUP_COLUMNS = ["customer_id", "type", "channel", "month", "events", "first_at", "last_at"]


def horizon(now: datetime, months: int) -> datetime:
    """The oldest instant kept when `months` months before this one are retained."""
    current = partitions.month_of(now)
    index = current.year * 12 + current.month - 1 - months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def refuse_retired(
    rows: Sequence[dict[str, Any] | DomainError], now: datetime, months: int | None
) -> list[dict[str, Any] | DomainError]:
    """Checked events, those older than the horizon replaced by an OUTSIDE_RETENTION error
    (they would land in a month already retired, or about to be)."""
    if months is None:
        return list(rows)
    oldest = horizon(now, months)
    refusal = DomainError(
        f"occurredAt is before {oldest.isoformat()}: events older than "
        f"{months} months before this one are not kept",
        field=["occurredAt"],
        code="OUTSIDE_RETENTION",
    )
    return [
        refusal if isinstance(row, dict) and row["occurred_at"] < oldest else row for row in rows
    ]


async def retire(session: AsyncSession, before: datetime) -> tuple[str, ...]:
    """Roll up every event older than `before`, month by month, then drop them (and their
    partitions, PostgreSQL); the partitions dropped. Writes to those months wait meanwhile."""
    await partitions.hold_before(session, before)
    oldest = await session.scalar(
        select(func.min(Event.occurred_at)).where(Event.occurred_at < before)
    )
    month = partitions.month_of(oldest) if oldest is not None else before
    while month < before:
        end = partitions.next_month(month)
        await session.execute(
            insert(EventRollup).from_select(ROLLUP_COLUMNS, _rolled_up(month, end))
        )
        month = end
    return await partitions.drop_before(session, before)


def _rolled_up(month: datetime, end: datetime) -> Any:
    return (
        select(
            Event.customer_id,
            Event.type,
            Event.channel,
            literal(month, UTCDateTime()),
            func.count(),
            func.min(Event.occurred_at),
            func.max(Event.occurred_at),
        )
        .where(and_(Event.occurred_at >= month, Event.occurred_at < end))
        .group_by(Event.customer_id, Event.type, Event.channel)
    )


async def keep_months(
    session: AsyncSession, now: datetime, ahead: int, retained: int | None
) -> partitions.PartitionChanges:
    """The months ahead made and, with a retention, the months before it retired."""
    made = await partitions.ensure_ahead(session, now, ahead)
    if retained is None:
        return made
    return partitions.PartitionChanges(made.created, await retire(session, horizon(now, retained)))
