"""Values the databases can't hold, sent over HTTP: each is refused with a code and the path of
the offending field, never met as a database error (domain.values, api.value_guard); a stored
value no double can hold makes comparisons on its key match nothing, never fail."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from domain.access.keys import Role
from store.models import Customer, TagAssignment
from tests.conftest import Api

Y1 = "0001-01-01T00:00:00+14:00"  # before year 1 once in UTC
IDENTIFY = """mutation($i: IdentifyInput!) { identify(input: $i) { errors { code field } } }"""
ORDERS = """mutation($o: [OrderInput!]!) { recordOrders(orders: $o) { errors { code field } } }"""
EVENTS = """mutation($e: [EventInput!]!) { trackEvents(events: $e) { errors { code field } } }"""
CUSTOMERS = """query($w: ConditionInput, $a: String, $o: [CustomerOrder!]) {
  customers(where: $w, after: $a, orderBy: $o) { totalCount } }"""
FUNNEL = """query($f: DateTime) { funnel(from: $f) { stages { current } } }"""
DEFINE = """mutation($i: TagDefinitionInput!) { defineTag(input: $i) { errors { code field } } }"""
TAG = """mutation($t: String!, $ids: [ID!], $v: String, $d: DateTime) {
  tagCustomers(tag: $t, customers: $ids, value: $v, expiresAt: $d) { errors { code field } } }"""
SEGMENT = """mutation($i: SegmentInput!) { defineSegment(input: $i) { errors { code field } } }"""
ME = {"type": "email", "value": "a@x.com"}


def cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


async def send(api: Api, query: str, variables: dict[str, Any]) -> httpx.Response:
    """Variables as Python's json writes them: NaN and Infinity included, as clients send."""
    body = json.dumps({"query": query, "variables": variables})
    headers = {"Authorization": f"Bearer {api.keys[Role.ADMIN]}"}
    headers["content-type"] = "application/json"
    return await api.client.post("/graphql", content=body, headers=headers)


def refusal(response: httpx.Response) -> tuple[str, list[str] | None]:
    """The one code and field path of a refused mutation (UserError) or query (GraphQL error)."""
    assert response.status_code == 200, response.text
    body = response.json()
    if body.get("errors"):
        (error,) = body["errors"]
        return error["extensions"]["code"], error["extensions"].get("field")
    ((_, payload),) = body["data"].items()
    (error,) = payload["errors"]
    return error["code"], error["field"]


MUTATIONS = [
    (IDENTIFY, {"i": {"identities": [ME], "occurredAt": Y1}}, ["input", "occurredAt"]),
    (
        IDENTIFY,
        {"i": {"identities": [ME], "traits": {"s": float("nan")}}},
        ["input", "traits", "s"],
    ),
    (
        IDENTIFY,
        {"i": {"identities": [ME], "traits": {"s": float("inf")}}},
        ["input", "traits", "s"],
    ),
    (IDENTIFY, {"i": {"identities": [ME], "traits": {"s": 10**400}}}, ["input", "traits", "s"]),
    (
        IDENTIFY,
        {"i": {"identities": [ME], "traits": {"attributes": {"n": [1, 2**70]}}}},
        ["input", "traits", "attributes", "n", "1"],
    ),
    (
        ORDERS,
        {
            "o": [
                {
                    "customer": ME,
                    "externalId": "o",
                    "amount": "1",
                    "currency": "CNY",
                    "placedAt": Y1,
                }
            ]
        },
        ["orders", "0", "placedAt"],
    ),
    (
        ORDERS,
        {"o": [{"customer": ME, "externalId": "o", "amount": "1e308", "currency": "CNY"}]},
        ["orders", "0", "amount"],
    ),
    (
        ORDERS,
        {"o": [{"customer": ME, "externalId": "o", "amount": "NaN", "currency": "CNY"}]},
        ["orders", "0", "amount"],
    ),
    (
        EVENTS,
        {"e": [{"customer": ME, "type": "x", "occurredAt": Y1}]},
        ["events", "0", "occurredAt"],
    ),
    (
        EVENTS,
        {"e": [{"customer": ME, "type": "x", "properties": {"p": float("-inf")}}]},
        ["events", "0", "properties", "p"],
    ),
    (TAG, {"t": "vip", "ids": [], "d": Y1}, ["expiresAt"]),
]


