"""Pins of the condition compiler's edges that mutation testing (mutmut on
domain/conditions/sql.py) found no test holding, each stated as who matches, on each backend:
a list filter and a segment combined when only one of them reads customer_metrics, whole-day
recency at its edges, strict and inclusive order on a boundary value, a window kept under NEQ,
text ordered by its bytes, and property comparisons other than EQ on an event."""

from __future__ import annotations

import operator
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import insert

from domain import profile
from domain.pagination import PageRequest
from domain.segments import definitions as segments
from store.db import Database
from store.models import Event
from tests.integration.condition_helpers import (
    NOW,
    add_customer,
    add_events,
    add_order,
    add_segment,
    ago,
    matching,
    set_metrics,
)

CHINA = {"attribute": {"field": "country", "op": "EQ", "value": "CN"}}
FREQUENT = {"metric": {"name": "FREQUENCY", "op": "GTE", "value": 2}}


async def filtered(db: Database, where: Any, segment_id: uuid.UUID) -> set[uuid.UUID]:
    """`customers(where:, segment:)`: the ids listed, checked against the count."""
    matches = await segments.customer_filter(db, where, segment_id, NOW)
    page = await profile.list_customers(db, segments.MEMBER_ORDER, PageRequest(first=10), matches)
    ids = [record.id for record in page.items]
    assert len(ids) == await profile.count_customers(db, matches)
    return set(ids)


async def test_a_list_filter_and_a_segment_combine_when_only_one_reads_metrics(
    db: Database,
) -> None:
    async with db.write() as s:
        loyal = await add_customer(s, country="CN")
        new = await add_customer(s, country="CN")  # no metrics row: FREQUENCY 0
        abroad = await add_customer(s, country="US")
        await set_metrics(s, loyal, order_count=3, total_spent=300)
        await set_metrics(s, abroad, order_count=5, total_spent=500)
        everyone = await add_segment(
            s, "everyone", {"and": []}, materialized=True, members=(loyal, new, abroad)
        )
        frequent = await add_segment(s, "frequent", FREQUENT)
    # The metric in `where`, stored members for the segment; then the other way round.
    assert await filtered(db, FREQUENT, everyone) == {loyal, abroad}
    assert await filtered(db, CHINA, frequent) == {loyal}
    assert await filtered(db, FREQUENT, frequent) == {loyal, abroad}


def metric(name: str, op: str, value: Any) -> dict[str, Any]:
    return {"metric": {"name": name, "op": op, "value": value}}


async def test_metrics_of_a_missing_row_and_of_null_columns(db: Database) -> None:
    """No customer_metrics row: FREQUENCY and MONETARY read 0, the rest no value; a row whose
    CLV, churn risk and RFM segment are NULL has no value either (NEQ and NOT_IN match)."""
    async with db.write() as s:
        ids = {name: await add_customer(s) for name in ("missing", "empty", "valued")}
        await set_metrics(s, ids["empty"], order_count=0, total_spent=0)
        await set_metrics(
            s, ids["valued"], order_count=2, total_spent=150.5, clv=200, churn_risk=0.4,
            rfm_segment="Champions",
        )  # fmt: skip
    by_id = {v: k for k, v in ids.items()}
    unvalued = {"missing", "empty"}
    table = [
        (metric("FREQUENCY", "EQ", 0), unvalued),
        (metric("FREQUENCY", "LT", 1), unvalued),
        (metric("FREQUENCY", "NEQ", 0), {"valued"}),
        (metric("FREQUENCY", "IN", [0, 2]), {*ids}),
        (metric("FREQUENCY", "NOT_IN", [0]), {"valued"}),
        (metric("MONETARY", "EQ", 0), unvalued),
        (metric("MONETARY", "LTE", 0), unvalued),
        (metric("MONETARY", "EQ", 150.5), {"valued"}),
        (metric("MONETARY", "NEQ", 150.5), unvalued),
        (metric("MONETARY", "BETWEEN", [150.5, 151]), {"valued"}),
        (metric("CLV", "EQ", 200), {"valued"}),
        (metric("CLV", "NEQ", 200), unvalued),
        (metric("CLV", "NOT_IN", [200]), unvalued),
        (metric("CLV", "GTE", 0), {"valued"}),
        (metric("CLV", "LT", 1000), {"valued"}),
        (metric("CHURN_RISK", "NEQ", 0.4), unvalued),
        (metric("CHURN_RISK", "LTE", 1), {"valued"}),
        (metric("RFM_SEGMENT", "EQ", "Champions"), {"valued"}),
        (metric("RFM_SEGMENT", "NOT_IN", ["Champions"]), unvalued),
    ]
    found = {repr(c): {by_id[i] for i in await matching(db, c)} for c, _ in table}
    assert found == {repr(c): expected for c, expected in table}


