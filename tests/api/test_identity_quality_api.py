"""Identity quality over GraphQL: merge provenance, shared identifiers, placeholder patterns."""

from __future__ import annotations

from domain.access.keys import Role
from tests.conftest import Api

IDENTIFY = """mutation($input: IdentifyInput!) { identify(input: $input) {
  customer { id } merges { id via linkedBy { type value } } errors { code field } } }"""
MERGES = """query($id: ID!) { customer(id: $id) { merges { via linkedBy { type value } } } }"""
SHARED = """query($type: String) { sharedIdentifiers(type: $type) {
  type value sharedAt customer { id } } }"""


def identify(*pairs: tuple[str, str]) -> dict[str, object]:
    return {"input": {"identities": [{"type": t, "value": v} for t, v in pairs]}}


async def test_a_merge_by_identify_shows_via_and_the_identifiers_that_linked(api: Api) -> None:
    await api.query(IDENTIFY, identify(("email", "ann@x.com")))
    await api.query(IDENTIFY, identify(("phone", "13900139000")))
    joined = (
        await api.query(IDENTIFY, identify(("email", "ann@x.com"), ("phone", "13900139000")))
    )["identify"]
    linked = [{"type": "email", "value": "ann@x.com"}, {"type": "phone", "value": "+8613900139000"}]
    assert joined["merges"] == [
        {"id": joined["merges"][0]["id"], "via": "identify", "linkedBy": linked}
    ]
    survivor = {"id": joined["customer"]["id"]}
    assert (await api.query(MERGES, survivor))["customer"]["merges"] == [
        {"via": "identify", "linkedBy": linked}
    ]
    # Partners see no PII identity, here as on Customer.identities.
    partner = await api.query(MERGES, survivor, role=Role.PARTNER)
    assert partner["customer"]["merges"] == [{"via": "identify", "linkedBy": []}]


async def test_merge_customers_says_manual(api: Api) -> None:
    a = (await api.query(IDENTIFY, identify(("email", "ann@x.com"))))["identify"]["customer"]
    b = (await api.query(IDENTIFY, identify(("email", "bob@x.com"))))["identify"]["customer"]
    merged = await api.query(
        """mutation($s: ID!, $m: ID!) { mergeCustomers(survivor: $s, merged: $m) {
        merge { via linkedBy { type } } errors { code } } }""",
        {"s": a["id"], "m": b["id"]},
    )
    assert merged["mergeCustomers"] == {"merge": {"via": "manual", "linkedBy": []}, "errors": []}


async def test_admins_list_shared_identifiers_and_no_one_else_may(api: Api) -> None:
    ann = await api.query(IDENTIFY, identify(("device_id", "Kiosk-1"), ("email", "ann@x.com")))
    bob = await api.query(IDENTIFY, identify(("device_id", "kiosk-1"), ("email", "bob@x.com")))
    assert bob["identify"]["errors"] == [
        {"code": "SHARED_IDENTIFIER", "field": ["input", "identities", "0", "value"]}
    ]
    found = (await api.query(SHARED, {"type": "device_id"}))["sharedIdentifiers"]
    assert [(s["type"], s["value"], s["customer"]["id"]) for s in found] == [
        ("device_id", "kiosk-1", ann["identify"]["customer"]["id"])
    ]
    assert (await api.query(SHARED, {"type": "email"}))["sharedIdentifiers"] == []
    for role in (Role.INTEGRATION, Role.FRONTEND, Role.PARTNER):
        body = (await api.post(SHARED, {}, role=role)).json()
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_identity_types_carry_their_shared_limit_and_placeholder_patterns(api: Api) -> None:
    defined = await api.query(
        """mutation { defineIdentityType(input: {key: "member_card", label: "Member card",
        normalizer: "exact", sharedLimit: 2, placeholderPatterns: ["0+", "(bad"]}) {
        identityType { key } errors { code field } } }"""
    )
    assert defined["defineIdentityType"] == {
        "identityType": None,
        "errors": [{"code": "INVALID_INPUT", "field": ["input", "placeholderPatterns", "1"]}],
    }
    defined = await api.query(
        """mutation { defineIdentityType(input: {key: "member_card", label: "Member card",
        normalizer: "exact", sharedLimit: 2, placeholderPatterns: ["card-0+"]}) {
        identityType { key sharedLimit placeholderPatterns } errors { code } } }"""
    )
    assert defined["defineIdentityType"]["identityType"] == {
        "key": "member_card",
        "sharedLimit": 2,
        "placeholderPatterns": ["card-0+"],
    }
    types = {
        t["key"]: t
        for t in (await api.query("{ identityTypes { key sharedLimit } }"))["identityTypes"]
    }
    assert types["device_id"]["sharedLimit"] == 1 and types["email"]["sharedLimit"] is None
    refused = (
        await api.query(IDENTIFY, identify(("member_card", "CARD-000"), ("email", "a@x.com")))
    )["identify"]
    assert refused["errors"] == [
        {"code": "BLOCKED_IDENTITY", "field": ["input", "identities", "0", "value"]}
    ]


