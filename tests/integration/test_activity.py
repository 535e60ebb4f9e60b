"""trackEvents / recordOrders and the metrics derived from them, on a real database."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from domain.activity import ingest as activity
from domain.activity import metrics
from domain.activity.ingest import EventItem, OrderItem
from domain.history import HistoryQuery
from domain.identity import merging
from store.models import CustomerMetrics, Event, Order
from tests.integration.identity_helpers import row_counts

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
RATES = {"CNY": Decimal(1), "USD": Decimal("7.10")}


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


async def track(db, *items: EventItem) -> activity.IngestOutcome:
    return await activity.track_events(db, items, region="CN", actor="test", now=NOW)


async def record(db, *items: OrderItem) -> activity.IngestOutcome:
    return await activity.record_orders(db, items, region="CN", actor="test", rates=RATES, now=NOW)


def order(who: str, external_id: str, amount: str, days: float, **kw) -> OrderItem:
    return OrderItem(
        ("email", who),
        external_id,
        Decimal(amount),
        kw.pop("currency", "CNY"),
        placed_at=ago(days),
        **kw,
    )


async def test_an_event_for_an_unknown_identity_creates_the_profile(db) -> None:
    outcome = await track(db, EventItem(("phone", "13800138000"), "page_view", "web", ago(1)))
    assert (outcome.accepted, outcome.duplicates, outcome.errors) == (1, 0, ())
    assert (await row_counts(db))["customers"] == 1


async def test_event_replays_are_duplicates_not_second_rows(db) -> None:
    item = EventItem(("email", "e@x.com"), "add_to_cart", "app", ago(2), {"sku": "A"}, "evt-1")
    first = await track(db, item, item)
    assert (first.accepted, first.duplicates) == (1, 1)
    again = await track(db, item)
    assert (again.accepted, again.duplicates) == (0, 1)
    assert (await row_counts(db))["events"] == 1


async def test_order_replays_are_duplicates_per_source(db) -> None:
    assert (await record(db, order("o@x.com", "A-1", "10", 3))).accepted == 1
    replay = await record(
        db, order("o@x.com", "A-1", "10", 3), order("o@x.com", "A-1", "10", 3, source="pos")
    )
    assert (replay.accepted, replay.duplicates) == (1, 1)
    assert (await row_counts(db))["orders"] == 2


async def test_bad_items_are_refused_by_index_and_the_rest_lands(db) -> None:
    outcome = await track(
        db,
        EventItem(("email", "ok@x.com"), "page_view", occurred_at=ago(1)),
        EventItem(("email", "ok@x.com"), "page_view", occurred_at=NOW + timedelta(days=2)),
        EventItem(("email", "not-an-email"), "page_view"),
        EventItem(("email", "ok@x.com"), "no spaces allowed"),
        EventItem(("email", "ok@x.com"), "login", properties=["not", "an", "object"]),
    )
    assert outcome.accepted == 1
    assert [(e.code, e.field) for e in outcome.errors] == [
        ("INVALID_INPUT", ("events", "1", "occurredAt")),
        ("INVALID_IDENTITY", ("events", "2", "customer", "value")),
        ("INVALID_INPUT", ("events", "3", "type")),
        ("INVALID_INPUT", ("events", "4", "properties")),
    ]
    assert (await row_counts(db))["customers"] == 1
    orders = await record(
        db,
        order("ok@x.com", "fine", "5", 1),
        order("ok@x.com", "zero", "0", 1),
        order("ok@x.com", "cur", "5", 1, currency="XYZ"),
        order("ok@x.com", "cur2", "5", 1, currency="usd"),
        order("ok@x.com", "st", "5", 1, status="shipped?"),
        order("ok@x.com", "refund", "-5", 1, status="refunded"),
    )
    assert orders.accepted == 2
    assert [(e.code, e.field[1:]) for e in orders.errors] == [
        ("INVALID_INPUT", ("1", "amount")),
        ("UNKNOWN_CURRENCY", ("2", "currency")),
        ("INVALID_INPUT", ("3", "currency")),
        ("INVALID_INPUT", ("4", "status")),
    ]


async def test_a_batch_whose_items_are_all_bad_writes_nothing(db) -> None:
    before = await row_counts(db)
    outcome = await record(db, order("x@x.com", "bad", "-1", 1), order("null", "x", "1", 1))
    assert outcome.accepted == 0 and [e.code for e in outcome.errors] == [
        "INVALID_INPUT",
        "BLOCKED_IDENTITY",
    ]
    assert await row_counts(db) == before


async def test_other_currencies_are_totalled_in_the_base_currency(db) -> None:
    outcome = await record(db, order("fx@x.com", "usd-1", "10.00", 5, currency="USD"))
    async with db.read() as session:
        row = await session.scalar(select(Order))
    assert (row.amount, row.currency, row.base_amount) == (
        Decimal("10.00"),
        "USD",
        Decimal("71.00"),
    )
    found = await metrics.metrics_of(db, outcome.customer_ids)
    assert found[outcome.customer_ids[0]].total_spent == Decimal("71.00")


def independent_metrics(orders: list[Order], events: list[Event]) -> dict[str, object]:
    completed = [o for o in orders if o.status == "completed"]
    spent = sum((o.base_amount for o in completed), Decimal(0)) - sum(
        (abs(o.base_amount) for o in orders if o.status == "refunded"), Decimal(0)
    )
    times = [o.placed_at for o in orders] + [e.occurred_at for e in events]
    return {
        "order_count": len(completed),
        "total_spent": spent,
        "first_order_at": min((o.placed_at for o in completed), default=None),
        "last_order_at": max((o.placed_at for o in completed), default=None),
        "last_activity_at": max(times, default=None),
    }


async def stored_vs_independent(db) -> None:
    async with db.read() as session:
        orders = (await session.scalars(select(Order))).all()
        events = (await session.scalars(select(Event))).all()
        stored = (await session.scalars(select(CustomerMetrics))).all()
    for row in stored:
        mine = independent_metrics(
            [o for o in orders if o.customer_id == row.customer_id],
            [e for e in events if e.customer_id == row.customer_id],
        )
        assert {k: getattr(row, k) for k in mine} == mine, row.customer_id


async def test_metrics_after_orders_refunds_and_a_merge_match_an_independent_count(db) -> None:
    a = (
        await record(db, order("a@x.com", "a1", "100", 40), order("a@x.com", "a2", "50", 20))
    ).customer_ids[0]
    await record(
        db,
        order("a@x.com", "a-r", "30", 10, status="refunded"),
        order("a@x.com", "a-p", "9", 5, status="pending"),
    )
    b = (await record(db, order("b@x.com", "b1", "70", 60))).customer_ids[0]
    await track(db, EventItem(("email", "b@x.com"), "login", occurred_at=ago(1)))
    await stored_vs_independent(db)
    merge = await merging.merge_customers(db, a, b, None, "test")
    await stored_vs_independent(db)
    survivor = (await metrics.metrics_of(db, [a]))[a]
    assert (survivor.order_count, survivor.total_spent) == (3, Decimal("190.00"))
    await merging.unmerge(db, merge.id, "test")
    await stored_vs_independent(db)
    assert (await metrics.metrics_of(db, [b]))[b].order_count == 1


async def test_recompute_all_gives_the_values_kept_on_write(db) -> None:
    for i in range(6):
        await record(
            db,
            *(
                order(f"c{i}@x.com", f"c{i}-{k}", str(10 * (i + 1)), 30 * k + i)
                for k in range(i + 1)
            ),
        )
    async with db.read() as session:
        before = {
            r.customer_id: (
                r.order_count,
                r.total_spent,
                r.last_order_at,
                r.clv,
                round(r.churn_risk, 9),
            )
            for r in (await session.scalars(select(CustomerMetrics))).all()
        }
        await session.execute(CustomerMetrics.__table__.delete())
    await metrics.recompute_all(db, NOW)
    async with db.read() as session:
        after = {
            r.customer_id: (
                r.order_count,
                r.total_spent,
                r.last_order_at,
                r.clv,
                round(r.churn_risk, 9),
            )
            for r in (await session.scalars(select(CustomerMetrics))).all()
        }
    assert after == before


async def test_rfm_quintiles_and_segments_match_a_hand_computed_table(db) -> None:
    # Ten buyers: buyer i ordered i+1 times, last order (10 - i) * 10 days ago, 100 per order.
    for i in range(10):
        await record(
            db,
            *(
                order(f"r{i}@x.com", f"r{i}-{k}", "100", (10 - i) * 10 + k * 0.25)
                for k in range(i + 1)
            ),
        )
    await track(
        db, EventItem(("email", "browser@x.com"), "page_view", occurred_at=ago(1))
    )  # no orders
    scored = await metrics.recompute_all(db, NOW)
    assert scored == 10
    # Nearest-rank boundaries over n=10 are the 2nd, 4th, 6th and 8th smallest values:
    # recency days 20/40/60/80 (buyer 9 is most recent), frequency 2/4/6/8, monetary 200/400/600/800.
    expected = {
        0: (1, 1, 1, "Lost"),
        1: (1, 1, 1, "Lost"),
        2: (2, 2, 2, "Hibernating"),
        3: (2, 2, 2, "Hibernating"),
        4: (3, 3, 3, "Need Attention"),
        5: (3, 3, 3, "Need Attention"),
        6: (4, 4, 4, "Champions"),
        7: (4, 4, 4, "Champions"),
        8: (5, 5, 5, "Champions"),
        9: (5, 5, 5, "Champions"),
    }
    async with db.read() as session:
        from store.models import Identity

        rows = (
            await session.execute(
                select(
                    Identity.value,
                    CustomerMetrics.rfm_recency,
                    CustomerMetrics.rfm_frequency,
                    CustomerMetrics.rfm_monetary,
                    CustomerMetrics.rfm_segment,
                ).join(CustomerMetrics, CustomerMetrics.customer_id == Identity.customer_id)
            )
        ).all()
    got = {int(v[1:].split("@")[0]): tuple(r) for v, *r in rows if v.startswith("r")}
    assert got == expected
    assert [r for v, *r in rows if v.startswith("browser")] == [[None, None, None, None]]


def test_rfm_segments_cover_every_score_exactly_once() -> None:
    for r, f, m in itertools.product(range(1, 6), repeat=3):
        names = [name for name, rule in metrics.RFM_SEGMENTS if rule(r, f, m)]
        assert names, (r, f, m)
        assert metrics.rfm_segment(r, f, m) == names[0]
    assert {metrics.rfm_segment(*s) for s in itertools.product(range(1, 6), repeat=3)} == {
        name for name, _ in metrics.RFM_SEGMENTS
    }


async def test_churn_risk_rises_with_recency_and_clv_with_spend(db) -> None:
    await record(
        db, order("recent@x.com", "r1", "100", 100), order("recent@x.com", "r2", "100", 10)
    )
    await record(db, order("stale@x.com", "s1", "100", 190), order("stale@x.com", "s2", "100", 100))
    await record(db, order("big@x.com", "b1", "500", 100), order("big@x.com", "b2", "500", 10))
    async with db.read() as session:
        from store.models import Identity

        found = {
            v: (c, clv)
            for v, c, clv in (
                await session.execute(
                    select(Identity.value, CustomerMetrics.churn_risk, CustomerMetrics.clv).join(
                        CustomerMetrics, CustomerMetrics.customer_id == Identity.customer_id
                    )
                )
            ).all()
        }
    assert 0 <= found["recent@x.com"][0] < found["stale@x.com"][0] < 1
    # 100 days since the last order against a usual gap of 90: r = 10/9, risk = r / (r + 2)
    assert found["stale@x.com"][0] == pytest.approx(10 / 28)
    assert found["big@x.com"][1] > found["recent@x.com"][1] > found["stale@x.com"][1]


async def test_events_and_orders_page_newest_first(db) -> None:
    items = [EventItem(("email", "p@x.com"), "view", occurred_at=ago(d)) for d in (5, 1, 3, 2, 4)]
    customer = (await track(db, *items)).customer_ids[0]
    seen, after = [], None
    while True:
        page = (await activity.event_pages(db, [HistoryQuery(customer, 2, after)]))[0]
        seen += [(NOW - e.occurred_at).days for e in page.items]
        if not page.has_next:
            break
        after = page.cursors[-1]
    assert seen == [1, 2, 3, 4, 5]
    typed = (await activity.event_pages(db, [HistoryQuery(customer, 10, None, "other")]))[0]
    assert typed.items == []
