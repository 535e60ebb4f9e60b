"""The read path the benchmark measures (bench/read.py): its cost in statements does not grow
with the page, and nothing in it serves a profile older than the last write."""

from __future__ import annotations

from bench.read_queries import OURS_PROFILE
from tests.builders import make_customer
from tests.conftest import Api

# Q2 of the benchmark with the page size as a variable: the same fields, the same order.
Q2 = (
    OURS_PROFILE
    + """query($n: Int) {
  customers(first: $n, orderBy: [{field: LAST_SEEN_AT, direction: DESC}]) {
    edges { cursor node { ...Profile } } pageInfo { hasNextPage endCursor }
  }
}"""
)
Q1 = OURS_PROFILE + "query($id: ID!) { customer(id: $id) { ...Profile } }"


async def test_q2_costs_the_same_statements_for_a_page_of_1_and_of_50(api: Api, db) -> None:
    for i in range(50):
        await make_customer(
            db,
            display_name=f"c{i}",
            identities=[("email", f"c{i}@example.com"), ("device_id", f"dev-{i}")],
            tags=["vip", "newsletter"],
            stages=["awareness", "consideration", "purchase"],
        )
    costs = {}
    for size in (1, 50):
        api.sql.reset()
        data = await api.query(Q2, {"n": size})
        edges = data["customers"]["edges"]
        assert len(edges) == size
        assert all(len(e["node"]["stageHistory"]) == 3 for e in edges)
        costs[size] = api.sql.count
    assert costs[1] == costs[50], costs
    # The key is known (no lookup). On PostgreSQL the page as its JSON, one statement
    # (domain.profile_json); elsewhere the page, the stages and the tag definitions, and one
    # statement per list.
    assert costs[50] == (1 if api.db.dialect == "postgresql" else 7), api.sql.statements


async def _profile(api: Api, customer_id: str) -> dict:
    return (await api.query(Q1, {"id": customer_id}))["customer"]


async def _write(api: Api, mutation: str, variables: dict | None = None) -> dict:
    """A mutation that must succeed: no GraphQL errors and an empty `errors` payload."""
    payload = next(iter((await api.query(mutation, variables)).values()))
    assert payload.get("errors", []) == [], payload
    return payload


async def test_every_write_to_a_customer_is_visible_to_the_next_read(api: Api) -> None:
    created = await _write(
        api,
        """mutation { identify(input: {identities: [{type: "email", value: "li@example.com"}]})
           { customer { id } errors { code } } }""",
    )
    customer_id = created["customer"]["id"]
    before = await _profile(api, customer_id)
    assert before["displayName"] is None and before["metrics"]["orderCount"] == 0

    await _write(
        api,
        """mutation($id: ID!) { updateCustomer(id: $id, patch: {displayName: "李娜", city: "杭州"})
           { errors { code } } }""",
        {"id": customer_id},
    )
    profile = await _profile(api, customer_id)
    assert (profile["displayName"], profile["city"]) == ("李娜", "杭州")

    await _write(
        api,
        """mutation { identify(input: {identities: [{type: "email", value: "li@example.com"},
           {type: "phone", value: "13800138000"}]}) { errors { code } } }""",
    )
    profile = await _profile(api, customer_id)
    assert ("phone", "+8613800138000") in {(i["type"], i["value"]) for i in profile["identities"]}

    await _write(
        api,
        """mutation { recordOrders(orders: [{customer: {type: "email", value: "li@example.com"},
           externalId: "o-1", amount: "120.00", currency: "CNY"}]) { accepted errors { code } } }""",
    )
    await _write(
        api,
        """mutation { trackEvents(events: [{customer: {type: "email", value: "li@example.com"},
           type: "add_to_cart"}]) { accepted errors { code } } }""",
    )
    profile = await _profile(api, customer_id)
    assert profile["metrics"]["orderCount"] == 1
    assert profile["metrics"]["totalSpent"] == "120.00"
    assert profile["metrics"]["lastActivityAt"] is not None

    await _write(
        api, 'mutation { defineTag(input: {key: "vip", name: "VIP"}) { errors { code } } }'
    )
    await _write(
        api,
        'mutation($id: ID!) { tagCustomers(tag: "vip", customers: [$id]) { errors { code } } }',
        {"id": customer_id},
    )
    profile = await _profile(api, customer_id)
    assert [t["tag"]["key"] for t in profile["tags"]] == ["vip"]

    assert (profile["stage"] or {}).get("key") != "churned"
    await _write(
        api,
        """mutation($id: ID!) { setStage(customer: $id, stage: "churned", reason: "test")
           { errors { code } } }""",
        {"id": customer_id},
    )
    profile = await _profile(api, customer_id)
    assert profile["stage"]["key"] == "churned"
    assert profile["stageHistory"][-1]["to"]["key"] == "churned"