@pytest.mark.parametrize(("query", "variables", "field"), MUTATIONS)
async def test_a_mutation_refuses_a_value_no_database_holds_with_its_field_path(
    api: Api, query: str, variables: dict[str, Any], field: list[str]
) -> None:
    code, where = refusal(await send(api, query, variables))
    assert (code, where) == ("INVALID_INPUT", field)
    counted = await api.query("{ customers { totalCount } }")
    assert counted["customers"]["totalCount"] == 0  # a refused mutation changes nothing


async def test_an_identity_that_lowercasing_doubles_past_its_column_is_refused(api: Api) -> None:
    device = {"type": "device_id", "value": "İ" * 512}
    code, where = refusal(await send(api, IDENTIFY, {"i": {"identities": [device]}}))
    assert (code, where) == ("INVALID_IDENTITY", ["input", "identities", "0", "value"])


FILTERS = [
    ({"attribute": {"field": "createdAt", "op": "GT", "value": Y1}}, "INVALID_VALUE"),
    ({"event": {"type": "x", "withinDays": 2147483647}}, "INVALID_VALUE"),
    (
        {"orders": {"withinDays": 2147483647, "measure": "SUM", "op": "GT", "value": 1}},
        "INVALID_VALUE",
    ),
    ({"orders": {"measure": "SUM", "op": "GT", "value": 1e308}}, "INVALID_INPUT"),
    ({"metric": {"name": "FREQUENCY", "op": "GT", "value": 2**70}}, "INVALID_INPUT"),
    ({"attribute": {"field": "attributes.x", "op": "GT", "value": 10**400}}, "INVALID_INPUT"),
    (
        {"attribute": {"field": "attributes.x", "op": "IN", "values": [1, float("nan")]}},
        "INVALID_INPUT",
    ),
]


@pytest.mark.parametrize(("where", "code"), FILTERS)
async def test_a_filter_refuses_a_value_no_database_compares_with_its_path(
    api: Api, where: dict[str, Any], code: str
) -> None:
    found, field = refusal(await send(api, CUSTOMERS, {"w": where}))
    assert found == code and field is not None and field[:2] == ["where", next(iter(where))]


async def test_funnel_refuses_a_start_before_year_one_in_utc(api: Api) -> None:
    assert refusal(await send(api, FUNNEL, {"f": Y1})) == ("INVALID_INPUT", ["from"])


UUID0 = "00000000-0000-0000-0000-000000000001"


@pytest.mark.parametrize(
    ("raw", "order"),
    [
        (f'["{Y1}","{UUID0}"]', None),
        (f'[NaN,"{UUID0}"]', [{"field": "TOTAL_SPENT"}]),
        (f'["1e400","{UUID0}"]', [{"field": "TOTAL_SPENT"}]),
        ('["2024-01-01T00:00:00+00:00", 5]', None),
        ('["\\ud800","' + UUID0 + '"]', [{"field": "DISPLAY_NAME"}]),
        ("[{}, []]", None),
        ("not json", None),
    ],
)
async def test_a_forged_cursor_is_invalid_cursor_on_its_argument(
    api: Api, raw: str, order: list[dict[str, str]] | None
) -> None:
    response = await send(api, CUSTOMERS, {"a": cursor(raw), "o": order})
    assert refusal(response) == ("INVALID_CURSOR", ["after"])


async def test_a_forged_segments_cursor_is_invalid_cursor(api: Api) -> None:
    query = "query($a: String) { segments(after: $a) { totalCount } }"
    assert refusal(await send(api, query, {"a": cursor('["\\ud800"]')})) == (
        "INVALID_CURSOR",
        ["after"],
    )


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (IDENTIFY, {"i": {"identities": [ME], "traits": {"displayName": "a\ud800"}}}),
        (IDENTIFY, {"i": {"identities": [ME], "traits": {"\udfff": "x"}}}),
        (IDENTIFY, {"i": {"identities": [{"type": "device_id", "value": "d\ud800"}]}}),
        (SEGMENT, {"i": {"key": "s", "name": "n\ud800", "condition": {"not": {"and": []}}}}),
        ("query($k: String!) { segment(key: $k) { id } }", {"k": "\ud800"}),
    ],
)
async def test_text_with_a_lone_surrogate_is_refused_with_a_code(
    api: Api, query: str, variables: dict[str, Any]
) -> None:
    assert refusal(await send(api, query, variables))[0] == "INVALID_INPUT"


