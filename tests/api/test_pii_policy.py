"""The PII policy beyond the core fields (domain.access.privacy): partners read no PII literal in a
condition, cannot list or count who matches a condition that reads PII (however indirectly),
read no PII tag value, PII custom attribute or free text; admins see all of it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from api.app import create_app
from api.ids import to_global_id
from domain.access.keys import Role
from service.settings import Settings
from tests.api.test_subscriptions import FAST, subscriber
from tests.builders import make_customer
from tests.conftest import Api
from tests.servers import serve_asgi

SECRETS = ("ann@example.com", "Ann Lee", "note about ann", "9000")


async def define(api: Api, kind: str, input: dict[str, Any]) -> dict[str, Any]:
    """defineSegment / defineTag with `input` as a variable; must succeed."""
    mutation, input_type, result = {
        "segment": ("defineSegment", "SegmentInput", "segment { id key }"),
        "tag": ("defineTag", "TagDefinitionInput", "tag { id key pii }"),
    }[kind]
    data = await api.query(
        f"mutation($input: {input_type}!) {{ {mutation}(input: $input) "
        f"{{ {result} errors {{ code field }} }} }}",
        {"input": input},
    )
    payload = data[mutation]
    assert payload["errors"] == [], payload
    return payload[kind]  # type: ignore[no-any-return]


async def declare(api: Api, key: str, pii: bool, role: Role = Role.ADMIN) -> dict[str, Any]:
    response = await api.post(
        "mutation($key: String!, $pii: Boolean!) { declareAttributePii(key: $key, pii: $pii) "
        "{ piiAttributes errors { code field } } }",
        {"key": key, "pii": pii},
        role=role,
    )
    return response.json()  # type: ignore[no-any-return]


async def ann(api: Api) -> str:
    customer = await make_customer(
        api.db,
        display_name="Ann Lee",
        email="ann@example.com",
        country="CN",
        attributes={"salary": 9000, "shoe": 42},
    )
    return to_global_id("Customer", customer)


async def world(api: Api) -> dict[str, str]:
    """Ann, a PII attribute, tags and segments of every kind the policy tells apart."""
    ann_id = await ann(api)
    assert (await declare(api, "salary", True))["data"]["declareAttributePii"] == {
        "piiAttributes": ["salary"],
        "errors": [],
    }
    await define(api, "tag", {"key": "note", "name": "Note", "valueType": "TEXT"})
    email_leaf = {"attribute": {"field": "email", "op": "EQ", "value": "ann@example.com"}}
    gmail = await define(
        api, "tag", {"key": "known", "name": "Known", "kind": "RULE", "condition": email_leaf}
    )
    pii_segment = await define(
        api,
        "segment",
        {
            "key": "pii",
            "name": "PII",
            "condition": {
                "and": [
                    email_leaf,
                    {"attribute": {"field": "attributes.salary", "op": "GT", "value": 9000}},
                    {"attribute": {"field": "attributes.shoe", "op": "EQ", "value": 42}},
                    {"attribute": {"field": "country", "op": "EQ", "value": "CN"}},
                    {"tag": {"key": "note", "op": "EQ", "value": "note about ann"}},
                ]
            },
        },
    )
    outer = await define(
        api,
        "segment",
        {"key": "outer", "name": "Outer", "condition": {"segment": {"key": "pii"}}},
    )
    via_tag = await define(
        api,
        "segment",
        {"key": "via_tag", "name": "Via tag", "condition": {"tag": {"key": "known"}}},
    )
    plain = await define(
        api,
        "segment",
        {
            "key": "cn",
            "name": "CN",
            "condition": {"attribute": {"field": "country", "op": "EQ", "value": "CN"}},
        },
    )
    return {
        "ann": ann_id,
        "known": gmail["id"],
        "pii": pii_segment["id"],
        "outer": outer["id"],
        "via_tag": via_tag["id"],
        "cn": plain["id"],
    }


async def test_condition_literals_on_pii_fields_are_masked_for_partners(api: Api) -> None:
    ids = await world(api)
    query = """query($ann: ID!) {
      segment(key: "pii") { condition }
      segments { edges { node { key condition } } }
      tagDefinition(key: "known") { condition }
      customer(id: $ann) { segments { key condition } }
    }"""
    partner = await api.query(query, {"ann": ids["ann"]}, role=Role.PARTNER)
    shown = json.dumps(partner)
    assert not [s for s in SECRETS if s in shown], shown
    leaves = partner["segment"]["condition"]["and"]
    assert leaves[0] == {"attribute": {"field": "email", "op": "EQ", "value": None}}
    assert leaves[1]["attribute"]["value"] is None  # attributes.salary, declared PII
    assert leaves[2]["attribute"]["value"] == 42 and leaves[3]["attribute"]["value"] == "CN"
    assert leaves[4]["tag"]["value"] is None and leaves[4]["tag"]["key"] == "note"
    assert partner["tagDefinition"]["condition"]["attribute"]["value"] is None
    # Membership of a segment that reads PII would tell who matches: left out for partners.
    assert [s["key"] for s in partner["customer"]["segments"]] == ["cn"]

    admin = await api.query(query, {"ann": ids["ann"]})
    assert all(s in json.dumps(admin) for s in ("ann@example.com", "note about ann", "9000"))
    assert {s["key"] for s in admin["customer"]["segments"]} == {"cn", "via_tag"}


MEMBER_QUERIES = {
    "memberCount": ('{ segment(key: "pii") { memberCount } }', None),
    "members": ('{ segment(key: "pii") { members { edges { node { id } } } } }', None),
    "nested memberCount": ('{ segment(key: "outer") { memberCount } }', None),
    "via RULE tag": ("{ segments { edges { node { key memberCount } } } }", None),
    "customers(segment:)": ("query($s: ID) { customers(segment: $s) { totalCount } }", "outer"),
    "where segment": ('{ customers(where: {segment: {key: "via_tag"}}) { totalCount } }', None),
    "preview": ('{ previewSegment(condition: {segment: {key: "outer"}}) { count } }', None),
    "preview RULE tag": ('{ previewSegment(condition: {tag: {key: "known"}}) { count } }', None),
    "RULE tag count": ('{ tagDefinition(key: "known") { customerCount } }', None),
    "funnel": ("query($s: ID) { funnel(segment: $s) { stages { current } } }", "pii"),
}


@pytest.mark.parametrize("name", list(MEMBER_QUERIES))
async def test_partners_cannot_list_or_count_who_matches_a_condition_reading_pii(
    api: Api, name: str
) -> None:
    ids = await world(api)
    query, segment = MEMBER_QUERIES[name]
    variables = {"s": ids[segment]} if segment else {}
    body = (await api.post(query, variables, role=Role.PARTNER)).json()
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body
    admin = (await api.post(query, variables)).json()
    assert not admin.get("errors"), admin


async def test_partners_may_count_segments_that_read_no_pii(api: Api) -> None:
    ids = await world(api)
    data = await api.query(
        """query($s: ID) { segment(key: "cn") { memberCount }
             customers(segment: $s) { totalCount }
             tagDefinition(key: "note") { customerCount } }""",
        {"s": ids["cn"]},
        role=Role.PARTNER,
    )
    assert data == {
        "segment": {"memberCount": 1},
        "customers": {"totalCount": 1},
        "tagDefinition": {"customerCount": 0},
    }


TAGS = """query($id: ID!) { customer(id: $id) {
  tags { tag { key pii } value }
  tagHistory { edges { node { tag { key } oldValue newValue } } } } }"""


async def tag(api: Api, key: str, customer: str, value: str) -> None:
    data = await api.query(
        "mutation($t: String!, $c: ID!, $v: String) { tagCustomers(tag: $t, customers: [$c], "
        "value: $v) { affected errors { code } } }",
        {"t": key, "c": customer, "v": value},
    )
    assert data["tagCustomers"] == {"affected": 1, "errors": []}


async def test_pii_tag_values_are_masked_for_partners_and_text_tags_are_pii_by_default(
    api: Api,
) -> None:
    ann_id = await ann(api)
    assert (await define(api, "tag", {"key": "note", "name": "N", "valueType": "TEXT"}))["pii"]
    plain = {"key": "remark", "name": "R", "valueType": "TEXT", "pii": False}
    assert not (await define(api, "tag", plain))["pii"]
    tier = {"key": "tier", "name": "T", "valueType": "ENUM", "allowedValues": ["gold"]}
    assert not (await define(api, "tag", tier))["pii"]
    score = {"key": "score", "name": "S", "valueType": "NUMBER", "pii": True}
    assert (await define(api, "tag", score))["pii"]
    for key, value in (("note", "note about ann"), ("remark", "ok"), ("tier", "gold")):
        await tag(api, key, ann_id, value)
    await tag(api, "score", ann_id, "9000")
    await tag(api, "score", ann_id, "9001")  # a change: the old value is in history too

    partner = (await api.query(TAGS, {"id": ann_id}, role=Role.PARTNER))["customer"]
    values = {t["tag"]["key"]: t["value"] for t in partner["tags"]}
    assert values == {"note": None, "remark": "ok", "tier": "gold", "score": None}
    assert not [s for s in SECRETS if s in json.dumps(partner)], partner
    history = [e["node"] for e in partner["tagHistory"]["edges"]]
    for entry in history:
        if entry["tag"]["key"] in ("note", "score"):
            assert entry["oldValue"] is None and entry["newValue"] is None, entry
    assert {"tag": {"key": "remark"}, "oldValue": None, "newValue": "ok"} in history

    admin = (await api.query(TAGS, {"id": ann_id}))["customer"]
    values = {t["tag"]["key"]: t["value"] for t in admin["tags"]}
    assert values == {"note": "note about ann", "remark": "ok", "tier": "gold", "score": "9001"}
    assert {e["node"]["oldValue"] for e in admin["tagHistory"]["edges"]} - {None}  # 9000

    # A partner may test that a PII tag is held, not what its value is.
    refused = (
        await api.post(
            '{ customers(where: {tag: {key: "note", op: EQ, value: "x"}}) { totalCount } }',
            role=Role.PARTNER,
        )
    ).json()
    assert refused["errors"][0]["extensions"].pop("requestId")
    assert refused["errors"][0]["extensions"] == {
        "code": "FORBIDDEN",
        "field": ["where", "tag", "value"],
    }
    held = '{ customers(where: {tag: {key: "note"}}) { totalCount } }'
    assert (await api.query(held, role=Role.PARTNER))["customers"]["totalCount"] == 1


async def test_updating_a_tag_sets_or_keeps_its_pii_flag(api: Api) -> None:
    await define(api, "tag", {"key": "remark", "name": "R", "valueType": "TEXT"})
    update = """mutation($patch: TagDefinitionPatch!) { updateTag(key: "remark", patch: $patch) {
      tag { pii valueType } errors { code } } }"""
    off = await api.query(update, {"patch": {"pii": False}})
    assert off["updateTag"] == {"tag": {"pii": False, "valueType": "TEXT"}, "errors": []}
    kept = await api.query(update, {"patch": {"name": "Remark"}})
    assert kept["updateTag"]["tag"]["pii"] is False
    retyped = await api.query(update, {"patch": {"valueType": "NUMBER"}})
    assert retyped["updateTag"]["tag"] == {"pii": False, "valueType": "NUMBER"}
    back = await api.query(update, {"patch": {"valueType": "TEXT"}})
    assert back["updateTag"]["tag"] == {"pii": True, "valueType": "TEXT"}


async def test_custom_attributes_declared_pii_are_masked_and_not_filterable_for_partners(
    api: Api,
) -> None:
    ann_id = await ann(api)
    read = "query($id: ID!) { customer(id: $id) { attributes } }"
    assert (await api.query(read, {"id": ann_id}, role=Role.PARTNER))["customer"]["attributes"] == {
        "salary": 9000,
        "shoe": 42,
    }
    assert (await declare(api, "salary", True))["data"]["declareAttributePii"]["errors"] == []
    assert (await api.query("{ piiAttributes }"))["piiAttributes"] == ["salary"]

    partner = await api.query(read, {"id": ann_id}, role=Role.PARTNER)
    assert partner["customer"]["attributes"] == {"shoe": 42}
    admin = await api.query(read, {"id": ann_id})
    assert admin["customer"]["attributes"] == {"salary": 9000, "shoe": 42}
    by_salary = (
        '{ customers(where: {attribute: {field: "attributes.salary", op: GT, value: 1}}) '
        "{ totalCount } }"
    )
    refused = (await api.post(by_salary, role=Role.PARTNER)).json()
    assert refused["errors"][0]["extensions"].pop("requestId")
    assert refused["errors"][0]["extensions"] == {
        "code": "FORBIDDEN",
        "field": ["where", "attribute", "field"],
    }
    assert (await api.query(by_salary))["customers"]["totalCount"] == 1

    assert (await declare(api, "salary", False))["data"]["declareAttributePii"] == {
        "piiAttributes": [],
        "errors": [],
    }
    partner = await api.query(read, {"id": ann_id}, role=Role.PARTNER)
    assert partner["customer"]["attributes"] == {"salary": 9000, "shoe": 42}


@pytest.mark.parametrize("key", ["", 'a"b', "x" * 201, "a\\b"])
async def test_an_unusable_attribute_key_is_refused(api: Api, key: str) -> None:
    body = await declare(api, key, True)
    assert body["data"]["declareAttributePii"] == {
        "piiAttributes": None,
        "errors": [{"code": "INVALID_VALUE", "field": ["key"]}],
    }
    assert (await api.query("{ piiAttributes }"))["piiAttributes"] == []


async def test_only_admins_declare_pii_attributes(api: Api) -> None:
    for role in (Role.PARTNER, Role.FRONTEND, Role.INTEGRATION):
        body = await declare(api, "salary", True, role=role)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body
        listed = (await api.post("{ piiAttributes }", role=role)).json()
        assert listed["errors"][0]["extensions"]["code"] == "FORBIDDEN", listed
    assert (await api.query("{ piiAttributes }"))["piiAttributes"] == []


async def merge_with_reason(api: Api) -> tuple[str, str]:
    survivor = await ann(api)
    other = to_global_id("Customer", await make_customer(api.db, country="CN"))
    data = await api.query(
        """mutation($s: ID!, $m: ID!) { mergeCustomers(survivor: $s, merged: $m,
             reason: "Ann Lee phoned") { merge { id } errors { code } } }""",
        {"s": survivor, "m": other},
    )
    assert data["mergeCustomers"]["errors"] == []
    return survivor, other


async def test_merge_and_stage_reasons_are_masked_for_partners(api: Api) -> None:
    survivor, _ = await merge_with_reason(api)
    moved = await api.query(
        """mutation($id: ID!) { setStage(customer: $id, stage: "consideration",
             reason: "Ann Lee asked", force: true) { errors { code } } }""",
        {"id": survivor},
    )
    assert moved["setStage"]["errors"] == []
    query = """query($id: ID!) { customer(id: $id) { merges { reason }
      stageHistory { reason } } }"""
    partner = (await api.query(query, {"id": survivor}, role=Role.PARTNER))["customer"]
    assert partner["merges"] == [{"reason": "[masked]"}]
    assert "Ann" not in json.dumps(partner) and partner["stageHistory"][-1]["reason"] is None
    admin = (await api.query(query, {"id": survivor}))["customer"]
    assert admin["merges"] == [{"reason": "Ann Lee phoned"}]
    assert admin["stageHistory"][-1]["reason"].endswith("Ann Lee asked")


async def test_change_events_carry_no_free_text_or_pii_tag_value_to_partners(
    api: Api, settings: Settings
) -> None:
    ann_id = await ann(api)
    await define(api, "tag", {"key": "note", "name": "N", "valueType": "TEXT"})
    await define(api, "tag", {"key": "tier", "name": "T", "valueType": "ENUM",
                              "allowedValues": ["gold"]})  # fmt: skip
    app = create_app(settings.model_copy(update={**FAST, "redis_url": None}))
    kinds = ["tag.assigned", "customer.merged"]
    async with (
        serve_asgi(app) as url,
        subscriber(url, api.keys[Role.PARTNER]) as partner,
        subscriber(url, api.keys[Role.ADMIN]) as admin,
    ):
        await partner.subscribe({"kinds": kinds})
        await admin.subscribe({"kinds": kinds})
        await tag(api, "note", ann_id, "note about ann")
        await tag(api, "tier", ann_id, "gold")
        await merge_with_reason(api)
        seen = {}
        for name, client in (("partner", partner), ("admin", admin)):
            seen[name] = [await client.event() for _ in range(3)]
    by_kind = {
        name: {(e["kind"], e["data"].get("tag")): e["data"] for e in events}
        for name, events in seen.items()
    }
    assert by_kind["partner"][("tag.assigned", "note")]["value"] is None
    assert by_kind["partner"][("tag.assigned", "tier")]["value"] == "gold"
    assert by_kind["partner"][("customer.merged", None)]["reason"] is None
    assert not [s for s in SECRETS if s in json.dumps(seen["partner"])]
    assert by_kind["admin"][("tag.assigned", "note")]["value"] == "note about ann"
    assert by_kind["admin"][("customer.merged", None)]["reason"] == "Ann Lee phoned"


async def test_partners_cannot_follow_the_feed_of_a_segment_that_reads_pii(
    api: Api, settings: Settings
) -> None:
    ids = await world(api)
    app = create_app(settings.model_copy(update={**FAST, "redis_url": None}))
    query = "subscription($s: ID) { changes(segment: $s) { id } }"
    async with serve_asgi(app) as url, subscriber(url, api.keys[Role.PARTNER]) as partner:
        payload = {"query": query, "variables": {"s": ids["outer"]}}
        await partner.socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        message = await partner.next()
    assert message["type"] == "next" and message["payload"]["data"] is None, message
    assert message["payload"]["errors"][0]["extensions"]["code"] == "FORBIDDEN", message
