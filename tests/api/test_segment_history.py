"""Segment.history and Customer.segmentHistory: entries and exits of materialized segments,
newest first, paged, kept to a customer, refused or filtered for partners when the segment
reads PII, and read per page in a fixed number of statements."""

from __future__ import annotations

from typing import Any

from api.ids import to_global_id
from domain.access.keys import Role
from tests.api.test_segments_api import CHINA, define
from tests.builders import make_customer
from tests.conftest import Api

MOVE = """mutation($id: ID!, $country: String) { updateCustomer(id: $id, patch: {country: $country})
  { errors { code } } }"""
HISTORY = """query($key: String!, $first: Int, $after: String, $customer: ID) {
  segment(key: $key) { history(first: $first, after: $after, customer: $customer) {
    edges { cursor node { change at segment { key } customer { displayName } } }
    pageInfo { hasNextPage hasPreviousPage endCursor } } } }"""
CUSTOMER_HISTORY = """query($id: ID!) { customer(id: $id) {
  segmentHistory { edges { node { change segment { key } customer { displayName } } } } } }"""
NAMED = {"attribute": {"field": "displayName", "op": "STARTS_WITH", "value": "A"}}


async def people(db: Any) -> dict[str, str]:
    found = {}
    for name, country in (("Ann", "CN"), ("Bob", "US"), ("Cai", "CN")):
        made = await make_customer(db, display_name=name, country=country)
        found[name] = to_global_id("Customer", made)
    return found


async def move(api: Api, customer: str, country: str) -> None:
    result = await api.query(MOVE, {"id": customer, "country": country}, role=Role.FRONTEND)
    assert result["updateCustomer"]["errors"] == []


def rows(history: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["node"]["customer"]["displayName"], e["node"]["change"]) for e in history["edges"]]


async def test_segment_history_is_newest_first_paged_and_kept_to_a_customer(
    api: Api, db: Any
) -> None:
    who = await people(db)
    await define(api, "china", CHINA, materialized=True)  # Ann and Cai enter
    await move(api, who["Bob"], "CN")
    await move(api, who["Ann"], "US")
    first = (await api.query(HISTORY, {"key": "china", "first": 2}))["segment"]["history"]
    assert rows(first) == [("Ann", "EXITED"), ("Bob", "ENTERED")]
    assert first["pageInfo"]["hasNextPage"] and not first["pageInfo"]["hasPreviousPage"]
    assert {e["node"]["segment"]["key"] for e in first["edges"]} == {"china"}
    after = first["pageInfo"]["endCursor"]
    rest = (await api.query(HISTORY, {"key": "china", "after": after}))["segment"]["history"]
    assert rows(rest) == [("Cai", "ENTERED"), ("Ann", "ENTERED")]
    assert not rest["pageInfo"]["hasNextPage"] and rest["pageInfo"]["hasPreviousPage"]
    ann = (await api.query(HISTORY, {"key": "china", "customer": who["Ann"]}))["segment"]
    assert rows(ann["history"]) == [("Ann", "EXITED"), ("Ann", "ENTERED")]
    mine = (await api.query(CUSTOMER_HISTORY, {"id": who["Ann"]}))["customer"]["segmentHistory"]
    assert [(e["node"]["segment"]["key"], e["node"]["change"]) for e in mine["edges"]] == [
        ("china", "EXITED"),
        ("china", "ENTERED"),
    ]


async def test_a_dynamic_segment_has_no_history_and_a_bad_cursor_is_refused(
    api: Api, db: Any
) -> None:
    await people(db)
    await define(api, "china", CHINA)
    empty = (await api.query(HISTORY, {"key": "china"}))["segment"]["history"]
    assert empty == {
        "edges": [],
        "pageInfo": {"hasNextPage": False, "hasPreviousPage": False, "endCursor": None},
    }
    refused = (await api.post(HISTORY, {"key": "china", "after": "nope"})).json()
    assert refused["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"
    not_a_customer = to_global_id("Segment", "00000000-0000-0000-0000-000000000000")
    refused = (await api.post(HISTORY, {"key": "china", "customer": not_a_customer})).json()
    assert refused["errors"][0]["extensions"].pop("requestId")
    assert refused["errors"][0]["extensions"] == {"code": "INVALID_ID", "field": ["customer"]}


async def test_partners_cannot_list_who_entered_a_segment_that_reads_pii(api: Api, db: Any) -> None:
    who = await people(db)
    await define(api, "china", CHINA, materialized=True)
    await define(api, "a_names", NAMED, materialized=True)
    refused = (await api.post(HISTORY, {"key": "a_names"}, role=Role.PARTNER)).json()
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    allowed = await api.query(HISTORY, {"key": "china"}, role=Role.PARTNER)
    assert len(allowed["segment"]["history"]["edges"]) == 2
    query = CUSTOMER_HISTORY.replace("customer { displayName }", "")
    seen = {}
    for role in (Role.ADMIN, Role.PARTNER):
        data = await api.query(query, {"id": who["Ann"]}, role=role)
        edges = data["customer"]["segmentHistory"]["edges"]
        seen[role] = sorted(e["node"]["segment"]["key"] for e in edges)
    assert seen == {Role.ADMIN: ["a_names", "china"], Role.PARTNER: ["china"]}


SEGMENT_PAGE = """{ segments { edges { node { key
  history(first: 5) { edges { node { change customer { displayName city } } } } } } } }"""
CUSTOMER_PAGE = """query($n: Int) { customers(first: $n) { edges { node { displayName
  segmentHistory(first: 5) { edges { node { change segment { key } } } } } } } }"""


async def test_history_lists_cost_the_same_statements_for_one_owner_and_for_many(
    api: Api, db: Any
) -> None:
    await people(db)
    await define(api, "china", CHINA, materialized=True)
    api.sql.reset()
    await api.query(SEGMENT_PAGE)
    one_segment = api.sql.count
    for key in ("china2", "china3"):
        await define(api, key, CHINA, materialized=True)
    api.sql.reset()
    data = await api.query(SEGMENT_PAGE)
    assert all(len(e["node"]["history"]["edges"]) == 2 for e in data["segments"]["edges"])
    assert api.sql.count == one_segment, api.sql.statements
    costs = {}
    for size in (1, 3):
        api.sql.reset()
        data = await api.query(CUSTOMER_PAGE, {"n": size})
        assert len(data["customers"]["edges"]) == size
        costs[size] = api.sql.count
    assert costs[1] == costs[3], costs
