"""Probable duplicates over GraphQL: admins find, list, accept and reject them; every other
role is refused."""

from __future__ import annotations

import pytest

from api.ids import to_global_id
from domain.access.keys import Role
from domain.duplicates import runs
from service.settings import Settings
from tests.builders import make_customer
from tests.conftest import Api
from tests.integration.test_duplicates import OTHER_ZHANG, WEI_ZHANG, ZHANG

FIND = """mutation($customers: [ID!]) { findDuplicates(customers: $customers) {
  suggested errors { code field message } } }"""
LIST = """query($status: DuplicateStatus, $customer: ID, $minScore: Float, $first: Int, $after: String) {
  duplicateSuggestions(status: $status, customer: $customer, minScore: $minScore, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { id score status createdAt customers { id firstName }
                          evidence { field comparison weight } } } } }"""
ACCEPT = """mutation($id: ID!, $reason: String) { acceptDuplicate(id: $id, reason: $reason) {
  merge { id mergedId reason via survivor { id } } customer { id status } errors { code field } } }"""
REJECT = """mutation($id: ID!, $reason: String) { rejectDuplicate(id: $id, reason: $reason) {
  suggestion { id status } errors { code field } } }"""


async def _suggested(api: Api) -> list[dict]:
    assert (await api.query(FIND))["findDuplicates"] == {"suggested": 1, "errors": []}
    return [
        e["node"]
        for e in (await api.query(LIST, {"status": "OPEN"}))["duplicateSuggestions"]["edges"]
    ]


async def test_an_admin_finds_and_lists_a_pair_with_its_evidence(api: Api) -> None:
    one = to_global_id("Customer", await make_customer(api.db, **ZHANG))
    two = to_global_id("Customer", await make_customer(api.db, **WEI_ZHANG))
    await make_customer(api.db, **OTHER_ZHANG)
    [node] = await _suggested(api)
    assert {c["id"] for c in node["customers"]} == {one, two}
    assert node["status"] == "OPEN" and 0.95 <= node["score"] <= 1
    assert {e["field"]: e["comparison"] for e in node["evidence"]}["phone"] == "typo"
    by_customer = (await api.query(LIST, {"customer": two}))["duplicateSuggestions"]
    assert by_customer["totalCount"] == 1
    too_high = (await api.query(LIST, {"minScore": 1.01}))["duplicateSuggestions"]
    assert too_high == {
        "totalCount": 0,
        "pageInfo": {"hasNextPage": False, "endCursor": None},
        "edges": [],
    }


async def test_find_duplicates_for_named_customers_scores_them_against_the_stored_ones(
    api: Api,
) -> None:
    await make_customer(api.db, **ZHANG)
    assert (await api.query(FIND))["findDuplicates"]["suggested"] == 0
    new = to_global_id("Customer", await make_customer(api.db, **WEI_ZHANG))
    found = (await api.query(FIND, {"customers": [new]}))["findDuplicates"]
    assert found == {"suggested": 1, "errors": []}
    bad = (await api.query(FIND, {"customers": [new, "nope"]}))["findDuplicates"]
    assert [(e["code"], e["field"]) for e in bad["errors"]] == [("INVALID_ID", ["customers", "1"])]


async def test_accepting_merges_and_rejecting_is_remembered(api: Api) -> None:
    older = to_global_id("Customer", await make_customer(api.db, **ZHANG))
    newer = to_global_id("Customer", await make_customer(api.db, **WEI_ZHANG))
    [node] = await _suggested(api)
    accepted = (await api.query(ACCEPT, {"id": node["id"], "reason": "same man"}))[
        "acceptDuplicate"
    ]
    assert accepted["errors"] == [] and accepted["customer"] == {"id": older, "status": "ACTIVE"}
    assert accepted["merge"]["mergedId"] == newer and accepted["merge"]["survivor"]["id"] == older
    assert accepted["merge"]["via"] == "duplicate"
    again = (await api.query(ACCEPT, {"id": node["id"]}))["acceptDuplicate"]
    assert (
        again["errors"] == [{"code": "ALREADY_DECIDED", "field": ["id"]}] and again["merge"] is None
    )
    listed = (await api.query(LIST, {"status": "ACCEPTED"}))["duplicateSuggestions"]
    assert [e["node"]["id"] for e in listed["edges"]] == [node["id"]]


async def test_a_rejected_suggestion_stays_rejected_after_another_run(api: Api) -> None:
    await make_customer(api.db, **ZHANG)
    await make_customer(api.db, **WEI_ZHANG)
    [node] = await _suggested(api)
    rejected = (await api.query(REJECT, {"id": node["id"], "reason": "twins"}))["rejectDuplicate"]
    assert rejected == {"suggestion": {"id": node["id"], "status": "REJECTED"}, "errors": []}
    assert (await api.query(FIND))["findDuplicates"]["suggested"] == 0
    assert (await api.query(LIST, {"status": "OPEN"}))["duplicateSuggestions"]["totalCount"] == 0
    missing = to_global_id("DuplicateSuggestion", "00000000-0000-0000-0000-000000000000")
    gone = (await api.query(REJECT, {"id": missing}))["rejectDuplicate"]
    assert gone["errors"] == [{"code": "NOT_FOUND", "field": ["id"]}]


@pytest.mark.parametrize("role", [Role.PARTNER, Role.INTEGRATION, Role.FRONTEND])
async def test_only_admins_see_or_decide_duplicates(api: Api, role: Role) -> None:
    await make_customer(api.db, **ZHANG)
    await make_customer(api.db, **WEI_ZHANG)
    [node] = await _suggested(api)
    for document, variables in (
        (LIST, {}),
        (FIND, {}),
        (ACCEPT, {"id": node["id"]}),
        (REJECT, {"id": node["id"]}),
    ):
        body = (await api.post(document, variables, role=role)).json()
        assert body["data"] is None, body
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    still = (await api.query(LIST, {"status": "OPEN"}))["duplicateSuggestions"]
    assert still["totalCount"] == 1


async def test_a_page_of_suggestions_costs_the_same_statements_whatever_its_size(
    api: Api, settings: Settings
) -> None:
    for i in range(6):
        await make_customer(api.db, **{**ZHANG, "email": f"zw{i}a@qq.com", "phone": None})
        await make_customer(api.db, **{**WEI_ZHANG, "email": f"zw{i}b@qq.com", "phone": None})
    everything = settings.model_copy(update={"duplicate_threshold": 0.0})
    await runs.find_all(api.db, everything)
    costs = {}
    for size in (1, 6):
        api.sql.reset()
        page = (await api.query(LIST, {"first": size}))["duplicateSuggestions"]
        assert len(page["edges"]) == size
        costs[size] = api.sql.count
    assert costs[1] == costs[6], api.sql.statements
