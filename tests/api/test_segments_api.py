"""The condition language and segments over GraphQL: filtering customers, previews, segment
administration with its refusals and paths, members, and the cost of Customer.segments."""

from __future__ import annotations

from typing import Any

from api.ids import to_global_id
from domain.access.keys import Role
from tests.builders import make_customer
from tests.conftest import Api

CHINA = {"attribute": {"field": "country", "op": "EQ", "value": "CN"}}
DEFINE = """mutation($input: SegmentInput!) { defineSegment(input: $input) {
  segment { id key name materialized memberCount lastRefreshedAt condition }
  errors { code field message } } }"""
UPDATE = """mutation($id: ID!, $patch: SegmentPatch!) { updateSegment(id: $id, patch: $patch) {
  segment { key name memberCount materialized } errors { code field message } } }"""
DELETE = (
    """mutation($id: ID!) { deleteSegment(id: $id) { deletedId errors { code field message } } }"""
)
CUSTOMERS = """query($where: ConditionInput, $segment: ID, $first: Int, $after: String) {
  customers(where: $where, segment: $segment, first: $first, after: $after) {
    totalCount edges { node { displayName } } pageInfo { hasNextPage endCursor } } }"""


async def population(db: Any) -> None:
    for name, country in (("Ann", "CN"), ("Bob", "US"), ("Cai", "CN"), ("Dan", None)):
        await make_customer(
            db, display_name=name, country=country, tags=["vip"] if name in ("Ann", "Bob") else []
        )


async def define(
    api: Api, key: str, condition: dict[str, Any], materialized: bool = False
) -> dict[str, Any]:
    data = await api.query(
        DEFINE,
        {
            "input": {
                "key": key,
                "name": key.title(),
                "condition": condition,
                "materialized": materialized,
            }
        },
    )
    assert data["defineSegment"]["errors"] == [], data
    return data["defineSegment"]["segment"]  # type: ignore[no-any-return]


def names(connection: dict[str, Any]) -> list[str]:
    return [edge["node"]["displayName"] for edge in connection["edges"]]


async def test_customers_are_filtered_by_a_condition_and_counted(api: Api, db: Any) -> None:
    await population(db)
    where = {"and": [CHINA, {"tag": {"key": "vip"}}]}
    data = await api.query(CUSTOMERS, {"where": where})
    assert (data["customers"]["totalCount"], names(data["customers"])) == (1, ["Ann"])
    data = await api.query(CUSTOMERS, {"where": {"not": CHINA}})
    assert names(data["customers"]) == ["Bob", "Dan"]


async def test_a_bad_filter_is_an_error_with_the_path_of_the_bad_node(api: Api, db: Any) -> None:
    where = {"and": [CHINA, {"tag": {"key": "no-such-tag"}}]}
    body = (await api.post(CUSTOMERS, {"where": where})).json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"].pop("requestId")
    assert body["errors"][0]["extensions"] == {
        "code": "UNKNOWN_TAG",
        "field": ["where", "and", "1", "tag"],
    }


async def test_a_condition_node_takes_exactly_one_kind(api: Api) -> None:
    body = (await api.post(CUSTOMERS, {"where": {"and": [], "or": []}})).json()
    assert body["errors"] and body.get("data") is None


async def test_preview_counts_and_samples_without_saving(api: Api, db: Any) -> None:
    await population(db)
    query = """query($c: ConditionInput!, $n: Int) { previewSegment(condition: $c, sample: $n) {
      count sample { displayName } } }"""
    data = await api.query(query, {"c": CHINA, "n": 1}, role=Role.FRONTEND)
    assert data["previewSegment"] == {"count": 2, "sample": [{"displayName": "Ann"}]}
    data = await api.query(query, {"c": CHINA, "n": 0}, role=Role.PARTNER)
    assert data["previewSegment"] == {"count": 2, "sample": []}
    assert (await api.query("{ segments { totalCount } }"))["segments"]["totalCount"] == 0
    bad = {"or": [CHINA, {"stage": {"in": ["nirvana"]}}]}
    body = (await api.post(query, {"c": bad})).json()
    assert body["errors"][0]["extensions"].pop("requestId")
    assert body["errors"][0]["extensions"] == {
        "code": "UNKNOWN_STAGE",
        "field": ["condition", "or", "1", "stage"],
    }


async def test_segments_are_defined_read_updated_and_deleted_by_admins(api: Api, db: Any) -> None:
    await population(db)
    created = await define(api, "china", CHINA, materialized=True)
    assert (
        created["memberCount"] == 2 and created["lastRefreshedAt"] and created["condition"] == CHINA
    )
    by_key = await api.query('{ segment(key: "china") { id name } }', role=Role.PARTNER)
    assert by_key["segment"] == {"id": created["id"], "name": "China"}
    listed = await api.query("{ segments { totalCount edges { node { key } } } }")
    assert listed["segments"]["totalCount"] == 1
    node = await api.query("query($id: ID!) { node(id: $id) { id } }", {"id": created["id"]})
    assert node["node"] == {"id": created["id"]}
    patch = {"name": "Mainland", "condition": {"attribute": {"field": "country", "op": "EXISTS"}}}
    updated = (await api.query(UPDATE, {"id": created["id"], "patch": patch}))["updateSegment"]
    assert updated == {
        "segment": {"key": "china", "name": "Mainland", "memberCount": 3, "materialized": True},
        "errors": [],
    }
    deleted = (await api.query(DELETE, {"id": created["id"]}))["deleteSegment"]
    assert deleted == {"deletedId": created["id"], "errors": []}
    assert (await api.query('{ segment(key: "china") { id } }'))["segment"] is None


