"""The tag system over GraphQL: roles, payload errors, customerCount and tag history."""

from __future__ import annotations

from api.ids import to_global_id
from domain.access.keys import Role
from tests.builders import make_customer
from tests.conftest import Api

DEFINE = """mutation($input: TagDefinitionInput!) { defineTag(input: $input) {
  tag { key name category valueType allowedValues kind archived customerCount } errors { code field } } }"""
TAG = """mutation($tag: String!, $ids: [ID!], $value: String) { tagCustomers(tag: $tag, customers: $ids, value: $value) {
  affected errors { code field message } } }"""


async def test_define_tag_then_tag_customers_and_count_them(api: Api, db) -> None:
    made = (
        await api.query(
            DEFINE,
            {
                "input": {
                    "key": "tier",
                    "name": "Tier",
                    "category": "value/tier",
                    "valueType": "ENUM",
                    "allowedValues": ["gold", "silver"],
                }
            },
        )
    )["defineTag"]
    assert made["errors"] == [] and made["tag"]["customerCount"] == 0
    ids = [to_global_id("Customer", await make_customer(db)) for _ in range(3)]
    tagged = (
        await api.query(TAG, {"tag": "tier", "ids": ids, "value": "gold"}, role=Role.FRONTEND)
    )["tagCustomers"]
    assert tagged == {"affected": 3, "errors": []}
    bad = (await api.query(TAG, {"tag": "tier", "ids": ids, "value": "bronze"}))["tagCustomers"]
    assert bad["affected"] == 0 and bad["errors"][0]["code"] == "INVALID_TAG_VALUE"
    listed = (await api.query('{ tagDefinitions(category: "value") { key customerCount } }'))[
        "tagDefinitions"
    ]
    assert listed == [{"key": "tier", "customerCount": 3}]
    read = await api.query(
        """query($id: ID!) { customer(id: $id) { tags(category: "value") { tag { key } value }
        tagHistory(first: 5) { edges { node { tag { key } action newValue actor } } } } }""",
        {"id": ids[0]},
    )
    assert read["customer"]["tags"] == [{"tag": {"key": "tier"}, "value": "gold"}]
    assert read["customer"]["tagHistory"]["edges"] == [
        {
            "node": {
                "tag": {"key": "tier"},
                "action": "ASSIGNED",
                "newValue": "gold",
                "actor": "frontend:test-frontend",
            }
        }
    ]


async def test_only_admins_define_and_partners_never_tag(api: Api, db) -> None:
    body = (
        await api.post(DEFINE, {"input": {"key": "nope", "name": "N"}}, role=Role.INTEGRATION)
    ).json()
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    await api.query(DEFINE, {"input": {"key": "vip", "name": "VIP"}})
    ids = [to_global_id("Customer", await make_customer(db))]
    body = (await api.post(TAG, {"tag": "vip", "ids": ids}, role=Role.PARTNER)).json()
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_update_and_archive_tag(api: Api) -> None:
    await api.query(DEFINE, {"input": {"key": "promo", "name": "Promo"}})
    updated = (
        await api.query(
            'mutation { updateTag(key: "promo", patch: {name: "Promotions", defaultTtlDays: 30}) { tag { name defaultTtlDays } errors { code } } }'
        )
    )["updateTag"]
    assert updated == {"tag": {"name": "Promotions", "defaultTtlDays": 30}, "errors": []}
    archived = (
        await api.query(
            'mutation { archiveTag(key: "promo") { tag { archived } errors { code } } }'
        )
    )["archiveTag"]
    assert archived["tag"]["archived"] is True
    missing = (
        await api.query(
            'mutation { archiveTag(key: "nothing") { tag { key } errors { code field } } }'
        )
    )["archiveTag"]
    assert missing == {"tag": None, "errors": [{"code": "UNKNOWN_TAG", "field": ["key"]}]}
    assert (await api.query('{ tagDefinition(key: "promo") { archived } }'))["tagDefinition"][
        "archived"
    ] is True


async def test_node_answers_a_tag_definition_by_its_global_id(api: Api) -> None:
    made = await api.query(
        'mutation { defineTag(input: {key: "vip", name: "VIP"}) { tag { id } errors { code } } }'
    )
    tag_id = made["defineTag"]["tag"]["id"]
    found = await api.query(
        "query($id: ID!) { node(id: $id) { id ... on TagDefinition { key name } } }",
        {"id": tag_id},
        role=Role.PARTNER,
    )
    assert found["node"] == {"id": tag_id, "key": "vip", "name": "VIP"}
    missing = to_global_id("TagDefinition", "00000000-0000-0000-0000-000000000000")
    gone = await api.query("query($id: ID!) { node(id: $id) { id } }", {"id": missing})
    assert gone["node"] is None
