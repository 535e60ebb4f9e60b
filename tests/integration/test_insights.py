"""Segment insights against a brute-force count of the same rows: for everyone, a condition,
a materialized segment and an empty one, on both backends."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from domain.activity import metrics
from domain.activity.ingest import EventItem
from domain.errors import InvalidInput
from domain.segments import definitions as segments
from domain.segments.insights import Bucket, insights
from store.db import Database
from store.models import Customer, CustomerChannel, CustomerMetrics
from tests.builders import make_customer
from tests.integration.test_activity import ago, order, record, track

CHINA = {"attribute": {"field": "country", "op": "EQ", "value": "CN"}}
PEOPLE = [  # email, country, city, stages, [(channel, amount, status)], event channels
    ("a@x.com", "CN", "Shanghai", ["awareness", "consideration", "purchase"],
     [("app", "120", "completed"), ("web", "80", "completed")], ["app", "wechat"]),
    ("b@x.com", "CN", "Beijing", ["awareness"], [], ["web"]),
    ("c@x.com", "CN", "Shanghai", ["awareness", "consideration", "purchase"],
     [("store", "300", "completed"), ("store", "300", "refunded")], []),
    ("d@x.com", "US", None, [], [("web", "45.5", "completed")], ["web", "web"]),
    ("e@x.com", "CN", None, ["awareness"], [], []),
]  # fmt: skip


async def population(db: Database) -> None:
    for n, (email, country, city, stages, orders, events) in enumerate(PEOPLE):
        await make_customer(
            db, identities=[("email", email)], country=country, city=city, stages=stages
        )
        await record(
            db,
            *(
                order(email, f"{email}-{i}", amount, n + i, source=source, status=status)
                for i, (source, amount, status) in enumerate(orders)
            ),
        )
        await track(db, *(EventItem(("email", email), "page_view", c, ago(n)) for c in events))
    async with db.write() as session:
        await metrics.refresh_rfm(session)


async def oracle(db: Database, country: str | None) -> dict[str, Any]:
    """The same figures, counted in Python from the rows."""
    async with db.read() as session:
        people = (
            await session.execute(
                select(
                    Customer.id,
                    Customer.country,
                    Customer.stage,
                    Customer.city,
                    CustomerMetrics.rfm_segment,
                    CustomerMetrics.total_spent,
                    CustomerMetrics.order_count,
                ).outerjoin(CustomerMetrics, CustomerMetrics.customer_id == Customer.id)
            )
        ).all()
        channels = (
            await session.execute(select(CustomerChannel.customer_id, CustomerChannel.channel))
        ).all()
    chosen = {p.id: p for p in people if country is None or p.country == country}
    sums: dict[str, dict[Any, list[Any]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))

    def add(dimension: str, value: Any, person: Any) -> None:
        total = sums[dimension][value]
        total[0] += 1
        total[1] += person.total_spent or 0
        total[2] += person.order_count or 0

    for person in chosen.values():
        add("all", None, person)
        add("stages", person.stage, person)
        add("rfm_segments", person.rfm_segment, person)
        add("cities", person.city, person)
    for customer_id, channel in channels:
        if customer_id in chosen:
            add("channels", channel, chosen[customer_id])
    return {
        dimension: {value: (m, Decimal(s), o) for value, (m, s, o) in values.items()}
        for dimension, values in sums.items()
    }


def figures(buckets: list[Bucket]) -> dict[Any, tuple[int, Decimal, int]]:
    return {b.value: (b.members, b.total_spent, b.orders) for b in buckets}


@pytest.mark.parametrize("country", [None, "CN"])
async def test_insights_count_what_a_python_count_of_the_rows_finds(
    db: Database, country: str | None
) -> None:
    await population(db)
    found = await insights(db, where=CHINA if country else None)
    expected = await oracle(db, country)
    assert figures([found.everyone]) == expected["all"]
    for dimension in ("stages", "rfm_segments", "channels", "cities"):
        assert figures(getattr(found, dimension)) == expected[dimension], dimension
    members = [b.members for b in found.stages]
    assert members == sorted(members, reverse=True)


async def test_insights_of_a_materialized_segment_and_of_an_empty_one(db: Database) -> None:
    await population(db)
    china = await segments.define_segment(
        db, segments.SegmentDraft("china", "China", None, CHINA, materialized=True)
    )
    found = await insights(db, segment_id=china.id)
    assert (found.everyone.members, found.everyone.total_spent) == (4, Decimal("200.00"))
    assert found.everyone.average_order_value == Decimal("66.67")  # net 200 over 3 orders
    assert figures(found.channels) == {
        "app": (1, Decimal("200.00"), 2),
        "web": (2, Decimal("200.00"), 2),
        "wechat": (1, Decimal("200.00"), 2),
        "store": (1, Decimal("0.00"), 1),
    }
    nobody = {"attribute": {"field": "country", "op": "EQ", "value": "FR"}}
    empty = await insights(db, where=nobody, segment_id=china.id)
    assert empty.everyone == Bucket(None, 0, Decimal("0.00"), 0)
    assert empty.everyone.average_order_value is None
    assert (empty.stages, empty.channels, empty.cities) == ([], [], [])


async def test_a_bad_condition_is_refused_with_the_path_of_the_argument(db: Database) -> None:
    with pytest.raises(InvalidInput) as refused:
        await insights(db, where={"tag": {"key": "nope"}})
    assert refused.value.field[0] == "where"
