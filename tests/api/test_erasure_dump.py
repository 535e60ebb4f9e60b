"""After eraseCustomer, a dump of every table holds none of the person's values, those of the
profiles merged into theirs included; conditions that named them are reported."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update

from api.ids import from_global_id
from service.dispatcher import Dispatcher
from service.settings import Settings
from store.models import Base, IdempotencyKey
from store.pubsub import InProcessBroker
from tests.conftest import Api

EMAIL = "zoraida.quint@example.org"
EMAIL2 = "zq.other@example.net"
PHONE = "13912345678"
DEVICE = "dev-7f3a9c2e51"
FIRST, LAST, OTHER_FIRST = "Zoraida", "Quintanilla", "Zorabelle"
BIRTHDAY = "1987-03-14"
ATTRIBUTE = "lovebird-zq-42"
NOTE = f"asked to be mailed at {EMAIL}"
PII = [EMAIL, EMAIL2, PHONE, DEVICE, FIRST, LAST, OTHER_FIRST, BIRTHDAY, ATTRIBUTE, NOTE]

IDENTIFY = """mutation($input: IdentifyInput!) { identify(input: $input) {
  customer { id } merges { id } errors { code field message } } }"""
BATCH = """mutation($inputs: [IdentifyInput!]!, $key: String) {
  identifyBatch(inputs: $inputs, idempotencyKey: $key) { results { customer { id } } errors { code } } }"""
MERGE = """mutation($s: ID!, $m: ID!, $r: String) { mergeCustomers(survivor: $s, merged: $m, reason: $r) {
  merge { id } errors { code } } }"""
UPDATE = """mutation($id: ID!, $patch: CustomerPatch!) { updateCustomer(id: $id, patch: $patch) {
  errors { code field } } }"""
DEFINE_TAG = """mutation($input: TagDefinitionInput!) { defineTag(input: $input) { errors { code field } } }"""
TAG = """mutation($tag: String!, $ids: [ID!], $value: String) {
  tagCustomers(tag: $tag, customers: $ids, value: $value) { affected errors { code field } } }"""
STAGE = """mutation($id: ID!, $reason: String) {
  setStage(customer: $id, stage: "consideration", reason: $reason, force: true) { errors { code } } }"""
TRACK = """mutation($events: [EventInput!]!) { trackEvents(events: $events) { accepted errors { code } } }"""
RECORD = """mutation($orders: [OrderInput!]!) { recordOrders(orders: $orders) { accepted errors { code } } }"""
WEBHOOK = """mutation($url: String!, $kinds: [String!]!) {
  defineWebhook(url: $url, kinds: $kinds, secret: "a-long-enough-secret-0123456789") { errors { code } } }"""
SEGMENT = (
    """mutation($input: SegmentInput!) { defineSegment(input: $input) { errors { code field } } }"""
)
ERASE = """mutation($id: ID!) { eraseCustomer(id: $id) {
  erasedId conditionsNamingCustomer { kind id key name redacted } errors { code } } }"""


def ids(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"type": t, "value": v} for t, v in pairs]


def _text(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, datetime | date | Decimal | uuid.UUID):
        return str(value)
    return "" if value is None else str(value)


async def dump(api: Api) -> str:
    """Every row of every table, every value as text (JSON unescaped), one line a row."""
    lines = []
    async with api.db.read() as session:
        for table in Base.metadata.sorted_tables:
            for row in await session.execute(select(table)):
                cells = " | ".join(_text(v) for v in row)
                lines.append(f"{table.name}: {cells}")
    return "\n".join(lines)


def found(text: str, values: list[str]) -> dict[str, list[str]]:
    folded = text.casefold()
    hits: dict[str, list[str]] = {}
    for value in values:
        if value.casefold() in folded:
            hits[value] = [
                line for line in text.splitlines() if value.casefold() in line.casefold()
            ]
    return hits


async def history(api: Api, settings: Settings) -> str:
    """A realistic past for one person; returns their live profile's id."""
    assert (await api.query(WEBHOOK, {"url": "https://hooks.example.com/in", "kinds": [
        "customer.created", "customer.updated", "customer.merged", "identity.linked",
        "tag.assigned", "stage.changed", "customer.erased",
    ]}))["defineWebhook"]["errors"] == []  # fmt: skip
    traits = {"firstName": FIRST, "lastName": LAST, "displayName": f"{FIRST} {LAST}",
              "birthday": BIRTHDAY, "attributes": {"pet": ATTRIBUTE}}  # fmt: skip
    first = await api.query(
        IDENTIFY,
        {"input": {"identities": ids(("email", EMAIL), ("phone", PHONE)), "traits": traits}},
    )
    survivor = first["identify"]["customer"]["id"]
    device = await api.query(
        IDENTIFY,
        {"input": {"identities": ids(("device_id", DEVICE)), "traits": {"firstName": OTHER_FIRST}}},
    )
    assert device["identify"]["customer"]["id"] != survivor
    linked = await api.query(
        IDENTIFY, {"input": {"identities": ids(("email", EMAIL), ("device_id", DEVICE))}}
    )
    assert linked["identify"]["merges"], "the device's profile merges by identify"
    other = await api.query(
        IDENTIFY,
        {"input": {"identities": ids(("email", EMAIL2)), "traits": {"lastName": LAST}}},
    )
    other_id = other["identify"]["customer"]["id"]
    merged = await api.query(
        MERGE, {"s": survivor, "m": other_id, "r": f"same person: {EMAIL2} is {EMAIL}"}
    )
    assert merged["mergeCustomers"]["errors"] == []
    batch = await api.query(
        BATCH, {"key": "batch-1", "inputs": [{"identities": ids(("email", EMAIL))}]}
    )
    assert batch["identifyBatch"]["errors"] == []
    patch = {"city": "Hangzhou", "attributes": {"pet": ATTRIBUTE, "motto": NOTE}}
    assert (await api.query(UPDATE, {"id": survivor, "patch": patch}))["updateCustomer"][
        "errors"
    ] == []
    for key, value_type in (("note", "TEXT"), ("tier", "ENUM")):
        tag: dict[str, Any] = {"key": key, "name": key, "valueType": value_type}
        if value_type == "ENUM":
            tag["allowedValues"] = ["gold"]
        assert (await api.query(DEFINE_TAG, {"input": tag}))["defineTag"]["errors"] == []
    for value in (f"first note {EMAIL}", NOTE):
        tagged = await api.query(TAG, {"tag": "note", "ids": [survivor], "value": value})
        assert tagged["tagCustomers"]["errors"] == []
    await api.query(TAG, {"tag": "tier", "ids": [survivor], "value": "gold"})
    staged = await api.query(STAGE, {"id": survivor, "reason": f"phoned {EMAIL}"})
    assert staged["setStage"]["errors"] == []
    events = [{"customer": {"type": "email", "value": EMAIL}, "type": "search",
               "properties": {"q": EMAIL, "who": FIRST}, "idempotencyKey": f"ev-{EMAIL}"}]  # fmt: skip
    assert (await api.query(TRACK, {"events": events}))["trackEvents"]["accepted"] == 1
    orders = [{"customer": {"type": "phone", "value": PHONE}, "externalId": "o-1",
               "amount": "12.50", "currency": "CNY"}]  # fmt: skip
    assert (await api.query(RECORD, {"orders": orders}))["recordOrders"]["accepted"] == 1
    for key, condition in (
        ("by_email", {"attribute": {"field": "email", "op": "EQ", "value": EMAIL.upper()}}),
        ("by_note", {"tag": {"key": "note", "op": "CONTAINS", "value": EMAIL}}),
        ("by_city", {"attribute": {"field": "city", "op": "EQ", "value": "Hangzhou"}}),
    ):
        segment = {"key": key, "name": key, "condition": condition}
        assert (await api.query(SEGMENT, {"input": segment}))["defineSegment"]["errors"] == []
    # An answer stored by an idempotent mutation whose message quoted a value.
    async with api.db.write() as session:
        await session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == "batch-1")
            .values(
                response={
                    "results": [
                        {
                            "customer_id": None,
                            "created": False,
                            "merge_ids": [],
                            "errors": [{"code": "X", "field": [], "message": f"{EMAIL} refused"}],
                        }
                    ]
                }
            )
        )
    async with Dispatcher(api.db, InProcessBroker(), settings) as dispatcher:
        await dispatcher.dispatch_once()
    return survivor  # type: ignore[no-any-return]


