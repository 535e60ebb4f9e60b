"""PII masking: partners see no PII on any path that leads to a profile, cannot infer it by
filtering, sorting or looking up, and nobody sees PII of an erased customer."""

from __future__ import annotations

import json
import uuid
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

PII = ("displayName", "firstName", "lastName", "email", "phone", "birthday")
PROFILE = "id status displayName firstName lastName email phone birthday gender country"
FULL = f"{PROFILE} identities {{ type value }}"
ANN = {
    "display_name": "Ann Lee",
    "first_name": "Ann",
    "last_name": "Lee",
    "email": "ann@example.com",
    "phone": "+8613800000001",
    "gender": "female",
    "country": "CN",
}


async def ann(api: Api) -> str:
    from datetime import date

    customer = await make_customer(
        api.db,
        identities=[("email", "ann@example.com"), ("phone", "13800000001"), ("crm_id", "C-1")],
        tags=["vip"],
        birthday=date(1990, 5, 1),
        **ANN,
    )
    return to_global_id("Customer", customer)


def assert_masked(profile: dict[str, Any]) -> None:
    assert all(profile[field] is None for field in PII), profile
    assert profile["gender"] == "female" and profile["country"] == "CN"
    if "identities" in profile:
        assert profile["identities"] == [{"type": "crm_id", "value": "C-1"}], profile


def assert_visible(profile: dict[str, Any]) -> None:
    assert profile["email"] == "ann@example.com" and profile["displayName"] == "Ann Lee"
    assert profile["birthday"] == "1990-05-01"
    assert {i["type"] for i in profile["identities"]} == {"email", "phone", "crm_id"}


async def test_partners_see_no_pii_on_any_path_to_a_profile(api: Api) -> None:
    ann_id = await ann(api)
    segment = await api.query(
        """mutation { defineSegment(input: {key: "cn", name: "CN",
             condition: {attribute: {field: "country", op: EQ, value: "CN"}}}) {
             segment { id } errors { code } } }"""
    )
    segment_id = segment["defineSegment"]["segment"]["id"]
    paths = {
        "customer": (f"{{ customer(id: {json.dumps(ann_id)}) {{ {FULL} }} }}", ["customer"]),
        "node": (
            f"{{ node(id: {json.dumps(ann_id)}) {{ ... on Customer {{ {FULL} }} }} }}",
            ["node"],
        ),
        "customers": (
            f"{{ customers {{ edges {{ node {{ {FULL} }} }} }} }}",
            ["customers", "edges", 0, "node"],
        ),
        "segment members": (
            f"{{ segment(id: {json.dumps(segment_id)}) {{ members {{ edges {{ node {{ {FULL} }} }} }} }} }}",
            ["segment", "members", "edges", 0, "node"],
        ),
        "preview": (
            '{ previewSegment(condition: {attribute: {field: "country", op: EQ, value: "CN"}})'
            f" {{ sample {{ {FULL} }} }} }}",
            ["previewSegment", "sample", 0],
        ),
        "by crm id": (
            f'{{ customer(identity: {{type: "crm_id", value: "C-1"}}) {{ {FULL} }} }}',
            ["customer"],
        ),
    }
    for name, (query, path) in paths.items():
        for role, check in ((Role.PARTNER, assert_masked), (Role.FRONTEND, assert_visible)):
            found: Any = await api.query(query, role=role)
            for step in path:
                found = found[step]
            try:
                check(found)
            except AssertionError as error:
                raise AssertionError(f"{name} as {role.value}: {error}") from None


@pytest.mark.parametrize(
    "query",
    [
        '{ customers(where: {attribute: {field: "email", op: STARTS_WITH, value: "a"}}) { totalCount } }',
        '{ customers(where: {and: [{tag: {key: "vip"}}, {not: {attribute: {field: "birthday", op: EXISTS}}}]}) { totalCount } }',
        '{ previewSegment(condition: {attribute: {field: "displayName", op: EQ, value: "Ann Lee"}}) { count } }',
        "{ customers(orderBy: [{field: DISPLAY_NAME}]) { edges { cursor } } }",
        '{ customer(identity: {type: "email", value: "ann@example.com"}) { id } }',
    ],
    ids=["filter", "nested filter", "preview", "sort by name", "lookup by email"],
)
async def test_partners_cannot_infer_pii_by_filtering_sorting_or_lookup(
    api: Api, query: str
) -> None:
    await ann(api)
    body = (await api.post(query, role=Role.PARTNER)).json()
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body
    assert "Ann" not in json.dumps(body) and "ann@" not in json.dumps(body)
    frontend = (await api.post(query, role=Role.FRONTEND)).json()
    assert not frontend.get("errors"), frontend


async def test_partners_may_filter_on_what_is_not_pii(api: Api) -> None:
    await ann(api)
    data = await api.query(
        """{ customers(where: {and: [{attribute: {field: "country", op: EQ, value: "CN"}},
                                     {identity: {type: "email"}}]}) { totalCount } }""",
        role=Role.PARTNER,
    )
    assert data["customers"]["totalCount"] == 1


async def test_erased_customers_show_no_pii_to_anyone(api: Api) -> None:
    ann_id = await ann(api)
    erased = await api.query(
        "mutation($id: ID!) { eraseCustomer(id: $id) { erasedId errors { code } } }",
        {"id": ann_id},
    )
    assert erased["eraseCustomer"] == {"erasedId": ann_id, "errors": []}
    for role in (Role.ADMIN, Role.FRONTEND, Role.PARTNER):
        data = await api.query(
            f"query($id: ID!) {{ customer(id: $id) {{ {FULL} attributes }} }}",
            {"id": ann_id},
            role=role,
        )
        profile = data["customer"]
        assert profile["status"] == "ERASED"
        assert all(profile[field] is None for field in PII), profile
        assert profile["identities"] == [] and profile["attributes"] == {}


async def test_change_events_carry_no_pii_to_partner_subscribers(
    api: Api, settings: Settings
) -> None:
    """Subscriptions deliver ids and kinds only; a partner's feed holds no identity value."""
    app = create_app(settings.model_copy(update={**FAST, "redis_url": None}))
    async with (
        serve_asgi(app) as url,
        subscriber(url, api.keys[Role.PARTNER]) as partner,
    ):
        await partner.subscribe({"kinds": ["customer.created"]})
        mutation = """mutation { identify(input: {identities: [{type: "email", value: "zoe@example.com"}],
                        traits: {displayName: "Zoe Q"}}) { customer { id } errors { code } } }"""
        response = await api.post(mutation, role=Role.INTEGRATION)
        created = response.json()["data"]["identify"]["customer"]["id"]
        event = await partner.event()
    assert event["kind"] == "customer.created" and event["customerId"] == created
    assert "zoe" not in json.dumps(event).lower()
    uuid.UUID(event["id"])