def recency(op: str, value: Any) -> dict[str, Any]:
    return {"metric": {"name": "RECENCY_DAYS", "op": op, "value": value}}


async def test_recency_is_whole_days_at_each_edge(db: Database) -> None:
    days = {"hours": 0.5, "one": 1, "nine": 9, "fifteen": 15, "sixteen": 16, "ahead": -2}
    async with db.write() as s:
        ids = {name: await add_customer(s) for name in [*days, "unknown"]}
        for name, d in days.items():
            await set_metrics(s, ids[name], last_activity_at=ago(d))
    by_id = {v: k for k, v in ids.items()}
    # Activity 12 hours ago, or in the future (a clock skew), is recency 0.
    table = [
        (recency("GTE", 1), {"one", "nine", "fifteen", "sixteen"}),
        (recency("GT", 0), {"one", "nine", "fifteen", "sixteen"}),
        (recency("LTE", 0), {"hours", "ahead"}),
        (recency("LT", 1), {"hours", "ahead"}),
        (recency("LT", 0), set()),
        (recency("GT", 15), {"sixteen"}),
        (recency("LT", 10), {"hours", "ahead", "one", "nine"}),
        (recency("GTE", 0), {*days}),
        (recency("NEQ", 0), {"one", "nine", "fifteen", "sixteen", "unknown"}),
    ]
    found = {repr(c): {by_id[i] for i in await matching(db, c)} for c, _ in table}
    assert found == {repr(c): expected for c, expected in table}


async def test_strict_and_inclusive_order_on_the_boundary_value(db: Database) -> None:
    async with db.write() as s:
        ages = {age: await add_customer(s, attributes={"age": age}) for age in (30, 31, 32)}

    def age(op: str, value: int) -> dict[str, Any]:
        return {"attribute": {"field": "attributes.age", "op": op, "value": value}}

    assert await matching(db, age("LT", 31)) == {ages[30]}
    assert await matching(db, age("LTE", 31)) == {ages[30], ages[31]}
    assert await matching(db, age("GT", 31)) == {ages[32]}
    assert await matching(db, age("GTE", 31)) == {ages[31], ages[32]}


async def test_a_window_still_applies_under_neq(db: Database) -> None:
    async with db.write() as s:
        recent_and_old, recent_only = await add_customer(s), await add_customer(s)
        for customer in (recent_and_old, recent_only):
            await add_order(s, customer, 100, ago(5))
        await add_order(s, recent_and_old, 50, ago(60))
    for measure in ("SUM", "AVERAGE"):
        in_30_days = {"measure": measure, "op": "NEQ", "value": 100, "withinDays": 30}
        assert await matching(db, {"orders": in_30_days}) == set(), measure
        ever = {"measure": measure, "op": "NEQ", "value": 100}
        assert await matching(db, {"orders": ever}) == {recent_and_old}, measure


async def test_without_orders_in_the_window_the_sum_is_zero_and_no_average(db: Database) -> None:
    async with db.write() as s:
        never, long_ago, pending = (
            await add_customer(s),
            await add_customer(s),
            await add_customer(s),
        )
        await add_order(s, long_ago, 80, ago(90))
        await add_order(s, pending, 80, ago(5), status="pending")
    in_30_days: dict[str, Any] = {"withinDays": 30}
    for condition, expected in (
        ({"measure": "SUM", "op": "EQ", "value": 0}, {never, long_ago, pending}),
        ({"measure": "SUM", "op": "LT", "value": 1}, {never, long_ago, pending}),
        ({"measure": "SUM", "op": "GT", "value": 0}, set()),
        ({"measure": "AVERAGE", "op": "LTE", "value": 0}, set()),
        ({"measure": "AVERAGE", "op": "NEQ", "value": 0}, {never, long_ago, pending}),
        ({"measure": "COUNT", "op": "EQ", "value": 0}, {never, long_ago, pending}),
    ):
        leaf = {"orders": {**condition, **in_30_days}}
        assert await matching(db, leaf) == expected, leaf


