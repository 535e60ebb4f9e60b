"""The read side of Customer: by id, by identity, by node id, and the paginated list."""

from __future__ import annotations

import base64
from datetime import timedelta

from sqlalchemy import update

from api.ids import to_global_id
from store.models import Customer
from store.types import utcnow
from tests.builders import make_customer
from tests.conftest import Api

PROFILE = """
fragment Profile on Customer {
  id status displayName email country attributes createdAt
  identities { type value source verified firstSeenAt }
  tags { tag { key name category } value assignedAt }
  stage { key name position }
  stageEnteredAt
  stageHistory { from { key } to { key } at actor }
  metrics { orderCount totalSpent averageOrderValue }
  segments { key }
  merges { id mergedId }
}
"""


async def test_customer_by_id_returns_profile_with_nested_lists(api: Api, db) -> None:
    customer_id = await make_customer(
        db,
        display_name="王伟",
        email="wang@example.com",
        country="CN",
        attributes={"vip": True},
        identities=[("email", "Wang@Example.com"), ("phone", "13800138000")],
        tags=["vip"],
        stages=["awareness", "purchase"],
    )
    data = await api.query(
        PROFILE + "query($id: ID!) { customer(id: $id) { ...Profile } }",
        {"id": to_global_id("Customer", customer_id)},
    )
    customer = data["customer"]
    assert customer["displayName"] == "王伟"
    assert customer["attributes"] == {"vip": True}
    assert sorted((i["type"], i["value"]) for i in customer["identities"]) == [
        ("email", "wang@example.com"),
        ("phone", "+8613800138000"),
    ]
    assert [t["tag"]["key"] for t in customer["tags"]] == ["vip"]
    assert customer["stage"]["key"] == "purchase"
    assert [(h["from"] and h["from"]["key"], h["to"]["key"]) for h in customer["stageHistory"]] == [
        (None, "awareness"),
        ("awareness", "purchase"),
    ]
    assert customer["metrics"] == {"orderCount": 0, "totalSpent": "0.00", "averageOrderValue": None}
    assert customer["createdAt"].endswith("+00:00")


async def test_customer_by_identity_normalizes_the_value(api: Api, db) -> None:
    customer_id = await make_customer(db, identities=[("phone", "+86 138 0013 8000")])
    data = await api.query(
        '{ customer(identity: {type: "phone", value: "0086 13800138000"}) { id } }'
    )
    assert data["customer"]["id"] == to_global_id("Customer", customer_id)
    data = await api.query(
        '{ customer(identity: {type: "email", value: "nobody@example.com"}) { id } }'
    )
    assert data["customer"] is None


async def test_customer_by_identity_of_unknown_type_is_an_error_with_a_code(api: Api) -> None:
    body = (await api.post('{ customer(identity: {type: "fax", value: "1"}) { id } }')).json()
    assert body["errors"][0]["extensions"]["code"] == "UNKNOWN_IDENTITY_TYPE"


async def test_merged_away_id_answers_with_the_survivor(api: Api, db) -> None:
    survivor = await make_customer(db, display_name="Survivor")
    merged = await make_customer(db, display_name="Merged")
    async with db.write() as session:
        await session.execute(
            update(Customer)
            .where(Customer.id == merged)
            .values(status="MERGED", merged_into_id=survivor)
        )
    for field in ("customer(id: $id)", "node(id: $id)"):
        data = await api.query(
            f"query($id: ID!) {{ c: {field} {{ id ... on Customer {{ displayName }} }} }}",
            {"id": to_global_id("Customer", merged)},
        )
        assert data["c"] == {"id": to_global_id("Customer", survivor), "displayName": "Survivor"}


async def test_malformed_id_is_a_coded_error_not_a_crash(api: Api) -> None:
    body = (await api.post('{ customer(id: "nonsense") { id } }')).json()
    assert body["errors"][0]["extensions"]["code"] == "INVALID_ID"
    forged = base64.b64encode(b"Customer:not-a-uuid").decode()
    body = (await api.post(f'{{ customer(id: "{forged}") {{ id }} }}')).json()
    assert body["errors"][0]["extensions"]["code"] == "INVALID_ID"


async def test_customers_pages_forwards_and_backwards_with_total_count(api: Api, db) -> None:
    start = utcnow() - timedelta(days=30)
    ids = [
        to_global_id("Customer", await make_customer(db, created_at=start + timedelta(days=i)))
        for i in range(7)
    ]
    query = """query($first: Int, $after: String, $last: Int, $before: String) {
      customers(first: $first, after: $after, last: $last, before: $before) {
        totalCount edges { cursor node { id } }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"""
    seen, after = [], None
    while True:
        page = (await api.query(query, {"first": 3, "after": after}))["customers"]
        assert page["totalCount"] == 7
        seen += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == ids
    back = (await api.query(query, {"last": 2, "before": page["pageInfo"]["startCursor"]}))[
        "customers"
    ]
    assert [edge["node"]["id"] for edge in back["edges"]] == ids[4:6]
    assert back["pageInfo"]["hasPreviousPage"] is True


async def test_customers_order_by_display_name_descending(api: Api, db) -> None:
    for name in ["Bo", "Ann", "Cy"]:
        await make_customer(db, display_name=name)
    query = "{ customers(orderBy: [{field: DISPLAY_NAME, direction: DESC}], first: 2) { edges { node { displayName } } pageInfo { endCursor } } }"
    page = (await api.query(query))["customers"]
    assert [e["node"]["displayName"] for e in page["edges"]] == ["Cy", "Bo"]
    rest = await api.query(
        "query($a: String) { customers(orderBy: [{field: DISPLAY_NAME, direction: DESC}], after: $a) { edges { node { displayName } } } }",
        {"a": page["pageInfo"]["endCursor"]},
    )
    assert [e["node"]["displayName"] for e in rest["customers"]["edges"]] == ["Ann"]


async def test_merged_profiles_are_not_listed(api: Api, db) -> None:
    live = await make_customer(db)
    await make_customer(db, status="MERGED", merged_into_id=live)
    data = await api.query("{ customers { totalCount edges { node { id } } } }")
    assert data["customers"]["totalCount"] == 1


async def test_page_size_over_the_cap_is_refused(api: Api) -> None:
    body = (await api.post("{ customers(first: 201) { totalCount } }")).json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "PAGE_SIZE_EXCEEDED"
    assert (await api.query("{ customers(first: 200) { totalCount } }"))["customers"][
        "totalCount"
    ] == 0


async def test_a_bad_cursor_is_refused_with_a_code(api: Api) -> None:
    body = (await api.post('{ customers(after: "garbage!") { totalCount } }')).json()
    assert body["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"


async def test_reading_50_customers_costs_the_same_statements_as_reading_1(api: Api, db) -> None:
    for i in range(50):
        await make_customer(
            db,
            display_name=f"c{i}",
            identities=[("email", f"c{i}@example.com"), ("device_id", f"dev-{i}")],
            tags=["vip", "newsletter"],
            stages=["awareness", "consideration"],
        )
    query = PROFILE + "query($n: Int) { customers(first: $n) { edges { node { ...Profile } } } }"
    costs = {}
    for size in (1, 50):
        api.sql.reset()
        data = await api.query(query, {"n": size})
        assert len(data["customers"]["edges"]) == size
        costs[size] = api.sql.count
    assert costs[1] == costs[50], costs
    assert costs[50] <= 12, api.sql.statements