CONFIGURE = """mutation($rules: [FieldRuleInput!]!, $trust: [String!]!) {
  configureSurvivorship(rules: $rules, sourceTrust: $trust) {
    survivorship { defaultRule rules { field rule } sourceTrust } errors { code field } } }"""


async def test_admins_configure_survivorship_and_read_it_back(api: Api) -> None:
    rules = [
        {"field": "city", "rule": "SURVIVOR"},
        {"field": "attributes.*", "rule": "MOST_TRUSTED"},
    ]
    configured = await api.query(CONFIGURE, {"rules": rules, "trust": ["crm", "store"]})
    expected = {
        "defaultRule": "MOST_RECENT",
        "rules": [
            {"field": "attributes.*", "rule": "MOST_TRUSTED"},
            {"field": "city", "rule": "SURVIVOR"},
        ],
        "sourceTrust": ["crm", "store"],
    }
    assert configured["configureSurvivorship"] == {"survivorship": expected, "errors": []}
    read = await api.query("{ survivorship { defaultRule rules { field rule } sourceTrust } }")
    assert read["survivorship"] == expected
    refused = await api.query(
        CONFIGURE, {"rules": [{"field": "shoeSize", "rule": "SURVIVOR"}], "trust": []}
    )
    assert refused["configureSurvivorship"] == {
        "survivorship": None,
        "errors": [{"code": "INVALID_INPUT", "field": ["rules", "0", "field"]}],
    }
    assert (await api.query("{ survivorship { sourceTrust } }"))["survivorship"]["sourceTrust"] == [
        "crm",
        "store",
    ]


async def test_field_sources_show_source_and_time_and_hide_pii_fields_from_partners(
    api: Api,
) -> None:
    created = await api.query(
        IDENTIFY,
        {
            "input": {
                "identities": [{"type": "email", "value": "ann@x.com"}],
                "traits": {"firstName": "Ann", "city": "上海", "tier": "gold"},
                "source": "store",
                "occurredAt": "2025-01-01T08:00:00+08:00",
            }
        },
    )
    customer = {"id": created["identify"]["customer"]["id"]}
    query = "query($id: ID!) { customer(id: $id) { fieldSources { field source at } } }"
    shown = (await api.query(query, customer))["customer"]["fieldSources"]
    at = "2025-01-01T00:00:00+00:00"
    assert shown == [
        {"field": "attributes.tier", "source": "store", "at": at},
        {"field": "city", "source": "store", "at": at},
        {"field": "firstName", "source": "store", "at": at},
    ]
    partner = (await api.query(query, customer, role=Role.PARTNER))["customer"]["fieldSources"]
    assert [s["field"] for s in partner] == ["attributes.tier", "city"]
