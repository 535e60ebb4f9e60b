"""Pins of the condition language's edges that random trees rarely hit, on each backend:
event channel and property filters on one event, order sums net of refunds (the definition
totalSpent uses), stored-segment membership of one segment only, and window edges that
include the instant exactly N days ago."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select

from domain.activity.metrics import recompute
from store.db import Database
from store.models import CustomerMetrics, Event
from tests.integration.condition_helpers import (
    NOW,
    add_customer,
    add_events,
    add_order,
    add_segment,
    ago,
    matching,
)

VIEWED_SPORTS_ON_APP = {
    "event": {
        "type": "view_item",
        "channel": "app",
        "withinDays": 30,
        "count": 3,
        "where": [
            {"property": "category", "op": "EQ", "value": "sports"},
            {"property": "price", "op": "GTE", "value": 10},
        ],
    }
}


async def views(db: Database, customer: uuid.UUID, *rows: tuple[float, str | None, Any]) -> None:
    async with db.write() as s:
        await s.execute(
            insert(Event),
            [
                {"customer_id": customer, "type": "view_item", "occurred_at": ago(days),
                 "channel": channel, "properties": properties}
                for days, channel, properties in rows
            ],
        )  # fmt: skip


async def test_viewed_a_sports_item_on_the_app_three_times_in_30_days(db: Database) -> None:
    sports = {"category": "sports", "price": 12}
    async with db.write() as s:
        fan, web, split, old, cheap = [await add_customer(s, status="ACTIVE") for _ in range(5)]
    await views(db, fan, (1, "app", sports), (2, "app", sports), (29, "app", sports))
    await views(db, web, (1, "app", sports), (2, "app", sports), (3, "web", sports))
    # Each property holds on some event, but never both on the same one.
    await views(
        db,
        split,
        *[(1, "app", {"category": "sports", "price": 5}) for _ in range(3)],
        *[(1, "app", {"category": "books", "price": 50}) for _ in range(3)],
    )
    await views(db, old, (1, "app", sports), (2, "app", sports), (31, "app", sports))
    await views(db, cheap, *[(1, "app", {"category": "sports", "price": "12"}) for _ in range(3)])
    assert await matching(db, VIEWED_SPORTS_ON_APP) == {fan}
    anywhere = {"event": {**VIEWED_SPORTS_ON_APP["event"], "channel": None}}
    assert await matching(db, anywhere) == {fan, web}


async def test_a_property_that_is_missing_or_of_another_type_matches_neq_not_eq(
    db: Database,
) -> None:
    async with db.write() as s:
        missing, text, null = [await add_customer(s, status="ACTIVE") for _ in range(3)]
    await views(db, missing, (1, None, {}))
    await views(db, text, (1, None, {"price": "12"}))
    await views(db, null, (1, None, {"price": None}))

    def leaf(op: str, value: Any = None) -> dict[str, Any]:
        test = {"property": "price", "op": op, **({"value": value} if value is not None else {})}
        return {"event": {"type": "view_item", "where": [test]}}

    assert await matching(db, leaf("EQ", 12)) == set()
    assert await matching(db, leaf("NEQ", 12)) == {missing, text, null}
    assert await matching(db, leaf("EQ", "12")) == {text}
    assert await matching(db, leaf("EXISTS")) == {text}
    assert await matching(db, leaf("NOT_EXISTS")) == {missing, null}


async def test_a_customer_refunded_what_they_paid_is_not_in_sum_at_least_2000(
    db: Database,
) -> None:
    async with db.write() as s:
        refunded = await add_customer(s, status="ACTIVE")
        kept = await add_customer(s, status="ACTIVE")
        await add_order(s, refunded, 2500, ago(10))
        await add_order(s, refunded, 2500, ago(5), status="refunded")
        await add_order(s, kept, 2500, ago(10))
        await recompute(s, [refunded, kept], NOW)
        rows = await s.execute(select(CustomerMetrics.customer_id, CustomerMetrics.total_spent))
        spent = {customer: total for customer, total in rows}
    assert spent[refunded] == 0 and spent[kept] == 2500  # totalSpent, the same definition
    for condition in (
        {"orders": {"measure": "SUM", "op": "GTE", "value": 2000}},
        {"orders": {"measure": "SUM", "op": "GTE", "value": 2000, "withinDays": 30}},
        {"metric": {"name": "MONETARY", "op": "GTE", "value": 2000}},
    ):
        assert await matching(db, condition) == {kept}, condition
    # The refund still leaves the order counted, but its value gone from the average.
    count = {"orders": {"measure": "COUNT", "op": "EQ", "value": 1}}
    assert await matching(db, count) == {refunded, kept}
    average = {"orders": {"measure": "AVERAGE", "op": "EQ", "value": 0}}
    assert await matching(db, average) == {refunded}


async def test_in_a_stored_segment_means_in_that_segment_not_in_any(db: Database) -> None:
    async with db.write() as s:
        ann, bob = await add_customer(s, status="ACTIVE"), await add_customer(s, status="ACTIVE")
        await add_segment(s, "first", {"and": []}, materialized=True, members=(ann,))
        await add_segment(s, "second", {"and": []}, materialized=True, members=(bob,))
    assert await matching(db, {"segment": {"key": "first"}}) == {ann}
    assert await matching(db, {"segment": {"key": "second", "member": False}}) == {ann}


async def test_windows_include_the_instant_exactly_n_days_ago(db: Database) -> None:
    edge, second = ago(7), timedelta(seconds=1)
    async with db.write() as s:
        on_edge = await add_customer(s, status="ACTIVE", stage="purchase", stage_entered_at=edge)
        before = await add_customer(
            s, status="ACTIVE", stage="purchase", stage_entered_at=edge - second
        )
        await add_events(s, on_edge, "page_view", edge)
        await add_events(s, before, "page_view", edge - second)
        await add_order(s, on_edge, 10, edge)
        await add_order(s, before, 10, edge - second)
    for condition in (
        {"event": {"type": "page_view", "withinDays": 7}},
        {"orders": {"measure": "COUNT", "op": "GTE", "value": 1, "withinDays": 7}},
        {"orders": {"measure": "SUM", "op": "GTE", "value": 10, "withinDays": 7}},
        {"stage": {"in": ["purchase"], "enteredWithinDays": 7}},
    ):
        assert await matching(db, condition) == {on_edge}, condition
