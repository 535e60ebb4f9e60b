"""The consistency contract over HTTP (domain.derived): a mutation's raw facts are there when it
answers, its derived state follows (Customer.derivedStatePending says so), and a request
sent with `X-Derived-State: wait` reads its own writes. Here writes do not settle by
themselves (derived_state_inline off), as in production."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from api.app import create_app
from domain.access.keys import Role, create_api_key
from domain.derived import batches
from service.settings import Settings
from store.db import Database

RECORD = """mutation($orders: [OrderInput!]!) { recordOrders(orders: $orders) { accepted } }"""
READ = """query($who: IdentityInput!) { customer(identity: $who) {
  derivedStatePending derivedStateBehindSince metrics { orderCount } } }"""
UPDATE = """mutation($id: ID!, $patch: CustomerPatch!) { updateCustomer(id: $id, patch: $patch) {
  customer { country tags { tag { key } } derivedStatePending } errors { code } } }"""
WHO = {"type": "email", "value": "g@x.com"}
ORDER = {"customer": WHO, "externalId": "G-1", "amount": "100", "currency": "CNY"}


@pytest.fixture
async def client(db: Database, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"derived_state_inline": False}))
    key = (await create_api_key(db, "derived", Role.ADMIN)).secret
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as c:
        yield c
    await app.state.c360.close()


async def call(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any], wait: bool = False
) -> dict[str, Any]:
    headers = {"X-Derived-State": "wait"} if wait else {}
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    body = response.json()
    assert response.status_code == 200 and not body.get("errors"), body
    return body["data"]  # type: ignore[no-any-return]


async def test_derived_state_follows_and_the_profile_says_it_is_pending(
    client: httpx.AsyncClient, db: Database
) -> None:
    assert (await call(client, RECORD, {"orders": [ORDER]}))["recordOrders"]["accepted"] == 1
    behind = (await call(client, READ, {"who": WHO}))["customer"]
    assert behind["derivedStatePending"] is True and behind["derivedStateBehindSince"]
    assert behind["metrics"]["orderCount"] == 0
    ready = (await client.get("/readyz")).json()
    assert ready["lag"]["derivedState"]["profiles"] == 1
    metrics = (await client.get("/metrics")).text
    assert "c360_derived_profiles_waiting 1.0" in metrics
    assert await batches.drain(db) == 1
    settled = (await call(client, READ, {"who": WHO}))["customer"]
    assert settled == {
        "derivedStatePending": False,
        "derivedStateBehindSince": None,
        "metrics": {"orderCount": 1},
    }


async def test_a_request_that_asks_to_wait_reads_its_own_writes(
    client: httpx.AsyncClient, db: Database
) -> None:
    await call(client, RECORD, {"orders": [ORDER]}, wait=True)
    settled = (await call(client, READ, {"who": WHO}))["customer"]
    assert settled["derivedStatePending"] is False and settled["metrics"]["orderCount"] == 1


async def test_a_waiting_mutations_payload_carries_its_derived_state(
    client: httpx.AsyncClient, db: Database
) -> None:
    define = """mutation { defineTag(input: {key: "cn", name: "CN", kind: RULE,
      condition: {attribute: {field: "country", op: EQ, value: "CN"}}}) { errors { code } } }"""
    assert (await call(client, define, {}))["defineTag"]["errors"] == []
    await call(client, RECORD, {"orders": [ORDER]}, wait=True)
    found = await call(
        client, "query($who: IdentityInput!) { customer(identity: $who) { id } }", {"who": WHO}
    )
    patch = {"id": found["customer"]["id"], "patch": {"country": "CN"}}
    later = (await call(client, UPDATE, patch))["updateCustomer"]["customer"]
    assert later["tags"] == [] and later["derivedStatePending"] is True
    patch["patch"] = {"country": "DE"}
    await call(client, UPDATE, patch, wait=True)
    patch["patch"] = {"country": "CN"}
    now = (await call(client, UPDATE, patch, wait=True))["updateCustomer"]["customer"]
    assert now == {"country": "CN", "tags": [{"tag": {"key": "cn"}}], "derivedStatePending": False}