async def test_refused_mutations_name_the_bad_field_and_write_nothing(api: Api, db: Any) -> None:
    await population(db)
    bad = {"key": "x", "name": "X", "condition": {"and": [CHINA, {"tag": {"key": "nope"}}]}}
    payload = (await api.query(DEFINE, {"input": bad}))["defineSegment"]
    assert payload["segment"] is None
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [
        ("UNKNOWN_TAG", ["input", "condition", "and", "1", "tag"])
    ]
    china = await define(api, "china", CHINA)
    await define(api, "abroad", {"segment": {"key": "china", "member": False}})
    cycle = {"condition": {"segment": {"key": "abroad"}}}
    payload = (await api.query(UPDATE, {"id": china["id"], "patch": cycle}))["updateSegment"]
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [
        ("SEGMENT_CYCLE", ["patch", "condition", "segment"])
    ]
    payload = (await api.query(DELETE, {"id": china["id"]}))["deleteSegment"]
    assert payload["deletedId"] is None
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [("SEGMENT_IN_USE", ["id"])]
    assert (await api.query("{ segments { totalCount } }"))["segments"]["totalCount"] == 2


async def test_only_admins_administer_segments(api: Api) -> None:
    variables = {"input": {"key": "china", "name": "China", "condition": CHINA}}
    for role in (Role.FRONTEND, Role.INTEGRATION, Role.PARTNER):
        body = (await api.post(DEFINE, variables, role=role)).json()
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await api.query("{ segments { totalCount } }"))["segments"]["totalCount"] == 0


async def test_members_page_through_a_segment_in_a_stable_order(api: Api, db: Any) -> None:
    await population(db)
    for materialized in (False, True):
        key = f"china-{int(materialized)}"
        segment = await define(api, key, CHINA, materialized)
        query = """query($id: ID!, $after: String) { node(id: $id) { ... on Segment {
          memberCount members(first: 1, after: $after) { totalCount edges { node { displayName } }
          pageInfo { hasNextPage endCursor } } } } }"""
        first = (await api.query(query, {"id": segment["id"]}))["node"]
        assert first["memberCount"] == 2 and first["members"]["totalCount"] == 2
        after = first["members"]["pageInfo"]["endCursor"]
        second = (await api.query(query, {"id": segment["id"], "after": after}))["node"]
        assert names(first["members"]) + names(second["members"]) == ["Ann", "Cai"]
        assert second["members"]["pageInfo"]["hasNextPage"] is False
        filtered = await api.query(
            CUSTOMERS, {"segment": segment["id"], "where": {"tag": {"key": "vip"}}}
        )
        assert names(filtered["customers"]) == ["Ann"]


async def test_refresh_segment_picks_up_changes(api: Api, db: Any) -> None:
    await population(db)
    segment = await define(api, "china", CHINA, materialized=True)
    await make_customer(db, display_name="Eve", country="CN")
    stale = await api.query('{ segment(key: "china") { memberCount } }')
    assert stale["segment"]["memberCount"] == 2
    refreshed = await api.query(
        "mutation($id: ID!) { refreshSegment(id: $id) { segment { memberCount } errors { code } } }",
        {"id": segment["id"]},
    )
    assert refreshed["refreshSegment"] == {"segment": {"memberCount": 3}, "errors": []}
    unknown = to_global_id("Segment", "00000000-0000-0000-0000-000000000000")
    missing = await api.query(
        "mutation($id: ID!) { refreshSegment(id: $id) { errors { code field } } }", {"id": unknown}
    )
    assert missing["refreshSegment"]["errors"] == [{"code": "NOT_FOUND", "field": ["id"]}]


async def test_customer_segments_cost_the_same_for_a_page_of_1_and_of_50(api: Api, db: Any) -> None:
    for i in range(50):
        await make_customer(
            db, display_name=f"c{i}", country="CN" if i % 2 else "US", tags=["vip"] if i % 3 else []
        )
    await define(api, "china", CHINA)
    await define(api, "vip", {"tag": {"key": "vip"}})
    await define(api, "big", {"metric": {"name": "FREQUENCY", "op": "GTE", "value": 0}})
    await define(api, "stored-china", CHINA, materialized=True)
    await define(api, "stored-vip", {"tag": {"key": "vip"}}, materialized=True)
    query = "query($n: Int) { customers(first: $n) { edges { node { displayName segments { key } } } } }"
    costs = {}
    for size in (1, 50):
        api.sql.reset()
        data = await api.query(query, {"n": size})
        assert len(data["customers"]["edges"]) == size
        costs[size] = api.sql.count
    assert costs[1] == costs[50] <= 10, (costs, api.sql.statements)
    first = data["customers"]["edges"][1]["node"]  # c1: CN, vip
    assert [s["key"] for s in first["segments"]] == [
        "big",
        "china",
        "stored-china",
        "stored-vip",
        "vip",
    ]
