"""updateCustomer: an authoritative edit, for frontends and admins."""

from __future__ import annotations

from api.ids import to_global_id
from domain.access.keys import Role
from tests.builders import make_customer
from tests.conftest import Api

UPDATE = """mutation($id: ID!, $patch: CustomerPatch!) { updateCustomer(id: $id, patch: $patch) {
  customer { displayName city birthday attributes } errors { code field } } }"""


async def test_update_sets_named_fields_and_merges_attributes(api: Api, db) -> None:
    customer = to_global_id(
        "Customer",
        await make_customer(db, display_name="Old", city="Xi'an", attributes={"a": 1, "b": 2}),
    )
    patch = {"displayName": "New", "birthday": "1990-04-23", "attributes": {"b": None, "c": 3}}
    result = (await api.query(UPDATE, {"id": customer, "patch": patch}, role=Role.FRONTEND))[
        "updateCustomer"
    ]
    assert result == {
        "customer": {
            "displayName": "New",
            "city": "Xi'an",
            "birthday": "1990-04-23",
            "attributes": {"a": 1, "c": 3},
        },
        "errors": [],
    }


async def test_bad_patches_are_refused_and_change_nothing(api: Api, db) -> None:
    customer = to_global_id("Customer", await make_customer(db, display_name="Same"))
    result = (await api.query(UPDATE, {"id": customer, "patch": {"displayName": "x" * 201}}))[
        "updateCustomer"
    ]
    assert result == {
        "customer": None,
        "errors": [{"code": "INVALID_INPUT", "field": ["patch", "displayName"]}],
    }
    ghost = to_global_id("Customer", "00000000-0000-0000-0000-000000000009")
    missing = (await api.query(UPDATE, {"id": ghost, "patch": {"city": "x"}}))["updateCustomer"]
    assert missing["errors"][0]["code"] == "NOT_FOUND"
    read = await api.query(
        "query($id: ID!) { customer(id: $id) { displayName } }", {"id": customer}
    )
    assert read["customer"]["displayName"] == "Same"


async def test_integrations_and_partners_may_not_edit(api: Api, db) -> None:
    customer = to_global_id("Customer", await make_customer(db))
    for role in (Role.INTEGRATION, Role.PARTNER):
        body = (await api.post(UPDATE, {"id": customer, "patch": {"city": "x"}}, role=role)).json()
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_display_name_is_derived_from_the_names_unless_set(api: Api, db) -> None:
    customer = to_global_id("Customer", await make_customer(db))
    query = UPDATE.replace("displayName city", "displayName firstName lastName city")

    async def patch(**fields: str | None) -> str | None:
        result = await api.query(query, {"id": customer, "patch": fields})
        return result["updateCustomer"]["customer"]["displayName"]  # type: ignore[no-any-return]

    assert await patch(firstName="小明", lastName="王") == "王小明"
    assert await patch(firstName="Ann", lastName="Lee") == "Ann Lee"
    assert await patch(displayName="Annie") == "Annie"
    assert await patch(firstName="Anne") == "Annie"
    assert await patch(displayName=None) == "Anne Lee"
