"""Per-customer channel summaries: through which channels a customer reached us, first and
last when, with how many events and completed orders (an event's `channel`, an order's
`source`; activity without one has no channel).

The summary is kept, not computed when read: ingest adds the rows it stores in the same
statement batch (`count_new`, an upsert per customer and channel), merges and unmerges rebuild
the two profiles from their rows (`rebuild`), and `c360 recompute-metrics` rebuilds everyone.
Insights over a segment count channels from here: one row per customer and channel, instead
of a scan of every event.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, func, insert, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from domain.activity.metrics import counted_order
from store.db import Database
from store.models import CustomerChannel, Event, EventRollup, Order
from store.sqlfuncs import greatest, least, upsert

__all__ = ["ChannelRecord", "channels_of", "count_new", "rebuild", "rebuild_all"]

COMPLETED = "completed"  # an order row that counts (metrics.counted_order, in SQL)


@dataclass(frozen=True, slots=True)
class ChannelRecord:
    customer_id: uuid.UUID
    channel: str
    first_seen_at: datetime
    last_seen_at: datetime
    events: int
    orders: int


def _tally(
    events: Iterable[dict[str, Any]], orders: Iterable[dict[str, Any]]
) -> list[dict[str, Any]]:
    found: dict[tuple[uuid.UUID, str], dict[str, Any]] = {}

    def add(customer_id: uuid.UUID, channel: str | None, at: datetime, kind: str, n: int) -> None:
        if not channel:
            return
        row = found.setdefault(
            (customer_id, channel),
            {"customer_id": customer_id, "channel": channel, "first_seen_at": at,
             "last_seen_at": at, "events": 0, "orders": 0},
        )  # fmt: skip
        row["first_seen_at"] = min(row["first_seen_at"], at)
        row["last_seen_at"] = max(row["last_seen_at"], at)
        row[kind] += n

    for event in events:
        add(event["customer_id"], event["channel"], event["occurred_at"], "events", 1)
    for order in orders:
        counted = int(order["status"] == COMPLETED)
        add(order["customer_id"], order["source"], order["placed_at"], "orders", counted)
    return list(found.values())


async def count_new(
    session: AsyncSession,
    events: Sequence[dict[str, Any]] = (),
    orders: Sequence[dict[str, Any]] = (),
) -> None:
    """Add freshly stored event and order rows to their customers' summaries."""
    # In key order: two writes on the same customers lock their rows in the same order.
    rows = sorted(_tally(events, orders), key=lambda row: (str(row["customer_id"]), row["channel"]))
    if not rows:
        return
    # Rows as parameters, not as a VALUES list in the statement: compiled once and cached.
    statement = upsert(session, CustomerChannel)
    new, table = statement.excluded, CustomerChannel
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[table.customer_id, table.channel],
            set_={
                "first_seen_at": least(session, table.first_seen_at, new.first_seen_at),
                "last_seen_at": greatest(session, table.last_seen_at, new.last_seen_at),
                "events": table.events + new.events,
                "orders": table.orders + new.orders,
            },
        ),
        rows,
    )


async def rebuild(session: AsyncSession, customer_ids: Sequence[uuid.UUID] | None) -> None:
    """The summaries of these customers (None: everyone) again from their events and orders:
    after a merge or an unmerge moved rows between two profiles."""
    if customer_ids is not None and not customer_ids:
        return
    from_events = select(
        Event.customer_id.label("customer_id"),
        Event.channel.label("channel"),
        func.min(Event.occurred_at).label("first_seen_at"),
        func.max(Event.occurred_at).label("last_seen_at"),
        func.count().label("events"),
        literal(0).label("orders"),
    ).where(Event.channel.is_not(None), Event.channel != "")
    from_orders = select(
        Order.customer_id,
        Order.source,
        func.min(Order.placed_at),
        func.max(Order.placed_at),
        literal(0),
        func.count(case((counted_order(), 1))),
    ).where(Order.source != "")
    # Retired months count too (domain.activity.retention): their rollups keep the tallies.
    from_rollups = select(
        EventRollup.customer_id,
        EventRollup.channel,
        func.min(EventRollup.first_at),
        func.max(EventRollup.last_at),
        func.sum(EventRollup.events),
        literal(0),
    ).where(EventRollup.channel.is_not(None), EventRollup.channel != "")
    cleared = delete(CustomerChannel)
    if customer_ids is not None:
        from_events = from_events.where(Event.customer_id.in_(customer_ids))
        from_orders = from_orders.where(Order.customer_id.in_(customer_ids))
        from_rollups = from_rollups.where(EventRollup.customer_id.in_(customer_ids))
        cleared = cleared.where(CustomerChannel.customer_id.in_(customer_ids))
    both = union_all(
        from_events.group_by(Event.customer_id, Event.channel),
        from_orders.group_by(Order.customer_id, Order.source),
        from_rollups.group_by(EventRollup.customer_id, EventRollup.channel),
    ).subquery()
    summed = select(
        both.c.customer_id,
        both.c.channel,
        func.min(both.c.first_seen_at),
        func.max(both.c.last_seen_at),
        func.sum(both.c.events),
        func.sum(both.c.orders),
    ).group_by(both.c.customer_id, both.c.channel)
    await session.execute(cleared)
    columns = ["customer_id", "channel", "first_seen_at", "last_seen_at", "events", "orders"]
    await session.execute(insert(CustomerChannel).from_select(columns, summed))


async def rebuild_all(db: Database) -> None:
    """Every summary from the events and orders (`c360 recompute-metrics`)."""

    async def work(session: AsyncSession) -> None:
        await rebuild(session, None)

    await db.transact(work)


async def channels_of(
    db: Database, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[ChannelRecord]]:
    """Each customer's channels, most recently seen first."""
    statement = (
        select(*(getattr(CustomerChannel, name) for name in ChannelRecord.__slots__))
        .where(CustomerChannel.customer_id.in_(customer_ids))
        .order_by(CustomerChannel.last_seen_at.desc(), CustomerChannel.channel)
    )
    found: dict[uuid.UUID, list[ChannelRecord]] = {}
    async with db.read() as session:
        for row in await session.execute(statement):
            found.setdefault(row.customer_id, []).append(ChannelRecord(*row))
    return found
