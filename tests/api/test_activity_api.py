"""trackEvents / recordOrders over GraphQL, and events, orders and metrics on Customer."""

from __future__ import annotations

from domain.access.keys import Role
from service.settings import Settings
from tests.conftest import Api

TRACK = """mutation($events: [EventInput!]!) { trackEvents(events: $events) { accepted duplicates errors { code field } } }"""
RECORD = """mutation($orders: [OrderInput!]!) { recordOrders(orders: $orders) { accepted duplicates errors { code field } } }"""
READ = """query($id: ID!) { customer(id: $id) { id
  metrics { orderCount totalSpent averageOrderValue lastOrderAt recencyDays churnRisk clv rfm { code segment } }
  orders(first: 2) { edges { cursor node { externalId amount currency status } } pageInfo { hasNextPage endCursor } }
  events(type: "add_to_cart") { edges { node { type channel properties } } } } }"""


def who(email: str) -> dict[str, str]:
    return {"type": "email", "value": email}


async def test_ingest_and_read_back_activity(api: Api) -> None:
    events = [
        {
            "customer": who("g@x.com"),
            "type": "add_to_cart",
            "channel": "app",
            "properties": {"sku": "S1"},
            "idempotencyKey": "e1",
        },
        {"customer": who("g@x.com"), "type": "page_view", "idempotencyKey": "e2"},
        {"customer": who("g@x.com"), "type": "add_to_cart", "idempotencyKey": "e1"},
        {"customer": who("bad"), "type": "page_view"},
    ]
    tracked = (await api.query(TRACK, {"events": events}))["trackEvents"]
    assert tracked == {
        "accepted": 2,
        "duplicates": 1,
        "errors": [{"code": "INVALID_IDENTITY", "field": ["events", "3", "customer", "value"]}],
    }
    orders = [
        {
            "customer": who("g@x.com"),
            "externalId": "G-1",
            "amount": "100.00",
            "currency": "CNY",
            "placedAt": "2026-01-01T00:00:00+08:00",
        },
        {"customer": who("g@x.com"), "externalId": "G-2", "amount": "20.5", "currency": "CNY"},
        {"customer": who("g@x.com"), "externalId": "G-3", "amount": "10", "currency": "USD"},
    ]
    recorded = (await api.query(RECORD, {"orders": orders}))["recordOrders"]
    assert recorded == {"accepted": 3, "duplicates": 0, "errors": []}
    customer = (
        await api.query('{ customer(identity: {type: "email", value: "g@x.com"}) { id } }')
    )["customer"]
    data = (await api.query(READ, {"id": customer["id"]}))["customer"]
    assert data["metrics"]["orderCount"] == 3
    assert (
        data["metrics"]["totalSpent"] == "191.50"
        and data["metrics"]["averageOrderValue"] == "63.83"
    )
    assert data["metrics"]["recencyDays"] == 0
    assert [e["node"]["externalId"] for e in data["orders"]["edges"]] == ["G-3", "G-2"]
    assert data["orders"]["pageInfo"]["hasNextPage"] is True
    assert data["events"]["edges"] == [
        {"node": {"type": "add_to_cart", "channel": "app", "properties": {"sku": "S1"}}}
    ]


async def test_activity_batches_over_the_limit_and_wrong_roles_are_refused(api: Api) -> None:
    events = [{"customer": who(f"u{i}@x.com"), "type": "login"} for i in range(1001)]
    # A limit (api.limits): refused before the mutation runs, as a GraphQL error.
    body = (await api.post(TRACK, {"events": events})).json()
    assert "data" not in body and body["errors"][0]["extensions"]["code"] == "BATCH_TOO_LARGE"
    body = (await api.post(TRACK, {"events": events[:1]}, role=Role.PARTNER)).json()
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_page_of_customers_with_orders_and_events_costs_a_fixed_number_of_statements(
    api: Api,
) -> None:
    events = [{"customer": who(f"p{i}@x.com"), "type": "login"} for i in range(30)]
    orders = [
        {"customer": who(f"p{i}@x.com"), "externalId": f"P-{i}", "amount": "5", "currency": "CNY"}
        for i in range(30)
    ]
    await api.query(TRACK, {"events": events})
    await api.query(RECORD, {"orders": orders})
    query = """query($n: Int) { customers(first: $n) { edges { node { id
        metrics { orderCount } orders(first: 3) { edges { node { id } } } events { edges { node { type } } } } } } }"""
    costs = {}
    for size in (1, 30):
        api.sql.reset()
        await api.query(query, {"n": size})
        costs[size] = api.sql.count
    assert costs[1] == costs[30], costs


CHANNELS = """query($n: Int) { customers(first: $n, orderBy: [{field: CREATED_AT}]) { edges { node {
  channels { channel firstSeenAt lastSeenAt events orders } } } } }"""


async def test_customer_channels_summarize_events_and_orders_per_channel_in_one_statement(
    api: Api,
) -> None:
    events = [
        {"customer": who(f"c{i}@x.com"), "type": "page_view", "channel": channel,
         "occurredAt": f"2026-01-0{day}T00:00:00+00:00"}
        for i in range(3)
        for channel, day in (("app", 2), ("web", 1), ("app", 3))
    ]  # fmt: skip
    assert (await api.query(TRACK, {"events": events}))["trackEvents"]["accepted"] == 9
    orders = [
        {"customer": who("c0@x.com"), "externalId": "o1", "amount": "10", "currency": "CNY",
         "source": "web", "placedAt": "2026-01-05T00:00:00+00:00"}
    ]  # fmt: skip
    assert (await api.query(RECORD, {"orders": orders}))["recordOrders"]["accepted"] == 1
    costs = {}
    for size in (1, 3):
        api.sql.reset()
        edges = (await api.query(CHANNELS, {"n": size}, role=Role.PARTNER))["customers"]["edges"]
        costs[size] = api.sql.count
        assert len(edges) == size
    assert costs[1] == costs[3], costs
    app = {
        "channel": "app",
        "firstSeenAt": "2026-01-02T00:00:00+00:00",
        "lastSeenAt": "2026-01-03T00:00:00+00:00",
        "events": 2,
        "orders": 0,
    }
    web = {
        "channel": "web",
        "firstSeenAt": "2026-01-01T00:00:00+00:00",
        "lastSeenAt": "2026-01-01T00:00:00+00:00",
        "events": 1,
        "orders": 0,
    }
    buyer_web = {**web, "lastSeenAt": "2026-01-05T00:00:00+00:00", "orders": 1}
    found = sorted((e["node"]["channels"] for e in edges), key=lambda c: c[0]["channel"])
    assert found == [[app, web], [app, web], [buyer_web, app]]  # fmt: skip


async def test_an_event_older_than_the_retention_is_refused(api: Api, settings: Settings) -> None:
    settings.event_retention_months = 1  # the app reads its settings at each request
    events = [
        {"customer": who("r@x.com"), "type": "page_view"},
        {"customer": who("r@x.com"), "type": "page_view", "occurredAt": "2020-01-01T00:00:00Z"},
    ]
    tracked = (await api.query(TRACK, {"events": events}))["trackEvents"]
    assert tracked == {
        "accepted": 1,
        "duplicates": 0,
        "errors": [{"code": "OUTSIDE_RETENTION", "field": ["events", "1", "occurredAt"]}],
    }