async def test_a_number_tag_value_no_double_holds_is_refused_when_written(api: Api) -> None:
    await send(api, DEFINE, {"i": {"key": "score", "name": "Score", "valueType": "NUMBER"}})
    await send(api, IDENTIFY, {"i": {"identities": [ME]}})
    data = await api.query("{ customers { edges { node { id } } } }")
    ids = [data["customers"]["edges"][0]["node"]["id"]]
    for value in ("1e400", "1e-400", "2e15"):
        response = await send(api, TAG, {"t": "score", "ids": ids, "v": value})
        assert refusal(response) == ("INVALID_TAG_VALUE", ["value"])


async def test_a_stored_number_no_double_holds_matches_nothing_and_breaks_no_filter(
    api: Api,
) -> None:
    """Written past validation (by SQL, as older versions could): comparisons stay answers."""
    await send(api, DEFINE, {"i": {"key": "score", "name": "Score", "valueType": "NUMBER"}})
    made = await send(
        api, IDENTIFY, {"i": {"identities": [ME], "traits": {"attributes": {"n": 1}}}}
    )
    assert made.status_code == 200
    data = await api.query("{ customers { edges { node { id } } } }")
    ids = [data["customers"]["edges"][0]["node"]["id"]]
    tagged = await api.query(TAG, {"t": "score", "ids": ids, "v": "3"})
    assert tagged["tagCustomers"]["errors"] == []
    async with api.db.write() as session:
        await session.execute(update(TagAssignment).values(value="1e400"))
        await session.execute(update(Customer).values(attributes={"n": 10**400, "m": 1e-320}))
    for where in (
        {"tag": {"key": "score", "op": "GT", "value": "1"}},
        {"tag": {"key": "score", "op": "LT", "value": "1"}},
        {"attribute": {"field": "attributes.n", "op": "GT", "value": 1}},
        {"attribute": {"field": "attributes.n", "op": "LT", "value": 1}},
        {"attribute": {"field": "attributes.n", "op": "EQ", "value": 0}},
    ):
        counted = await api.query(CUSTOMERS, {"w": where})
        assert counted["customers"]["totalCount"] == 0, where


# --- fuzz: every mutation's and filter's inputs with extreme values ---------------------------

EXTREME_NUMBERS = st.sampled_from(
    [
        0,
        -1,
        2**31 - 1,
        -(2**31),
        2**53 + 1,
        2**70,
        10**400,
        -(10**400),
        1e308,
        -1e308,
        5e-324,
        1e-320,
        float("nan"),
        float("inf"),
        float("-inf"),
        1e15,
        1e15 + 1,
    ]
)
EXTREME_TEXT = st.sampled_from(
    [
        "",
        " ",
        "İ" * 512,
        "ǅ" * 300,
        "a\ud800",
        "\udfff",
        "x" * 5000,
        "null",
        "1e400",
        "NaN",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "-1",
        "\u0130" * 40,
    ]
)
EXTREME_MOMENTS = st.sampled_from(
    [
        "0001-01-01T00:00:00+14:00",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59-14:00",
        "9999-12-31T23:59:59+00:00",
        "1899-12-31T23:59:59Z",
        "2024-02-30T00:00:00Z",
        "now",
    ]
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | EXTREME_NUMBERS | EXTREME_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(EXTREME_TEXT, inner, max_size=3),
    max_leaves=6,
)
INTS = st.sampled_from([0, -1, 1, 2**31 - 1, -(2**31)])


