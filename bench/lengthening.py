"""Hostile text for `python -m bench fuzz`: every mutation input stored in a String(n) column,
sent at and past n characters, in ASCII and in characters that get longer as they are stored
or compared: 'İ' (two characters lowercased, as identity values are), 'ß' (two uppercased),
'ﬃ' (three once NFKC, as identity values are); a slug with a final newline (which `$` lets
through); then every filter that compares text with a bounded column, with the same values.

A value past its column must be refused with a code (domain.values.text_for), never reach the
database; the answer may refuse or accept, but never be a 5xx or an INTERNAL_ERROR.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.probe import Probe, gql

Variables = Callable[[str, str], dict[str, Any]]  # (value, customer id) -> variables

CRM = {"type": "crm_id", "value": "fuzz-1"}
CONDITION = {"attribute": {"field": "city", "op": "EQ", "value": "x"}}


def _payload(field: str, signature: str, call: str) -> str:
    return f"mutation({signature}) {{ {field}({call}) {{ errors {{ code field }} }} }}"


IDENTIFY = _payload("identify", "$i: IdentifyInput!", "input: $i")
EVENTS = _payload("trackEvents", "$e: [EventInput!]!", "events: $e")
ORDERS = _payload("recordOrders", "$o: [OrderInput!]!", "orders: $o")
UPDATE = _payload("updateCustomer", "$id: ID!, $p: CustomerPatch!", "id: $id, patch: $p")
TYPE = _payload("defineIdentityType", "$i: IdentityTypeInput!", "input: $i")
TAG = _payload("defineTag", "$i: TagDefinitionInput!", "input: $i")
SEGMENT = _payload("defineSegment", "$i: SegmentInput!", "input: $i")
LIFECYCLE = _payload(
    "configureLifecycle",
    "$i: LifecycleModelInput!",
    'input: $i, stageMapping: {awareness: "client", consideration: "client", '
    'purchase: "client", loyalty: "client", churned: "client"}',
)


def _model(key: str = "lead", name: str = "Lead", rule: str = "bought") -> dict[str, Any]:
    orders = {"orders": {"measure": "COUNT", "op": "GTE", "value": 1}}
    return {
        "stages": [{"key": key, "name": name}, {"key": "client", "name": "Client"}],
        "transitions": [{"from": key, "to": "client"}],
        "rules": [{"key": rule, "toStage": "client", "condition": orders}],
    }


def _trait(name: str) -> Variables:
    return lambda v, _: {"i": {"identities": [CRM], "traits": {name: v}}}


# (what, column length, normalised as stored, document, variables)
BOUNDED: list[tuple[str, int, bool, str, Variables]] = [
    ("identify device_id", 512, True, IDENTIFY,
     lambda v, _: {"i": {"identities": [{"type": "device_id", "value": v}]}}),
    ("identify crm_id", 512, True, IDENTIFY,
     lambda v, _: {"i": {"identities": [{"type": "crm_id", "value": v}]}}),
    ("identify email", 512, True, IDENTIFY,
     lambda v, _: {"i": {"identities": [{"type": "email", "value": v + "@example.com"}]}}),
    ("identify source", 64, False, IDENTIFY,
     lambda v, _: {"i": {"identities": [CRM], "source": v}}),
    *((f"identify {name}", limit, False, IDENTIFY, _trait(name)) for name, limit in [
        ("displayName", 200), ("firstName", 100), ("lastName", 100), ("gender", 32),
        ("locale", 35), ("country", 64), ("region", 100), ("city", 100)]),
    ("identifyBatch idempotencyKey", 200, False,
     _payload("identifyBatch", "$i: [IdentifyInput!]!, $k: String",
              "inputs: $i, idempotencyKey: $k"),
     lambda v, _: {"i": [{"identities": [CRM]}], "k": v}),
    ("updateCustomer displayName", 200, False, UPDATE,
     lambda v, c: {"id": c, "p": {"displayName": v}}),
    ("updateCustomer locale", 35, False, UPDATE, lambda v, c: {"id": c, "p": {"locale": v}}),
    ("trackEvents type", 64, False, EVENTS, lambda v, _: {"e": [{"customer": CRM, "type": v}]}),
    ("trackEvents channel", 64, False, EVENTS,
     lambda v, _: {"e": [{"customer": CRM, "type": "x", "channel": v}]}),
    ("trackEvents idempotencyKey", 200, False, EVENTS,
     lambda v, _: {"e": [{"customer": CRM, "type": "x", "idempotencyKey": v}]}),
    ("recordOrders externalId", 200, False, ORDERS,
     lambda v, _: {"o": [{"customer": CRM, "externalId": v, "amount": "1", "currency": "CNY"}]}),
    ("recordOrders source", 64, False, ORDERS,
     lambda v, _: {"o": [{"customer": CRM, "externalId": "len", "amount": "1",
                          "currency": "CNY", "source": v}]}),
    ("defineIdentityType key", 64, False, TYPE,
     lambda v, _: {"i": {"key": v, "label": "l", "normalizer": "lowercase"}}),
    ("defineIdentityType label", 200, False, TYPE,
     lambda v, _: {"i": {"key": "fuzz_type", "label": v, "normalizer": "lowercase"}}),
    ("defineIdentityType blockedValues", 512, True, TYPE,
     lambda v, _: {"i": {"key": "fuzz_type", "label": "l", "normalizer": "lowercase",
                         "blockedValues": [v]}}),
    ("defineTag key", 64, False, TAG, lambda v, _: {"i": {"key": v, "name": "n"}}),
    ("defineTag name", 200, False, TAG, lambda v, _: {"i": {"key": "fuzz_len", "name": v}}),
    ("defineTag category", 200, False, TAG,
     lambda v, _: {"i": {"key": "fuzz_len", "name": "n", "category": v}}),
    ("defineTag allowedValues", 500, False, TAG,
     lambda v, _: {"i": {"key": "fuzz_enum", "name": "n", "valueType": "ENUM",
                         "allowedValues": [v]}}),
    ("updateTag name", 200, False,
     _payload("updateTag", "$p: TagDefinitionPatch!", 'key: "fuzz_text", patch: $p'),
     lambda v, _: {"p": {"name": v, "category": v}}),
    ("tagCustomers value and source", 500, False,
     _payload("tagCustomers", "$id: ID!, $v: String",
              'tag: "fuzz_text", customers: [$id], value: $v, source: $v'),
     lambda v, c: {"id": c, "v": v}),
    ("defineWebhook url", 2000, False,
     _payload("defineWebhook", "$u: String!, $s: String!",
              'url: $u, kinds: ["customer.merged"], secret: $s'),
     lambda v, _: {"u": "https://example.com/" + v, "s": "s" * 16 + v}),
    ("defineSegment key", 64, False, SEGMENT,
     lambda v, _: {"i": {"key": v, "name": "n", "condition": CONDITION}}),
    ("defineSegment name", 200, False, SEGMENT,
     lambda v, _: {"i": {"key": "fuzz_len", "name": v, "condition": CONDITION}}),
    ("configureLifecycle stage key", 64, False, LIFECYCLE, lambda v, _: {"i": _model(key=v)}),
    ("configureLifecycle stage name", 200, False, LIFECYCLE,
     lambda v, _: {"i": _model(name=v)}),
    ("configureLifecycle rule key", 64, False, LIFECYCLE, lambda v, _: {"i": _model(rule=v)}),
    ("setStage stage and reason", 64, False,
     _payload("setStage", "$id: ID!, $v: String!", "customer: $id, stage: $v, reason: $v"),
     lambda v, c: {"id": c, "v": v}),
    ("createApiKey name", 200, False,
     _payload("createApiKey", "$v: String!", "name: $v, role: INTEGRATION"),
     lambda v, _: {"v": v}),
    ("declareAttributePii key", 200, False,
     _payload("declareAttributePii", "$v: String!", "key: $v, pii: true"),
     lambda v, _: {"v": v}),
]  # fmt: skip

FILTERS: list[tuple[str, str]] = [
    ("where tag", "query($v: String!) { customers(where: {tag: {key: $v}}) { totalCount } }"),
    ("where tag value", 'query($v: String!) { customers(where: {tag: {key: "fuzz_text", '
     "op: EQ, value: $v}}) { totalCount } }"),
    ("where stage", "query($v: String!) { customers(where: {stage: {in: [$v]}}) { totalCount } }"),
    ("where event", "query($v: String!) { customers(where: {event: {type: $v, channel: $v}}) "
     "{ totalCount } }"),
    ("where identity", "query($v: String!) { customers(where: {identity: {type: $v}}) "
     "{ totalCount } }"),
    ("where attribute", 'query($v: JSON) { customers(where: {attribute: {field: "city", '
     "op: STARTS_WITH, value: $v}}) { totalCount } }"),
    ("customer by identity", 'query($v: String!) { customer(identity: {type: "device_id", '
     "value: $v}) { id } }"),
    ("tagDefinition", "query($v: String!) { tagDefinition(key: $v) { key } }"),
    ("tagDefinitions", "query($v: String) { tagDefinitions(category: $v) { key } }"),
    ("segment by key", "query($v: String) { segment(key: $v) { key } }"),
    ("auditLog actor", "query($v: String) { auditLog(actor: $v) { edges { cursor } } }"),
]  # fmt: skip


def values(limit: int, normalised: bool) -> list[str]:
    """At the limit and one past it, as sent and as stored."""
    found = ["x" * limit, "x" * (limit + 1), "İ" * limit, "İ" * (limit + 1), "ß" * (limit + 1)]
    found.append("k" * limit + "\n")
    if normalised:  # at the limit once lowercased or NFKC, and one past it
        found += ["İ" * (limit // 2), "İ" * (limit // 2 + 1), "ﬃ" * (limit // 3 + 1)]
    return found


def lengthening(customer_id: str) -> list[Probe]:
    found = [
        gql(
            "defineTag TEXT",
            TAG,
            {"i": {"key": "fuzz_text", "name": "t", "valueType": "TEXT"}},
        )
    ]
    for what, limit, normalised, document, variables in BOUNDED:
        for value in values(limit, normalised):
            name = f"{what} {value[:1]!r} x {len(value)}"
            found.append(gql(name, document, variables(value, customer_id)))
    for what, query in FILTERS:
        for value in ("İ" * 513, "ß" * 2001, "ﬃ" * 700):
            found.append(gql(f"filter {what} {value[:1]!r} x {len(value)}", query, {"v": value}))
    return found
