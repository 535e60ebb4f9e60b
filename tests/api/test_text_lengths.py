"""Every text a caller sends that lands in a bounded column (String(n) in store/models), sent
at its limit and past it, over HTTP, on both backends: the value at the limit is stored; the
one past it is refused with a code and the path of the field, and nothing is written. The
limit counts characters of the value as it is stored, after the normalisation that is
stored (NFKC and lowercasing of identity values: 'İ' lowercases to two characters, 'ﬃ' is
three once NFKC), so PostgreSQL (which counts characters and refuses more) and SQLite (which
would store anything) give the same answer. Filters that compare text with a bounded column
answer an over-long value with no match or a coded error.

New checks answer VALUE_TOO_LONG; checks that existed before keep their codes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select

from store.db import Database
from store.models import Base
from tests.conftest import Api

World = dict[str, str]
Variables = Callable[[str, World], dict[str, Any]]

IDENTIFY = """mutation($i: IdentifyInput!) { identify(input: $i) { errors { code field } } }"""
BATCH = """mutation($i: [IdentifyInput!]!, $k: String) {
  identifyBatch(inputs: $i, idempotencyKey: $k) { errors { code field } } }"""
UPDATE = """mutation($id: ID!, $p: CustomerPatch!) {
  updateCustomer(id: $id, patch: $p) { errors { code field } } }"""
EVENTS = """mutation($e: [EventInput!]!) { trackEvents(events: $e) { errors { code field } } }"""
ORDERS = """mutation($o: [OrderInput!]!) { recordOrders(orders: $o) { errors { code field } } }"""
IDENTITY_TYPE = """mutation($i: IdentityTypeInput!) {
  defineIdentityType(input: $i) { errors { code field } } }"""
DEFINE_TAG = (
    """mutation($i: TagDefinitionInput!) { defineTag(input: $i) { errors { code field } } }"""
)
UPDATE_TAG = """mutation($k: String!, $p: TagDefinitionPatch!) {
  updateTag(key: $k, patch: $p) { errors { code field } } }"""
TAG = """mutation($id: ID!, $t: String!, $v: String, $s: String) {
  tagCustomers(tag: $t, customers: [$id], value: $v, source: $s) { errors { code field } } }"""
WEBHOOK = """mutation($u: String!, $s: String!) {
  defineWebhook(url: $u, kinds: ["customer.merged"], secret: $s) { errors { code field } } }"""
SEGMENT = """mutation($i: SegmentInput!) { defineSegment(input: $i) { errors { code field } } }"""
UPDATE_SEGMENT = """mutation($id: ID!, $p: SegmentPatch!) {
  updateSegment(id: $id, patch: $p) { errors { code field } } }"""
LIFECYCLE = """mutation($i: LifecycleModelInput!) {
  configureLifecycle(input: $i, stageMapping: {awareness: "client"}) { errors { code field } } }"""
API_KEY = (
    """mutation($n: String!) { createApiKey(name: $n, role: ADMIN) { errors { code field } } }"""
)
PII = """mutation($k: String!) { declareAttributePii(key: $k, pii: true) { errors { code field } } }"""

CRM = {"type": "crm_id", "value": "len-1"}
CONDITION = {"attribute": {"field": "city", "op": "EQ", "value": "Hangzhou"}}
SECRET = "s" * 32


def x(n: int) -> str:
    return "x" * n


def slug(n: int) -> str:
    return "k" * n


@dataclass(frozen=True)
class Case:
    """One input that lands in a bounded column: `limit` characters are accepted, and each of
    `over` (default: limit + 1 characters) is refused with `code` at `path`."""

    name: str
    document: str
    variables: Variables
    path: list[str]
    limit: int
    code: str = "VALUE_TOO_LONG"
    text: Callable[[int], str] = x
    over: list[str] = field(default_factory=list)

    def at_limit(self) -> str:
        return self.text(self.limit)

    def refused(self) -> list[str]:
        return [self.text(self.limit + 1), *self.over]


def trait(name: str, limit: int) -> list[Case]:
    """A profile field, through identify's traits and through updateCustomer's patch."""
    return [
        Case(
            f"identify traits.{name}",
            IDENTIFY,
            lambda v, w: {"i": {"identities": [CRM], "traits": {name: v}}},
            ["input", "traits", name],
            limit,
            "INVALID_INPUT",
        ),
        Case(
            f"updateCustomer patch.{name}",
            UPDATE,
            lambda v, w: {"id": w["customer"], "p": {name: v}},
            ["patch", name],
            limit,
            "INVALID_INPUT",
        ),
    ]


def stages(key: str = "lead", name: str = "Lead", rule: str = "bought") -> dict[str, Any]:
    return {
        "stages": [{"key": key, "name": name}, {"key": "client", "name": "Client"}],
        "transitions": [{"from": key, "to": "client"}],
        "rules": [
            {
                "key": rule,
                "toStage": "client",
                "condition": {"orders": {"measure": "COUNT", "op": "GTE", "value": 1}},
            }
        ],
    }


CASES = [
    # Identity values, stored NFKC-normalised and lowercased by a `lowercase` type.
    Case(
        "identify device_id value (lowercased)",
        IDENTIFY,
        lambda v, w: {"i": {"identities": [{"type": "device_id", "value": v}]}},
        ["input", "identities", "0", "value"],
        512,
        "INVALID_IDENTITY",
        text=lambda n: "İ" * (n // 2) + "d" * (n % 2),  # 'İ'.lower() is 2 characters
        over=["İ" * 257, "ﬃ" * 171],
    ),
    Case(
        "identify crm_id value (NFKC)",
        IDENTIFY,
        lambda v, w: {"i": {"identities": [{"type": "crm_id", "value": v}]}},
        ["input", "identities", "0", "value"],
        512,
        "INVALID_IDENTITY",
        over=["ﬃ" * 171],  # 513 characters once NFKC
    ),
    Case(
        "identify source",
        IDENTIFY,
        lambda v, w: {"i": {"identities": [CRM], "source": v}},
        ["input", "source"],
        64,
    ),
    *(
        case
        for name, limit in [
            ("displayName", 200),
            ("firstName", 100),
            ("lastName", 100),
            ("gender", 32),
            ("locale", 35),
            ("country", 64),
            ("region", 100),
            ("city", 100),
        ]
        for case in trait(name, limit)
    ),
    Case(
        "identifyBatch idempotencyKey",
        BATCH,
        lambda v, w: {"i": [{"identities": [CRM]}], "k": v},
        ["idempotencyKey"],
        200,
    ),
    Case(
        "trackEvents type",
        EVENTS,
        lambda v, w: {"e": [{"customer": CRM, "type": v}]},
        ["events", "0", "type"],
        64,
        "INVALID_INPUT",
        over=["e" * 64 + "\n"],  # `$` matched before a final newline: 65 characters
    ),
    Case(
        "trackEvents channel",
        EVENTS,
        lambda v, w: {"e": [{"customer": CRM, "type": "view", "channel": v}]},
        ["events", "0", "channel"],
        64,
        "INVALID_INPUT",
    ),
    Case(
        "trackEvents idempotencyKey",
        EVENTS,
        lambda v, w: {"e": [{"customer": CRM, "type": "view", "idempotencyKey": v}]},
        ["events", "0", "idempotencyKey"],
        200,
        "INVALID_INPUT",
    ),
    Case(
        "recordOrders externalId",
        ORDERS,
        lambda v, w: {"o": [{"customer": CRM, "externalId": v, "amount": "1", "currency": "CNY"}]},
        ["orders", "0", "externalId"],
        200,
        "INVALID_INPUT",
    ),
    Case(
        "recordOrders source",
        ORDERS,
        lambda v, w: {
            "o": [
                {"customer": CRM, "externalId": "o1", "amount": "1", "currency": "CNY", "source": v}
            ]
        },
        ["orders", "0", "source"],
        64,
    ),
    Case(
        "defineIdentityType key",
        IDENTITY_TYPE,
        lambda v, w: {"i": {"key": v, "label": "L", "normalizer": "exact"}},
        ["input", "key"],
        63,
        "INVALID_INPUT",
        text=slug,
    ),
    Case(
        "defineIdentityType label",
        IDENTITY_TYPE,
        lambda v, w: {"i": {"key": "loyalty_id", "label": v, "normalizer": "exact"}},
        ["input", "label"],
        200,
    ),
    Case(
        "defineTag key",
        DEFINE_TAG,
        lambda v, w: {"i": {"key": v, "name": "n"}},
        ["input", "key"],
        63,
        "INVALID_INPUT",
        text=slug,
    ),
    Case(
        "defineTag name",
        DEFINE_TAG,
        lambda v, w: {"i": {"key": "vip", "name": v}},
        ["input", "name"],
        200,
    ),
    Case(
        "defineTag category",
        DEFINE_TAG,
        lambda v, w: {"i": {"key": "vip", "name": "n", "category": v}},
        ["input", "category"],
        200,
    ),
    Case(
        "defineTag allowedValues",
        DEFINE_TAG,
        lambda v, w: {"i": {"key": "tier", "name": "n", "valueType": "ENUM", "allowedValues": [v]}},
        ["input", "allowedValues"],
        500,
        "INVALID_INPUT",
    ),
    Case(
        "updateTag name",
        UPDATE_TAG,
        lambda v, w: {"k": "note", "p": {"name": v}},
        ["patch", "name"],
        200,
    ),
    Case(
        "updateTag category",
        UPDATE_TAG,
        lambda v, w: {"k": "note", "p": {"category": v}},
        ["patch", "category"],
        200,
    ),
    Case(
        "tagCustomers value",
        TAG,
        lambda v, w: {"id": w["customer"], "t": "note", "v": v},
        ["value"],
        500,
        "INVALID_TAG_VALUE",
    ),
    Case(
        "tagCustomers source",
        TAG,
        lambda v, w: {"id": w["customer"], "t": "note", "v": "hi", "s": v},
        ["source"],
        64,
    ),
    Case(
        "defineWebhook url",
        WEBHOOK,
        lambda v, w: {"u": v, "s": SECRET},
        ["url"],
        2000,
        "INVALID_INPUT",
        text=lambda n: "https://example.com/" + "p" * (n - 20),
    ),
    Case(
        "defineWebhook secret",
        WEBHOOK,
        lambda v, w: {"u": "https://example.com/hook", "s": v},
        ["secret"],
        500,
    ),
    Case(
        "defineSegment key",
        SEGMENT,
        lambda v, w: {"i": {"key": v, "name": "n", "condition": CONDITION}},
        ["input", "key"],
        64,
        "INVALID_INPUT",
        text=slug,
        over=["k" * 64 + "\n"],
    ),
    Case(
        "defineSegment name",
        SEGMENT,
        lambda v, w: {"i": {"key": "big", "name": v, "condition": CONDITION}},
        ["input", "name"],
        200,
        text=lambda n: "İ" * n,
    ),
    Case(
        "updateSegment name",
        UPDATE_SEGMENT,
        lambda v, w: {"id": w["segment"], "p": {"name": v}},
        ["patch", "name"],
        200,
        text=lambda n: "İ" * n,
    ),
    Case(
        "configureLifecycle stage key",
        LIFECYCLE,
        lambda v, w: {"i": stages(key=v)},
        ["input", "stages", "0", "key"],
        64,
        "INVALID_MODEL",
        text=slug,
        over=["k" * 64 + "\n"],
    ),
    Case(
        "configureLifecycle stage name",
        LIFECYCLE,
        lambda v, w: {"i": stages(name=v)},
        ["input", "stages", "0", "name"],
        200,
        "INVALID_MODEL",
    ),
    Case(
        "configureLifecycle rule key",
        LIFECYCLE,
        lambda v, w: {"i": stages(rule=v)},
        ["input", "rules", "0", "key"],
        64,
        "INVALID_MODEL",
        text=slug,
        over=["k" * 64 + "\n"],
    ),
    Case(
        # The name is stored, and so is the actor "admin:<name>" of everything the key does.
        "createApiKey name",
        API_KEY,
        lambda v, w: {"n": v},
        ["name"],
        200 - len("admin:"),
    ),
    Case(
        "declareAttributePii key",
        PII,
        lambda v, w: {"k": v},
        ["key"],
        200,
        "INVALID_VALUE",
    ),
]


async def world(api: Api) -> World:
    """A profile, a TEXT tag `note` and a segment, for the cases that name them."""
    identify = 'mutation { identify(input: {identities: [{type: "crm_id", value: "w-1"}]}) {'
    customer = await api.query(identify + " customer { id } } }")
    tag = await api.query(DEFINE_TAG, {"i": {"key": "note", "name": "n", "valueType": "TEXT"}})
    assert tag["defineTag"]["errors"] == []
    segment = await api.query(
        "mutation($i: SegmentInput!) { defineSegment(input: $i) { segment { id } errors { code } } }",
        {"i": {"key": "seg", "name": "s", "condition": CONDITION}},
    )
    assert segment["defineSegment"]["errors"] == []
    return {
        "customer": customer["identify"]["customer"]["id"],
        "segment": segment["defineSegment"]["segment"]["id"],
    }


async def dump(db: Database) -> dict[str, list[str]]:
    """Every row of every table but the audit trail (a refused mutation is audited too)."""
    async with db.read() as session:
        return {
            table.name: sorted(repr(tuple(row)) for row in await session.execute(select(table)))
            for table in Base.metadata.sorted_tables
            if not table.name.startswith("audit_")
        }


def errors_of(body: dict[str, Any]) -> list[tuple[str, list[str]]]:
    assert not body.get("errors"), body
    ((_, payload),) = body["data"].items()
    return [(e["code"], e["field"]) for e in payload["errors"]]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
async def test_text_at_its_columns_limit_is_stored_and_past_it_refused_with_nothing_written(
    api: Api, db: Database, case: Case
) -> None:
    known = await world(api)
    before = await dump(db)
    for value in case.refused():
        response = await api.post(case.document, case.variables(value, known))
        assert response.status_code == 200, response.text
        assert errors_of(response.json()) == [(case.code, case.path)], (len(value), value[-3:])
        assert await dump(db) == before, "a refused mutation wrote something"
    response = await api.post(case.document, case.variables(case.at_limit(), known))
    assert errors_of(response.json()) == []


FILTERS = [
    ("customers where tag", """query($v: String!) {
      customers(where: {tag: {key: $v}}) { totalCount } }"""),
    ("customers where tag value", """query($v: String!) {
      customers(where: {tag: {key: "note", op: EQ, value: $v}}) { totalCount } }"""),
    ("customers where stage", """query($v: String!) {
      customers(where: {stage: {in: [$v]}}) { totalCount } }"""),
    ("customers where event", """query($v: String!) {
      customers(where: {event: {type: $v, channel: $v}}) { totalCount } }"""),
    ("customers where attribute", """query($v: JSON) {
      customers(where: {attribute: {field: "city", op: EQ, value: $v}}) { totalCount } }"""),
    ("customers where identity type", """query($v: String!) {
      customers(where: {identity: {type: $v}}) { totalCount } }"""),
    ("customers in segment", """query($v: ID) { customers(segment: $v) { totalCount } }"""),
    ("customer by identity", """query($v: String!) {
      customer(identity: {type: "device_id", value: $v}) { id } }"""),
    ("tagDefinitions category", """query($v: String) { tagDefinitions(category: $v) { key } }"""),
    ("tagDefinition key", """query($v: String!) { tagDefinition(key: $v) { key } }"""),
    ("segment key", """query($v: String) { segment(key: $v) { key } }"""),
    ("auditLog actor", """query($v: String) { auditLog(actor: $v) { edges { cursor } } }"""),
]  # fmt: skip


@pytest.mark.parametrize(("name", "query"), FILTERS, ids=[name for name, _ in FILTERS])
async def test_a_filter_on_a_bounded_column_answers_an_overlong_value_without_a_bug(
    api: Api, name: str, query: str
) -> None:
    await world(api)
    for value in ("İ" * 2000, "k" * 2001):
        response = await api.post(query, {"v": value})
        assert response.status_code == 200, response.text
        body = response.json()
        codes = [e["extensions"]["code"] for e in body.get("errors") or []]
        assert "INTERNAL_ERROR" not in codes, body
        if not codes:  # no match
            data = next(iter(body["data"].values()))
            assert data in (None, [], {"totalCount": 0}, {"edges": []}), body
