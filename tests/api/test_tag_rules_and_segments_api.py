"""RULE tags and tagging by segment over GraphQL: conditions with their refusals and paths,
RULE_TAG_READ_ONLY, and bulk tagging of a whole segment in a bounded number of statements."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select

from api.ids import to_global_id
from domain.access.keys import Role
from store.models import Customer, OutboxEvent, TagHistory
from store.types import utcnow
from tests.builders import make_customer
from tests.conftest import Api

CHINA = {"attribute": {"field": "country", "op": "EQ", "value": "CN"}}
DEFINE_TAG = """mutation($input: TagDefinitionInput!) { defineTag(input: $input) {
  tag { key kind condition customerCount } errors { code field message } } }"""
UPDATE_TAG = """mutation($key: String!, $patch: TagDefinitionPatch!) { updateTag(key: $key, patch: $patch) {
  tag { key condition customerCount } errors { code field message } } }"""
DEFINE_SEGMENT = """mutation($input: SegmentInput!) { defineSegment(input: $input) {
  segment { id memberCount } errors { code field message } } }"""
TAG = """mutation($tag: String!, $ids: [ID!], $segment: ID, $value: String) {
  tagCustomers(tag: $tag, customers: $ids, segment: $segment, value: $value) {
  affected errors { code field message } } }"""
UNTAG = """mutation($tag: String!, $ids: [ID!], $segment: ID) {
  untagCustomers(tag: $tag, customers: $ids, segment: $segment) { affected errors { code field } } }"""
COUNT = """query($key: String!) { tagDefinition(key: $key) { customerCount } }"""


async def rule_tag(api: Api, key: str, condition: Any) -> dict[str, Any]:
    data = await api.query(
        DEFINE_TAG, {"input": {"key": key, "name": key, "kind": "RULE", "condition": condition}}
    )
    return data["defineTag"]  # type: ignore[no-any-return]


async def segment(api: Api, key: str, condition: Any, materialized: bool = False) -> str:
    data = await api.query(
        DEFINE_SEGMENT,
        {"input": {"key": key, "name": key, "condition": condition, "materialized": materialized}},
    )
    assert data["defineSegment"]["errors"] == [], data
    return data["defineSegment"]["segment"]["id"]  # type: ignore[no-any-return]


async def count(api: Api, key: str) -> int:
    return (await api.query(COUNT, {"key": key}))["tagDefinition"]["customerCount"]  # type: ignore[no-any-return]


async def test_a_rule_tag_is_defined_with_a_condition_and_follows_profile_edits(
    api: Api, db
) -> None:
    ann = await make_customer(db, country="CN")
    bob = await make_customer(db, country="US")
    made = await rule_tag(api, "local", CHINA)
    assert made == {
        "tag": {"key": "local", "kind": "RULE", "condition": CHINA, "customerCount": 1},
        "errors": [],
    }
    edit = """mutation($id: ID!, $c: String) { updateCustomer(id: $id, patch: {country: $c}) { errors { code } } }"""
    await api.query(edit, {"id": to_global_id("Customer", bob), "c": "CN"})
    assert await count(api, "local") == 2
    await api.query(edit, {"id": to_global_id("Customer", ann), "c": "JP"})
    assert await count(api, "local") == 1
    read = await api.query(
        """query($id: ID!) { customer(id: $id) { tags { tag { key } }
        tagHistory(first: 5) { edges { node { action source } } } } }""",
        {"id": to_global_id("Customer", ann)},
    )
    assert read["customer"]["tags"] == []
    assert [e["node"] for e in read["customer"]["tagHistory"]["edges"]] == [
        {"action": "REMOVED", "source": "rule"},
        {"action": "ASSIGNED", "source": "rule"},
    ]


async def test_rule_tag_conditions_are_refused_with_the_path_of_the_bad_node(api: Api) -> None:
    bad = await rule_tag(api, "bad_rule", {"and": [CHINA, {"tag": {"key": "missing"}}]})
    assert bad["tag"] is None
    assert [(e["code"], e["field"]) for e in bad["errors"]] == [
        ("UNKNOWN_TAG", ["input", "condition", "and", "1", "tag"])
    ]
    assert (await rule_tag(api, "good_rule", CHINA))["errors"] == []
    cycle = (
        await api.query(
            UPDATE_TAG, {"key": "good_rule", "patch": {"condition": {"tag": {"key": "good_rule"}}}}
        )
    )["updateTag"]
    assert [(e["code"], e["field"]) for e in cycle["errors"]] == [
        ("TAG_CYCLE", ["patch", "condition"])
    ]
    missing = (
        await api.query(DEFINE_TAG, {"input": {"key": "no_cond", "name": "N", "kind": "RULE"}})
    )["defineTag"]
    assert [(e["code"], e["field"]) for e in missing["errors"]] == [
        ("INVALID_INPUT", ["input", "condition"])
    ]
    assert (await api.query("{ tagDefinitions { key } }"))["tagDefinitions"] == [
        {"key": "good_rule"}
    ]


async def test_manual_tagging_of_a_rule_tag_is_refused_over_the_api(api: Api, db) -> None:
    ann = to_global_id("Customer", await make_customer(db, country="US"))
    await rule_tag(api, "local", CHINA)
    for mutation, name in ((TAG, "tagCustomers"), (UNTAG, "untagCustomers")):
        payload = (await api.query(mutation, {"tag": "local", "ids": [ann]}, role=Role.FRONTEND))[
            name
        ]
        assert payload["affected"] == 0
        assert [(e["code"], e["field"]) for e in payload["errors"]] == [
            ("RULE_TAG_READ_ONLY", ["tag"])
        ]
    assert await count(api, "local") == 0


async def _population(db: Any, countries: dict[str, int]) -> None:
    """Customers straight into the table, one INSERT for all of them."""
    now = utcnow()
    rows = [
        {
            "country": country,
            "stage": "awareness",
            "stage_entered_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for country, n in countries.items()
        for _ in range(n)
    ]
    async with db.write() as session:
        await session.execute(insert(Customer), rows)


async def test_tagging_a_segment_of_10000_costs_the_statements_of_a_segment_of_10(
    api: Api, db
) -> None:
    await _population(db, {"CN": 10_000, "SG": 10})
    await api.query(
        DEFINE_TAG, {"input": {"key": "campaign", "name": "Campaign", "valueType": "TEXT"}}
    )
    big = await segment(api, "china", CHINA)
    small = await segment(
        api, "singapore", {"attribute": {"field": "country", "op": "EQ", "value": "SG"}}
    )
    costs = {}
    for name, seg, size in (("small", small, 10), ("big", big, 10_000)):
        api.sql.reset()
        payload = (
            await api.query(
                TAG, {"tag": "campaign", "segment": seg, "value": "spring"}, role=Role.INTEGRATION
            )
        )["tagCustomers"]
        costs[name] = api.sql.count
        assert payload == {"affected": size, "errors": []}
    # The write, then the derived-state batch the harness runs after it (domain.derived: the
    # claim, metrics, RULE tags, lifecycle, segments, the marks cleared), whatever the size.
    assert costs["small"] == costs["big"] <= 32, (costs, api.sql.statements)
    assert await count(api, "campaign") == 10_010
    api.sql.reset()
    untagged = (await api.query(UNTAG, {"tag": "campaign", "segment": big}))["untagCustomers"]
    assert untagged == {"affected": 10_000, "errors": []} and api.sql.count <= 32, (
        api.sql.statements
    )
    assert await count(api, "campaign") == 10
    async with db.read() as session:
        actions = dict(
            (
                await session.execute(
                    select(TagHistory.action, func.count()).group_by(TagHistory.action)
                )
            ).all()
        )
        events = dict(
            (
                await session.execute(
                    select(OutboxEvent.kind, func.count())
                    .where(OutboxEvent.kind.startswith("tag."))
                    .group_by(OutboxEvent.kind)
                )
            ).all()
        )
    assert actions == {"ASSIGNED": 10_010, "REMOVED": 10_000}
    assert events == {"tag.assigned": 10_010, "tag.removed": 10_000}


async def test_tagging_by_a_materialized_segment_uses_its_stored_members(api: Api, db) -> None:
    ann = await make_customer(db, country="CN")
    stored = await segment(api, "china_stored", CHINA, materialized=True)
    await make_customer(db, country="CN")  # not a member until the segment is refreshed
    await api.query(DEFINE_TAG, {"input": {"key": "vip", "name": "VIP"}})
    payload = (await api.query(TAG, {"tag": "vip", "segment": stored}))["tagCustomers"]
    assert payload == {"affected": 1, "errors": []}
    read = await api.query(
        "query($id: ID!) { customer(id: $id) { tags { tag { key } } } }",
        {"id": to_global_id("Customer", ann)},
    )
    assert read["customer"]["tags"] == [{"tag": {"key": "vip"}}]


async def test_a_segment_that_reads_the_tag_is_tagged_whole(api: Api, db) -> None:
    for _ in range(3):
        await make_customer(db, country="CN")
    await api.query(DEFINE_TAG, {"input": {"key": "vip", "name": "VIP"}})
    not_vip = await segment(api, "not_vip", {"tag": {"key": "vip", "present": False}})
    payload = (await api.query(TAG, {"tag": "vip", "segment": not_vip}))["tagCustomers"]
    assert payload == {"affected": 3, "errors": []}
    assert await count(api, "vip") == 3
    async with db.read() as session:
        kinds = (
            await session.scalars(
                select(OutboxEvent.kind).where(OutboxEvent.kind == "tag.assigned")
            )
        ).all()
    assert len(kinds) == 3


async def test_tagging_by_an_unknown_segment_or_both_targets_is_refused(api: Api, db) -> None:
    await api.query(DEFINE_TAG, {"input": {"key": "vip", "name": "VIP"}})
    ghost = to_global_id("Segment", "00000000-0000-0000-0000-000000000000")
    payload = (await api.query(TAG, {"tag": "vip", "segment": ghost}))["tagCustomers"]
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [
        ("UNKNOWN_SEGMENT", ["segment"])
    ]
    ann = to_global_id("Customer", await make_customer(db))
    both = (await api.query(TAG, {"tag": "vip", "ids": [ann], "segment": ghost}))["tagCustomers"]
    assert both["affected"] == 0 and both["errors"][0]["code"] == "INVALID_INPUT"
