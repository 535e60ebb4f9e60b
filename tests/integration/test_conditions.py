"""Every leaf and operator of the condition language against a small fixed population whose
answers were worked out by hand (see `people`), on each backend.

Time is fixed at NOW. The people:
- ann: CN, Shanghai, born 1990-04-23, created 400 days ago; attributes age 31, vip true, plan
  gold; tags vip, tier=gold, points=120; stage loyalty entered 10 days ago; email and phone;
  3 page views in the last week and a purchase event 40 days ago; completed orders 100 (5 days
  ago) and 300 (60 days ago), a refund of 50; metrics: 2 orders, 400 spent, active 3 days ago,
  Champions, CLV 900, churn risk 0.1.
- bob: US, New York, created 200 days ago; age "31" (a string), vip false, plan silver; vip tag
  expired yesterday, tier=silver, points=abc; stage purchase entered 100 days ago; email; one
  page view 20 days ago; one order of 50, 200 days ago; metrics: 1 order, 50 spent, active 20
  days ago, At Risk, CLV 60, churn risk 0.7.
- cai: CN, Beijing, created 100 days ago, no attributes; vip tag expiring in 10 days; nothing
  else at all (no stage, identities, activity or metrics row).
- dan: no country, "shanghai", created 500 days ago; age 45.5, nickname null; points=99.5;
  stage churned entered 400 days ago; a WeChat open id; 5 page views 60 days ago; two orders of
  10 (10 and 11 days ago); metrics: 2 orders, 20 spent, active exactly 10 days ago, Lost.
- fay: CN, created yesterday; age 31; tier=gold expiring exactly now; stage awareness entered
  yesterday; a phone; metrics: no orders, active in two days (a clock skew: recency 0).
- eve: MERGED, matching nearly everything: never a member of anything.
Segments: `cn` (dynamic: country is CN) and `big` (materialized, stored members ann and bob).
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import pytest

from store.db import Database
from tests.integration.condition_helpers import (
    NOW,
    add_customer,
    add_events,
    add_identity,
    add_order,
    add_segment,
    ago,
    assign,
    define_tag,
    matching,
    set_metrics,
)

EVERYONE = {"ann", "bob", "cai", "dan", "fay"}
Table = list[tuple[dict[str, Any], set[str]]]


@pytest.fixture
async def people(db: Database) -> dict[str, uuid.UUID]:
    async with db.write() as s:
        vip, tier = (
            await define_tag(s, "vip"),
            await define_tag(s, "tier", "ENUM", ["gold", "silver"]),
        )
        points = await define_tag(s, "points", "NUMBER")
        ann = await add_customer(
            s,
            country="CN",
            city="Shanghai",
            gender="female",
            display_name="Ann Lee",
            birthday=date(1990, 4, 23),
            created_at=ago(400),
            stage="loyalty",
            stage_entered_at=ago(10),
            attributes={"age": 31, "vip": True, "plan": "gold"},
        )
        bob = await add_customer(
            s,
            country="US",
            city="New York",
            created_at=ago(200),
            stage="purchase",
            stage_entered_at=ago(100),
            attributes={"age": "31", "vip": False, "plan": "silver"},
        )
        cai = await add_customer(
            s, country="CN", city="Beijing", created_at=ago(100), attributes={}
        )
        dan = await add_customer(
            s,
            city="shanghai",
            created_at=ago(500),
            stage="churned",
            stage_entered_at=ago(400),
            attributes={"age": 45.5, "nickname": None},
        )
        fay = await add_customer(
            s,
            country="CN",
            created_at=ago(1),
            stage="awareness",
            stage_entered_at=ago(1),
            attributes={"age": 31},
        )
        eve = await add_customer(
            s, status="MERGED", country="CN", city="Shanghai", stage="loyalty", stage_entered_at=ago(1),
            attributes={"age": 31, "vip": True, "plan": "gold"},
        )  # fmt: skip
        await assign(s, ann, vip)
        await assign(s, ann, tier, "gold")
        await assign(s, ann, points, "120")
        await assign(s, bob, vip, expires_at=ago(1))
        await assign(s, bob, tier, "silver")
        await assign(s, bob, points, "abc")
        await assign(s, cai, vip, expires_at=ago(-10))
        await assign(s, dan, points, "99.5")
        await assign(s, fay, tier, "gold", expires_at=NOW)
        await assign(s, eve, vip)
        for person, kind in ((ann, "email"), (ann, "phone"), (bob, "email"), (dan, "wechat_openid"), (fay, "phone"), (eve, "email")):  # fmt: skip
            await add_identity(s, person, kind)
        await add_events(s, ann, "page_view", ago(1), ago(2), ago(6))
        await add_events(s, ann, "purchase", ago(40))
        await add_events(s, bob, "page_view", ago(20))
        await add_events(s, dan, "page_view", *(ago(60 + i) for i in range(5)))
        await add_events(s, eve, "page_view", ago(1), ago(2), ago(3))
        await add_order(s, ann, 100, ago(5))
        await add_order(s, ann, 300, ago(60))
        await add_order(s, ann, 50, ago(3), status="refunded")
        await add_order(s, bob, 50, ago(200))
        await add_order(s, dan, 10, ago(10))
        await add_order(s, dan, 10, ago(11))
        await add_order(s, eve, 1000, ago(1))
        await set_metrics(
            s, ann, order_count=2, total_spent=400, last_activity_at=ago(3),
            rfm_segment="Champions", clv=900, churn_risk=0.1,
        )  # fmt: skip
        await set_metrics(
            s, bob, order_count=1, total_spent=50, last_activity_at=ago(20),
            rfm_segment="At Risk", clv=60, churn_risk=0.7,
        )  # fmt: skip
        await set_metrics(
            s, dan, order_count=2, total_spent=20, last_activity_at=ago(10), rfm_segment="Lost"
        )
        await set_metrics(s, fay, order_count=0, total_spent=0, last_activity_at=ago(-2))
        await set_metrics(
            s, eve, order_count=9, total_spent=5000, last_activity_at=ago(1), clv=9000
        )
        await add_segment(s, "cn", {"attribute": {"field": "country", "op": "EQ", "value": "CN"}})
        await add_segment(
            s, "big", {"orders": {"measure": "SUM", "op": "GTE", "value": 1}},
            materialized=True, members=(ann, bob, eve),
        )  # fmt: skip
    return {"ann": ann, "bob": bob, "cai": cai, "dan": dan, "fay": fay, "eve": eve}


async def names(db: Database, people: dict[str, uuid.UUID], condition: Any) -> set[str]:
    by_id = {v: k for k, v in people.items()}
    return {by_id[i] for i in await matching(db, condition)}


def attr(field: str, op: str, value: Any = None, values: Any = None) -> dict[str, Any]:
    leaf: dict[str, Any] = {"field": field, "op": op}
    if value is not None:
        leaf["value"] = value
    if values is not None:
        leaf["values"] = values
    return {"attribute": leaf}


CORE_FIELDS: Table = [
    (attr("country", "EQ", "CN"), {"ann", "cai", "fay"}),
    (attr("country", "NEQ", "CN"), {"bob", "dan"}),
    (attr("country", "IN", values=["CN", "US"]), {"ann", "bob", "cai", "fay"}),
    (attr("country", "NOT_IN", values=["CN"]), {"bob", "dan"}),
    (attr("country", "EXISTS"), {"ann", "bob", "cai", "fay"}),
    (attr("country", "NOT_EXISTS"), {"dan"}),
    (attr("city", "CONTAINS", "hang"), {"ann", "dan"}),
    (attr("city", "CONTAINS", "Shang"), {"ann"}),
    (attr("city", "STARTS_WITH", "New"), {"bob"}),
    (attr("city", "GT", "Beijing"), {"ann", "bob", "dan"}),
    (attr("city", "LTE", "New York"), {"bob", "cai"}),
    (attr("displayName", "EQ", "Ann Lee"), {"ann"}),
    (attr("birthday", "BETWEEN", values=["1990-01-01", "1990-12-31"]), {"ann"}),
    (attr("birthday", "LT", "2000-01-01"), {"ann"}),
    (attr("createdAt", "LT", ago(300).isoformat()), {"ann", "dan"}),
    (attr("createdAt", "GTE", (NOW - timedelta(days=100)).isoformat()), {"cai", "fay"}),
    (attr("stageEnteredAt", "EXISTS"), {"ann", "bob", "dan", "fay"}),
]
CUSTOM_ATTRIBUTES: Table = [
    (attr("attributes.age", "EQ", 31), {"ann", "fay"}),
    (attr("attributes.age", "EQ", "31"), {"bob"}),
    (attr("attributes.age", "NEQ", 31), {"bob", "cai", "dan"}),
    (attr("attributes.age", "GT", 40), {"dan"}),
    (attr("attributes.age", "BETWEEN", values=[30, 50]), {"ann", "dan", "fay"}),
    (attr("attributes.age", "IN", values=[31, 45.5]), {"ann", "dan", "fay"}),
    (attr("attributes.vip", "EQ", True), {"ann"}),
    (attr("attributes.vip", "EQ", False), {"bob"}),
    (attr("attributes.plan", "IN", values=["gold", "silver"]), {"ann", "bob"}),
    (attr("attributes.plan", "STARTS_WITH", "go"), {"ann"}),
    (attr("attributes.plan", "GT", "h"), {"bob"}),
    (attr("attributes.age", "EXISTS"), {"ann", "bob", "dan", "fay"}),
    (attr("attributes.age", "NOT_EXISTS"), {"cai"}),
    (attr("attributes.nickname", "EXISTS"), set()),
]
TAGS: Table = [
    ({"tag": {"key": "vip"}}, {"ann", "cai"}),
    ({"tag": {"key": "vip", "present": False}}, {"bob", "dan", "fay"}),
    ({"tag": {"key": "tier", "op": "EQ", "value": "gold"}}, {"ann"}),
    ({"tag": {"key": "tier", "value": "silver"}}, {"bob"}),
    ({"tag": {"key": "tier", "op": "NEQ", "value": "gold"}}, {"bob"}),
    ({"tag": {"key": "points", "op": "GTE", "value": "100"}}, {"ann"}),
    ({"tag": {"key": "points", "op": "LT", "value": "100"}}, {"dan"}),
    ({"tag": {"key": "points", "op": "EQ", "value": "99.50"}}, {"dan"}),
]
STAGES_AND_IDENTITIES: Table = [
    ({"stage": {"in": ["loyalty", "purchase"]}}, {"ann", "bob"}),
    ({"stage": {"in": ["loyalty", "purchase"], "enteredWithinDays": 30}}, {"ann"}),
    ({"stage": {"in": ["churned"]}}, {"dan"}),
    ({"identity": {"type": "email"}}, {"ann", "bob"}),
    ({"identity": {"type": "email", "present": False}}, {"cai", "dan", "fay"}),
    ({"identity": {"type": "phone"}}, {"ann", "fay"}),
]
EVENTS: Table = [
    ({"event": {"type": "page_view"}}, {"ann", "bob", "dan"}),
    ({"event": {"type": "page_view", "withinDays": 7}}, {"ann"}),
    ({"event": {"type": "page_view", "withinDays": 30, "op": "GTE", "count": 2}}, {"ann"}),
    (
        {"event": {"type": "page_view", "withinDays": 30, "op": "EQ", "count": 0}},
        {"cai", "dan", "fay"},
    ),
    ({"event": {"type": "page_view", "op": "GT", "count": 4}}, {"dan"}),
    ({"event": {"type": "page_view", "op": "LTE", "count": 1}}, {"bob", "cai", "fay"}),
    ({"event": {"type": "page_view", "op": "LT", "count": 3}}, {"bob", "cai", "fay"}),
    ({"event": {"type": "page_view", "op": "NEQ", "count": 3}}, {"bob", "cai", "dan", "fay"}),
    ({"event": {"type": "page_view", "op": "EQ", "count": 5}}, {"dan"}),
    ({"event": {"type": "purchase", "withinDays": 30}}, set()),
]
ORDERS: Table = [
    ({"orders": {"measure": "COUNT", "op": "GTE", "value": 2}}, {"ann", "dan"}),
    (
        {"orders": {"measure": "COUNT", "op": "EQ", "value": 0, "withinDays": 30}},
        {"bob", "cai", "fay"},
    ),
    # Sums are net of refunds: ann's refund of 50, 3 days ago, subtracts in both windows.
    ({"orders": {"measure": "SUM", "op": "GTE", "value": 50, "withinDays": 30}}, {"ann"}),
    ({"orders": {"measure": "SUM", "op": "GTE", "value": 51, "withinDays": 30}}, set()),
    ({"orders": {"measure": "SUM", "op": "LT", "value": 30}}, {"cai", "dan", "fay"}),
    ({"orders": {"measure": "SUM", "op": "EQ", "value": 350}}, {"ann"}),
    ({"orders": {"measure": "AVERAGE", "op": "EQ", "value": 175}}, {"ann"}),
    ({"orders": {"measure": "AVERAGE", "op": "EQ", "value": 10}}, {"dan"}),
    ({"orders": {"measure": "AVERAGE", "op": "NEQ", "value": 10}}, {"ann", "bob", "cai", "fay"}),
    ({"orders": {"measure": "AVERAGE", "op": "GT", "value": 20}}, {"ann", "bob"}),
]
METRICS: Table = [
    ({"metric": {"name": "RECENCY_DAYS", "op": "LTE", "value": 5}}, {"ann", "fay"}),
    ({"metric": {"name": "RECENCY_DAYS", "op": "GT", "value": 15}}, {"bob"}),
    ({"metric": {"name": "RECENCY_DAYS", "op": "EQ", "value": 10}}, {"dan"}),
    ({"metric": {"name": "RECENCY_DAYS", "op": "LT", "value": 10}}, {"ann", "fay"}),
    ({"metric": {"name": "RECENCY_DAYS", "op": "EQ", "value": 0}}, {"fay"}),
    ({"metric": {"name": "RECENCY_DAYS", "op": "BETWEEN", "value": [3, 10]}}, {"ann", "dan"}),
    ({"metric": {"name": "RECENCY_DAYS", "op": "NEQ", "value": 3}}, {"bob", "cai", "dan", "fay"}),
    ({"metric": {"name": "RECENCY_DAYS", "op": "IN", "value": [0, 20]}}, {"bob", "fay"}),
    ({"metric": {"name": "FREQUENCY", "op": "GTE", "value": 2}}, {"ann", "dan"}),
    ({"metric": {"name": "FREQUENCY", "op": "EQ", "value": 0}}, {"cai", "fay"}),
    ({"metric": {"name": "MONETARY", "op": "GT", "value": 30}}, {"ann", "bob"}),
    ({"metric": {"name": "MONETARY", "op": "LT", "value": 30}}, {"cai", "dan", "fay"}),
    (
        {"metric": {"name": "RFM_SEGMENT", "op": "IN", "value": ["Champions", "Lost"]}},
        {"ann", "dan"},
    ),
    (
        {"metric": {"name": "RFM_SEGMENT", "op": "NEQ", "value": "Champions"}},
        {"bob", "cai", "dan", "fay"},
    ),
    ({"metric": {"name": "CLV", "op": "GTE", "value": 100}}, {"ann"}),
    ({"metric": {"name": "CLV", "op": "LT", "value": 100}}, {"bob"}),
    ({"metric": {"name": "CHURN_RISK", "op": "BETWEEN", "value": [0.5, 1]}}, {"bob"}),
]
SEGMENTS_AND_LOGIC: Table = [
    ({"segment": {"key": "cn"}}, {"ann", "cai", "fay"}),
    ({"segment": {"key": "cn", "member": False}}, {"bob", "dan"}),
    ({"segment": {"key": "big"}}, {"ann", "bob"}),
    ({"and": []}, EVERYONE),
    ({"or": []}, set()),
    ({"not": attr("country", "EQ", "CN")}, {"bob", "dan"}),
    ({"or": [{"tag": {"key": "vip"}}, {"stage": {"in": ["churned"]}}]}, {"ann", "cai", "dan"}),
    ({"and": [attr("country", "EQ", "CN"), {"not": {"tag": {"key": "vip"}}}]}, {"fay"}),
    ({"not": {"not": {"metric": {"name": "CLV", "op": "LT", "value": 100}}}}, {"bob"}),
    ({"and": [{"segment": {"key": "cn"}}, {"segment": {"key": "big"}}]}, {"ann"}),
]


async def check(db: Database, people: dict[str, uuid.UUID], table: Table) -> None:
    """Every condition of `table` against one population: all mismatches reported at once."""
    wrong = {}
    for condition, expected in table:
        found = await names(db, people, condition)
        if found != expected:
            wrong[repr(condition)] = f"expected {sorted(expected)}, got {sorted(found)}"
    assert not wrong, wrong


async def test_core_fields_compare_by_their_type(
    db: Database, people: dict[str, uuid.UUID]
) -> None:
    await check(db, people, CORE_FIELDS)


async def test_custom_attributes_compare_only_values_of_the_same_json_type(
    db: Database, people: dict[str, uuid.UUID]
) -> None:
    await check(db, people, CUSTOM_ATTRIBUTES)


async def test_tags_match_unexpired_assignments_and_their_values(
    db: Database, people: dict[str, uuid.UUID]
) -> None:
    await check(db, people, TAGS)


async def test_stages_and_identities(db: Database, people: dict[str, uuid.UUID]) -> None:
    await check(db, people, STAGES_AND_IDENTITIES)


async def test_event_counts_in_windows(db: Database, people: dict[str, uuid.UUID]) -> None:
    await check(db, people, EVENTS)


async def test_order_measures_over_completed_orders(
    db: Database, people: dict[str, uuid.UUID]
) -> None:
    await check(db, people, ORDERS)


async def test_metrics_with_zero_or_no_value_for_a_missing_row(
    db: Database, people: dict[str, uuid.UUID]
) -> None:
    await check(db, people, METRICS)


async def test_segments_and_nesting(db: Database, people: dict[str, uuid.UUID]) -> None:
    await check(db, people, SEGMENTS_AND_LOGIC)


async def test_a_tag_expiring_exactly_now_no_longer_counts(
    db: Database, people: dict[str, uuid.UUID]
) -> None:
    fay_gold = {"tag": {"key": "tier", "op": "EQ", "value": "gold"}}
    assert "fay" not in await names(db, people, fay_gold)
    by_id = {v: k for k, v in people.items()}
    earlier = NOW - timedelta(seconds=1)
    assert "fay" in {by_id[i] for i in await matching(db, fay_gold, now=earlier)}
