"""The inputs the contract declares nullable with a default: an explicit `null` gets the
default, as if the field were left out, never a validation error."""

from __future__ import annotations

from tests.builders import make_customer
from tests.conftest import Api


async def test_tag_definitions_with_include_archived_null_leaves_archived_out(api: Api) -> None:
    for key in ("kept", "gone"):
        await api.query(
            "mutation($k: String!) { defineTag(input: {key: $k, name: $k}) { errors { code } } }",
            {"k": key},
        )
    await api.query('mutation { archiveTag(key: "gone") { errors { code } } }')
    listed = await api.query(
        "query($a: Boolean) { tagDefinitions(includeArchived: $a) { key } }", {"a": None}
    )
    assert listed["tagDefinitions"] == [{"key": "kept"}]


async def test_customer_order_with_direction_null_sorts_ascending(api: Api, db) -> None:
    for name in ("Bea", "Al", "Cy"):
        await make_customer(db, display_name=name)
    read = await api.query(
        """query($o: [CustomerOrder!]) { customers(orderBy: $o, first: 3) {
        edges { node { displayName } } } }""",
        {"o": [{"field": "DISPLAY_NAME", "direction": None}]},
    )
    names = [e["node"]["displayName"] for e in read["customers"]["edges"]]
    assert names == ["Al", "Bea", "Cy"]


async def test_order_input_with_status_null_is_completed(api: Api) -> None:
    order = {
        "customer": {"type": "email", "value": "n@x.com"},
        "externalId": "N-1",
        "amount": "5",
        "currency": "CNY",
        "status": None,
    }
    recorded = await api.query(
        "mutation($o: [OrderInput!]!) { recordOrders(orders: $o) { accepted errors { code } } }",
        {"o": [order]},
    )
    assert recorded["recordOrders"] == {"accepted": 1, "errors": []}
    read = await api.query(
        """{ customer(identity: {type: "email", value: "n@x.com"}) {
        orders(first: 1) { edges { node { status } } } } }"""
    )
    assert read["customer"]["orders"]["edges"] == [{"node": {"status": "completed"}}]


async def test_identity_type_input_with_nulls_takes_the_defaults(api: Api) -> None:
    made = await api.query(
        """mutation($i: IdentityTypeInput!) { defineIdentityType(input: $i) {
        identityType { key isPii unique priority } errors { code } } }""",
        {
            "i": {
                "key": "loyalty",
                "label": "Loyalty",
                "normalizer": "exact",
                "isPii": None,
                "unique": None,
                "priority": None,
            }
        },
    )
    assert made["defineIdentityType"] == {
        "identityType": {"key": "loyalty", "isPii": True, "unique": False, "priority": 0},
        "errors": [],
    }


async def test_tag_definition_input_with_nulls_is_a_manual_flag(api: Api) -> None:
    made = await api.query(
        """mutation($i: TagDefinitionInput!) { defineTag(input: $i) {
        tag { key valueType kind } errors { code } } }""",
        {"i": {"key": "vip", "name": "VIP", "valueType": None, "kind": None}},
    )
    assert made["defineTag"] == {
        "tag": {"key": "vip", "valueType": "FLAG", "kind": "MANUAL"},
        "errors": [],
    }


async def test_lifecycle_inputs_with_nulls_take_the_defaults(api: Api) -> None:
    model = {
        "stages": [
            {"key": "lead", "name": "Lead", "terminal": None},
            {"key": "buyer", "name": "Buyer"},
        ],
        "transitions": [{"from": "lead", "to": "buyer"}],
        "rules": [
            {
                "key": "r",
                "toStage": "buyer",
                "priority": None,
                "condition": {"orders": {"measure": "COUNT", "op": "GTE", "value": 1}},
            }
        ],
    }
    made = await api.query(
        """mutation($m: LifecycleModelInput!) { configureLifecycle(input: $m) {
        model { stages { key terminal } rules { key priority } } errors { code } } }""",
        {"m": model},
    )
    assert made["configureLifecycle"] == {
        "model": {
            "stages": [{"key": "lead", "terminal": False}, {"key": "buyer", "terminal": False}],
            "rules": [{"key": "r", "priority": 0}],
        },
        "errors": [],
    }