COUNT_OPS: dict[str, Callable[[int, int], bool]] = {
    "EQ": operator.eq,
    "NEQ": operator.ne,
    "GT": operator.gt,
    "GTE": operator.ge,
    "LT": operator.lt,
    "LTE": operator.le,
}


async def test_counts_on_either_side_of_the_compared_number(db: Database) -> None:
    """Events and completed orders counted, for 0 to 3 of them against 0, 1 and 2: every
    operator's edge has a customer on each side."""
    async with db.write() as s:
        by_count = {n: await add_customer(s) for n in range(4)}
        for n, customer in by_count.items():
            if n:
                await add_events(s, customer, "page_view", *(ago(1 + i) for i in range(n)))
            for i in range(n):
                await add_order(s, customer, 10, ago(1 + i))
    wrong = {}
    for op, holds in COUNT_OPS.items():
        for x in (0, 1, 2):
            expected = {customer for n, customer in by_count.items() if holds(n, x)}
            for leaf in (
                {"event": {"type": "page_view", "op": op, "count": x}},
                {"orders": {"measure": "COUNT", "op": op, "value": x}},
            ):
                found = await matching(db, leaf)
                if found != expected:
                    wrong[repr(leaf)] = sorted(n for n, c in by_count.items() if c in found)
    assert not wrong, wrong


async def test_text_orders_by_its_bytes_upper_case_first(db: Database) -> None:
    """ "Zurich" < "apple" by bytes (a linguistic collation says the opposite), for a core
    field, a custom attribute and an event property alike."""
    async with db.write() as s:
        upper = await add_customer(s, city="Zurich", attributes={"plan": "Zurich"})
        lower = await add_customer(s, city="apple", attributes={"plan": "apple"})
        await s.execute(
            insert(Event),
            [
                {"customer_id": c, "type": "view_item", "occurred_at": ago(1),
                 "properties": {"plan": plan}}
                for c, plan in ((upper, "Zurich"), (lower, "apple"))
            ],
        )  # fmt: skip
    for field in ("city", "attributes.plan"):
        below = {"attribute": {"field": field, "op": "LT", "value": "a"}}
        assert await matching(db, below) == {upper}, field
        above = {"attribute": {"field": field, "op": "GTE", "value": "Zz"}}
        assert await matching(db, above) == {lower}, field
    viewed = {
        "event": {"type": "view_item", "where": [{"property": "plan", "op": "LT", "value": "a"}]}
    }
    assert await matching(db, viewed) == {upper}


async def test_event_property_comparisons_other_than_eq(db: Database) -> None:
    """Only EQ on text or true/false narrows by containment (for the index on PostgreSQL); the
    other operators must not, whatever their first value."""
    categories = {"sports": "sports", "books": "books", "toys": "toys", "none": None}
    async with db.write() as s:
        ids = {name: await add_customer(s) for name in categories}
        await s.execute(
            insert(Event),
            [
                {"customer_id": ids[name], "type": "view_item", "occurred_at": ago(1),
                 "properties": {"category": category, "gift": name == "toys"}}
                for name, category in categories.items()
            ],
        )  # fmt: skip
    by_id = {v: k for k, v in ids.items()}
    table: list[tuple[dict[str, Any], set[str]]] = [
        ({"property": "category", "op": "NEQ", "value": "sports"}, {"books", "toys", "none"}),
        ({"property": "category", "op": "IN", "value": ["books", "toys"]}, {"books", "toys"}),
        ({"property": "category", "op": "NOT_IN", "value": ["books"]}, {"sports", "toys", "none"}),
        ({"property": "category", "op": "STARTS_WITH", "value": "t"}, {"toys"}),
        ({"property": "category", "op": "CONTAINS", "value": "oo"}, {"books"}),
        ({"property": "gift", "op": "NEQ", "value": True}, {"sports", "books", "none"}),
        ({"property": "gift", "op": "EQ", "value": False}, {"sports", "books", "none"}),
    ]
    found = {}
    for test, _ in table:
        leaf = {"event": {"type": "view_item", "where": [test]}}
        found[repr(test)] = {by_id[i] for i in await matching(db, leaf)}
    assert found == {repr(test): expected for test, expected in table}