def _leaf(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(["attribute", "event", "orders", "metric", "tag", "stage"]))
    ops = st.sampled_from(["EQ", "GT", "LT", "IN", "BETWEEN", "CONTAINS"])
    if kind == "attribute":
        field = draw(st.sampled_from(["createdAt", "birthday", "city", "attributes.n"]))
        return {
            kind: {
                "field": field,
                "op": draw(ops),
                "value": draw(JSON_VALUES),
                "values": draw(st.lists(JSON_VALUES, max_size=2)),
            }
        }
    if kind == "event":
        return {kind: {"type": draw(EXTREME_TEXT), "withinDays": draw(INTS), "count": draw(INTS)}}
    if kind == "orders":
        value = draw(st.sampled_from([1e308, -1e308, 1e15, 0.5, 2.0**70]))
        return {kind: {"withinDays": draw(INTS), "measure": "SUM", "op": "GT", "value": value}}
    if kind == "metric":
        name = draw(st.sampled_from(["FREQUENCY", "MONETARY", "RECENCY_DAYS", "CLV"]))
        return {kind: {"name": name, "op": "GT", "value": draw(JSON_VALUES)}}
    if kind == "tag":
        return {kind: {"key": "score", "op": draw(ops), "value": draw(EXTREME_TEXT)}}
    return {kind: {"in": [draw(EXTREME_TEXT)], "enteredWithinDays": draw(INTS)}}


@st.composite
def operations(draw: Any) -> tuple[str, dict[str, Any]]:
    """One mutation or filter with extreme values in its inputs."""
    text, moment, value = draw(EXTREME_TEXT), draw(EXTREME_MOMENTS), draw(JSON_VALUES)
    identity = {
        "type": draw(st.sampled_from(["email", "device_id", "phone", "crm_id"])),
        "value": text,
    }
    choices = [
        (
            IDENTIFY,
            {
                "i": {
                    "identities": [identity],
                    "traits": {text: value, "displayName": draw(EXTREME_TEXT)},
                    "occurredAt": moment,
                    "source": text,
                }
            },
        ),
        (
            ORDERS,
            {
                "o": [
                    {
                        "customer": identity,
                        "externalId": text,
                        "currency": "CNY",
                        "amount": draw(st.sampled_from(["1e308", "NaN", "-0", "1e-400", text])),
                        "placedAt": moment,
                    }
                ]
            },
        ),
        (
            EVENTS,
            {
                "e": [
                    {
                        "customer": identity,
                        "type": text,
                        "channel": text,
                        "occurredAt": moment,
                        "properties": {"p": value},
                        "idempotencyKey": text,
                    }
                ]
            },
        ),
        (TAG, {"t": "score", "ids": [], "v": text, "d": moment}),
        (
            DEFINE,
            {"i": {"key": text, "name": text, "valueType": "NUMBER", "defaultTtlDays": draw(INTS)}},
        ),
        (SEGMENT, {"i": {"key": "s", "name": text, "condition": _leaf(draw)}}),
        (
            CUSTOMERS,
            {"w": {"and": [_leaf(draw), _leaf(draw)]}, "a": cursor(json.dumps([value, text]))},
        ),
        (FUNNEL, {"f": moment}),
        (
            "query($c: ConditionInput!) { previewSegment(condition: $c) { count } }",
            {"c": _leaf(draw)},
        ),
        (
            "mutation($id: ID!, $p: CustomerPatch!) { updateCustomer(id: $id, patch: $p) { errors { code } } }",
            {
                "id": base64.b64encode(
                    f"Customer:{text}".encode("utf-8", "surrogatepass")
                ).decode(),
                "p": {"city": text, "attributes": {"n": value}},
            },
        ),
    ]
    return draw(st.sampled_from(choices))


def _no_internal_error(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    assert "INTERNAL_ERROR" not in response.text, response.text


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
async def test_extreme_values_in_every_input_get_no_5xx_and_no_internal_error(
    api: Api, data: st.DataObject
) -> None:
    await send(api, DEFINE, {"i": {"key": "score", "name": "Score", "valueType": "NUMBER"}})
    for _ in range(5):
        query, variables = data.draw(operations())
        _no_internal_error(await send(api, query, variables))