async def test_after_erasure_no_table_holds_the_persons_values(
    api: Api, settings: Settings
) -> None:
    survivor = await history(api, settings)
    before = await dump(api)
    assert set(found(before, PII)) == set(PII), "the history must put every value in the dump"
    assert "webhook_deliveries" in before

    erased = (await api.query(ERASE, {"id": survivor}))["eraseCustomer"]
    assert erased["errors"] == [] and erased["erasedId"] == survivor

    after = await dump(api)
    assert found(after, PII) == {}
    _, key = from_global_id(survivor)
    assert key in after, "the profile itself stays, as ERASED"

    reported = {(c["kind"], c["key"], c["redacted"]) for c in erased["conditionsNamingCustomer"]}
    assert reported == {("SEGMENT", "by_email", True), ("SEGMENT", "by_note", True)}


async def test_conditions_naming_only_part_of_a_value_are_reported_and_kept(api: Api) -> None:
    first = await api.query(IDENTIFY, {"input": {"identities": ids(("email", EMAIL))}})
    survivor = first["identify"]["customer"]["id"]
    condition = {"attribute": {"field": "email", "op": "STARTS_WITH", "value": "zoraida.quint@"}}
    contains = {"key": "by_prefix", "name": "Prefix", "condition": condition}
    assert (await api.query(SEGMENT, {"input": contains}))["defineSegment"]["errors"] == []
    exact = {"attribute": {"field": "email", "op": "IN", "values": ["x@example.com", EMAIL]}}
    listed = {"key": "by_list", "name": "List", "condition": exact}
    assert (await api.query(SEGMENT, {"input": listed}))["defineSegment"]["errors"] == []

    erased = (await api.query(ERASE, {"id": survivor}))["eraseCustomer"]
    refs = {c["key"]: c for c in erased["conditionsNamingCustomer"]}
    assert set(refs) == {"by_list"}, "a literal shorter than the value names other people too"
    assert refs["by_list"]["kind"] == "SEGMENT" and refs["by_list"]["redacted"] is True
    assert refs["by_list"]["id"] and refs["by_list"]["name"] == "List"
    segments = await api.query("{ segments(first: 10) { edges { node { key condition } } } }")
    nodes = [edge["node"] for edge in segments["segments"]["edges"]]
    conditions = {node["key"]: node["condition"] for node in nodes}
    assert EMAIL not in json.dumps(conditions)
    assert "x@example.com" in json.dumps(conditions["by_list"])
