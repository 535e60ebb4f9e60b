"""Per-customer channel summaries: kept at ingest, moved by merges and unmerges, and always
equal to a rebuild from the events and orders."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from domain.activity import channels
from domain.activity.ingest import EventItem
from domain.identity import merging
from store.db import Database
from store.models import Customer
from tests.integration.test_activity import ago, order, record, track


def summary(found: dict[uuid.UUID, list[channels.ChannelRecord]]) -> dict[Any, Any]:
    return {
        (r.customer_id, r.channel): (r.first_seen_at, r.last_seen_at, r.events, r.orders)
        for records in found.values()
        for r in records
    }


async def everyone(db: Database) -> dict[Any, Any]:
    async with db.read() as session:
        ids = list((await session.scalars(select(Customer.id))).all())
    return summary(await channels.channels_of(db, ids))


async def rebuilt(db: Database) -> dict[Any, Any]:
    await channels.rebuild_all(db)
    return await everyone(db)


def event(who: str, channel: str | None, days: float) -> EventItem:
    return EventItem(("email", who), "page_view", channel, ago(days))


async def test_ingest_keeps_first_and_last_seen_events_and_completed_orders_per_channel(
    db: Database,
) -> None:
    first = await track(db, event("a@x.com", "app", 5), event("a@x.com", "app", 3))
    customer = first.customer_ids[0]
    await track(
        db, event("a@x.com", "web", 4), event("a@x.com", "app", 1), event("a@x.com", None, 0)
    )
    await record(
        db,
        order("a@x.com", "o-1", "100", 2, source="app"),
        order("a@x.com", "o-2", "50", 6, source="app", status="refunded"),
        order("a@x.com", "o-3", "70", 2),  # no source: no channel
    )
    found = await channels.channels_of(db, [customer])
    assert [
        (r.channel, r.first_seen_at, r.last_seen_at, r.events, r.orders) for r in found[customer]
    ] == [
        ("app", ago(6), ago(1), 3, 1),
        ("web", ago(4), ago(4), 1, 0),
    ]
    assert await everyone(db) == await rebuilt(db)


async def test_a_merge_adds_the_channels_up_and_an_unmerge_splits_them_again(
    db: Database,
) -> None:
    a = (await track(db, event("a@x.com", "app", 5), event("a@x.com", "web", 2))).customer_ids[0]
    b = (await track(db, event("b@x.com", "app", 1), event("b@x.com", "store", 3))).customer_ids[0]
    before = await everyone(db)
    merge = await merging.merge_customers(db, a, b, None, "admin:t")
    merged = await everyone(db)
    assert merged == {
        (a, "app"): (ago(5), ago(1), 2, 0),
        (a, "web"): (ago(2), ago(2), 1, 0),
        (a, "store"): (ago(3), ago(3), 1, 0),
    }
    await merging.unmerge(db, merge.id, "admin:t")
    assert await everyone(db) == before == await rebuilt(db)


async def test_events_landing_on_the_same_customer_and_channel_in_one_batch_are_one_row(
    db: Database,
) -> None:
    items = [event("a@x.com", "app", day) for day in range(10)]
    customer = (await track(db, *items)).customer_ids[0]
    assert summary(await channels.channels_of(db, [customer])) == {
        (customer, "app"): (ago(9), ago(0), 10, 0)
    }
