"""The hostile cases of `python -m bench fuzz`: what a probe of the service sent, as requests.

- documents that amplify (fragments that each spread the one below twice, up to 39 levels);
- malformed requests: bodies that are not a JSON object, not UTF-8, nested 100,000 deep,
  with lone surrogates, NaN, huge numbers, bad GET parameters, and bodies over the size limit
  (declared, and chunked without a length);
- extreme values through every mutation and filter that takes them: timestamps in year 1 at
  +14:00, `withinDays` 2^31-1, amounts of 1e308 and beyond, FREQUENCY 2^70, NaN and Infinity
  (as strings; as JSON tokens they are malformed bodies), a device id that lowercasing makes
  longer than its column, forged cursors and ids, a NUMBER tag value "1e400" and a 400-digit
  attribute, each followed by a filter on it;
- text at and past every bounded column's length, lengthened by lowercasing or NFKC as stored
  (bench.lengthening).

`probes(customer_id)` lists them in the order they must be sent (a value is stored, then
filtered on). Each probe is one HTTP request; none may get a 5xx, an INTERNAL_ERROR or take
over a second.
"""

from __future__ import annotations

from typing import Any

from bench.lengthening import lengthening
from bench.probe import JSON, Probe, gql

EARLY = "0001-01-01T00:00:00+14:00"
LATE = "9999-12-31T23:59:59-14:00"
BIG = 10**400  # json.dumps writes all 401 digits
FORGED_CURSORS = ["forged", "Y3Vyc29yOjE=", "eyJrIjpbMSwyXX0=", "=" * 40, "A" * 500]


def fan_out(levels: int, under: str = "customers(first: 1) { edges { node { ...F$ } } }") -> str:
    fragments = ["fragment F0 on Customer { id displayName }"]
    fragments += [
        f"fragment F{n} on Customer {{ ...F{n - 1} ...F{n - 1} }}" for n in range(1, levels + 1)
    ]
    return "{ " + under.replace("$", str(levels)) + " }\n" + "\n".join(fragments)


def documents() -> list[Probe]:
    return [
        *(gql(f"fan-out {n} levels", fan_out(n)) for n in (8, 11, 12, 20, 39)),
        gql(
            "fan-out under a segment's members",
            fan_out(39, 'segment(id: "x") { members(first: 1) { edges { node { ...F$ } } } }'),
        ),
        gql(
            "fan-out of aliases on Query",
            "{ ...Q30 }\nfragment Q0 on Query { a: __typename b: __typename }\n"
            + "\n".join(
                f"fragment Q{n} on Query {{ ...Q{n - 1} ...Q{n - 1} }}" for n in range(1, 31)
            ),
        ),
    ]


def malformed() -> list[Probe]:
    deep = b"[" * 100_000 + b"]" * 100_000
    ok = b'"query": "{ __typename }"'
    return [
        Probe("a string body", b'"{ __typename }"'),
        Probe("a number body", b"42"),
        Probe("a null body", b"null"),
        Probe("an empty body", b""),
        Probe("not JSON", b"{ __typename }"),
        Probe("invalid UTF-8", b'{"query": "{ __typename \xff }"}'),
        Probe("100,000-deep variables", b"{" + ok + b', "variables": {"a": ' + deep + b"}}"),
        Probe("lone surrogate in operationName", b"{" + ok + b', "operationName": "\\ud800"}'),
        Probe(
            "lone surrogate in the query",
            b'{"query": "{ tagDefinition(key: \\"\\udfff\\") { key } }"}',
        ),
        Probe("lone surrogate in traits", _identify_raw(b'{"name\\ud800": "x\\udc00"}')),
        Probe("lone surrogate in a name", _identify_raw(b'{"firstName": "\\ud83d"}')),
        Probe("NaN token in traits", _identify_raw(b'{"score": NaN}')),
        Probe("Infinity token in traits", _identify_raw(b'{"score": -Infinity}')),
        Probe("1e400 token in traits", _identify_raw(b'{"score": 1e400}')),
        Probe("a 5000-digit integer", _identify_raw(b'{"score": ' + b"9" * 5000 + b"}")),
        Probe("variables a list", b"{" + ok + b', "variables": [1, 2]}'),
        Probe("operationName a number", b"{" + ok + b', "operationName": 7}'),
        Probe("query a number", b'{"query": 7}'),
        Probe("a batch", b"[{" + ok + b"}]"),
        Probe("GET variables not JSON", params={"query": "{ __typename }", "variables": "{"}),
        Probe("GET variables deep", params={"query": "{ __typename }", "variables": "[" * 5000}),
        Probe("GET a mutation", params={"query": "mutation { __typename }"}),
        Probe("declared 2 MB", b"{" + ok + b', "pad": "' + b"x" * 2_000_000 + b'"}'),
        Probe("chunked 50 MB", chunks=800),
    ]


def _identify_raw(traits: bytes) -> bytes:
    return (
        b'{"query": "mutation($i: IdentifyInput!) { identify(input: $i) { errors { code } } }",'
        b' "variables": {"i": {"identities": [{"type": "crm_id", "value": "fuzz-raw"}],'
        b' "traits": ' + traits + b"}}}"
    )


IDENTIFY = (
    "mutation($i: IdentifyInput!) { identify(input: $i) { customer { id } errors { code field } } }"
)
EVENTS = "mutation($e: [EventInput!]!) { trackEvents(events: $e) { errors { code field } } }"
ORDERS = "mutation($o: [OrderInput!]!) { recordOrders(orders: $o) { errors { code field } } }"
UPDATE = (
    "mutation($id: ID!, $p: CustomerPatch!)"
    " { updateCustomer(id: $id, patch: $p) { errors { code field } } }"
)
DEFINE_TAG = "mutation($t: TagDefinitionInput!) { defineTag(input: $t) { errors { code field } } }"
TAG = (
    "mutation($id: ID!, $v: String)"
    ' { tagCustomers(tag: "fuzz_n", customers: [$id], value: $v) { errors { code field } } }'
)
SEGMENT = "mutation($s: SegmentInput!) { defineSegment(input: $s) { errors { code field } } }"
FILTER = "query($w: ConditionInput) { customers(where: $w, first: 5) { edges { node { id } } } }"
PREVIEW = "query($c: ConditionInput!) { previewSegment(condition: $c) { count } }"
FUNNEL = (
    "query($from: DateTime, $to: DateTime) { funnel(from: $from, to: $to) { stages { current } } }"
)
CRM = {"type": "crm_id", "value": "fuzz-1"}


def _attribute(field: str, op: str, value: Any) -> dict[str, Any]:
    return {"attribute": {"field": field, "op": op, "value": value}}


def conditions() -> list[tuple[str, dict[str, Any]]]:
    return [
        ("createdAt in year 1", _attribute("createdAt", "GT", EARLY)),
        ("createdAt in year 9999", _attribute("createdAt", "LT", LATE)),
        ("birthday in year 1", _attribute("birthday", "EQ", "0001-01-01")),
        ("event withinDays 2^31-1", {"event": {"type": "x", "withinDays": 2147483647}}),
        ("event count 2^70", {"event": {"type": "x", "count": 2**31 - 1}}),
        (
            "orders withinDays 2^31-1",
            {"orders": {"withinDays": 2147483647, "measure": "SUM", "op": "GT", "value": 1e308}},
        ),
        ("orders value -1e308", {"orders": {"measure": "AVERAGE", "op": "LT", "value": -1e308}}),
        ("FREQUENCY 2^70", {"metric": {"name": "FREQUENCY", "op": "GT", "value": 2**70}}),
        ("MONETARY 1e308", {"metric": {"name": "MONETARY", "op": "GT", "value": 1e308}}),
        ("MONETARY '1e400'", {"metric": {"name": "MONETARY", "op": "GT", "value": "1e400"}}),
        ("CLV 400 digits", {"metric": {"name": "CLV", "op": "LT", "value": BIG}}),
        ("attribute NaN string", _attribute("attributes.score", "GT", "NaN")),
        ("attribute 400 digits", _attribute("attributes.big", "GT", BIG)),
        (
            "attribute BETWEEN huge",
            {"attribute": {"field": "attributes.big", "op": "BETWEEN", "values": [-BIG, BIG]}},
        ),
        ("tag NUMBER GT 1e400", {"tag": {"key": "fuzz_n", "op": "GT", "value": "1e400"}}),
        ("tag NUMBER GT 1", {"tag": {"key": "fuzz_n", "op": "GT", "value": "1"}}),
        ("device id of İ", {"identity": {"type": "device_id", "value": "İ" * 512}}),
    ]


def extreme_values(customer_id: str) -> list[Probe]:
    found = [
        gql(
            "identify occurredAt year 1",
            IDENTIFY,
            {"i": {"identities": [CRM], "occurredAt": EARLY}},
        ),
        gql(
            "identify a device id of 512 İ",
            IDENTIFY,
            {"i": {"identities": [{"type": "device_id", "value": "İ" * 512}]}},
        ),
        gql(
            "identify traits NaN/Infinity strings",
            IDENTIFY,
            {
                "i": {
                    "identities": [CRM],
                    "traits": {"score": "NaN", "rate": "Infinity", "birthday": "0001-01-01"},
                }
            },
        ),
        gql(
            "identify traits 400 digits",
            IDENTIFY,
            {"i": {"identities": [CRM], "traits": {"big": BIG}}},
        ),
        gql(
            "identify a 100,000-char name",
            IDENTIFY,
            {"i": {"identities": [CRM], "traits": {"firstName": "n" * 100_000}}},
        ),
        gql(
            "identify a 1,000-char key",
            IDENTIFY,
            {"i": {"identities": [CRM], "traits": {"k" * 1000: 1}}},
        ),
        gql(
            "trackEvents occurredAt year 1",
            EVENTS,
            {"e": [{"customer": CRM, "type": "x", "occurredAt": EARLY}]},
        ),
        gql(
            "trackEvents occurredAt year 9999",
            EVENTS,
            {"e": [{"customer": CRM, "type": "x", "occurredAt": LATE}]},
        ),
        *(
            gql(
                f"recordOrders amount {amount}",
                ORDERS,
                {
                    "o": [
                        {
                            "customer": CRM,
                            "externalId": f"o-{n}",
                            "amount": amount,
                            "currency": "CNY",
                            "placedAt": EARLY if n == 0 else None,
                        }
                    ]
                },
            )
            for n, amount in enumerate(
                [
                    "1",
                    "1e308",
                    "1e400",
                    "-1e308",
                    "NaN",
                    "Infinity",
                    "9" * 400,
                    "0.000000000000000000001",
                ]
            )
        ),
        gql(
            "updateCustomer attributes 400 digits",
            UPDATE,
            {"id": customer_id, "p": {"attributes": {"big": BIG}}},
        ),
        gql(
            "updateCustomer attributes NaN strings",
            UPDATE,
            {"id": customer_id, "p": {"attributes": {"score": "NaN"}}},
        ),
        gql(
            "updateCustomer birthday year 1",
            UPDATE,
            {"id": customer_id, "p": {"birthday": "0001-01-01"}},
        ),
        gql(
            "defineTag NUMBER",
            DEFINE_TAG,
            {"t": {"key": "fuzz_n", "name": "n", "valueType": "NUMBER"}},
        ),
        gql(
            "defineTag ttl 2^31-1",
            DEFINE_TAG,
            {"t": {"key": "fuzz_t", "name": "t", "defaultTtlDays": 2147483647}},
        ),
        *(
            gql(f"tagCustomers NUMBER {v}", TAG, {"id": customer_id, "v": v})
            for v in ("1e400", "NaN", "9" * 400, "1")
        ),
        gql("funnel from year 1", FUNNEL, {"from": EARLY}),
        gql("funnel to year 9999", FUNNEL, {"from": EARLY, "to": LATE}),
    ]
    for name, condition in conditions():
        found.append(gql(f"filter {name}", FILTER, {"w": condition}))
        found.append(gql(f"preview {name}", PREVIEW, {"c": condition}))
        found.append(
            gql(
                f"segment {name}",
                SEGMENT,
                {"s": {"key": "fuzz_s", "name": "s", "condition": condition}},
            )
        )
    for cursor in FORGED_CURSORS:
        found.append(
            gql(
                f"customers after {cursor[:12]}",
                "query($a: String) { customers(first: 2, after: $a) { edges { cursor } } }",
                {"a": cursor},
            )
        )
        found.append(
            gql(
                f"customers before {cursor[:12]}",
                "query($a: String) { customers(last: 2, before: $a) { edges { cursor } } }",
                {"a": cursor},
            )
        )
        found.append(
            gql(
                f"segments after {cursor[:12]}",
                "query($a: String) { segments(first: 2, after: $a) { edges { cursor } } }",
                {"a": cursor},
            )
        )
        found.append(
            gql(
                f"auditLog after {cursor[:12]}",
                "query($a: String) { auditLog(first: 2, after: $a) { edges { cursor } } }",
                {"a": cursor},
            )
        )
        found.append(
            gql(
                f"events after {cursor[:12]}",
                "query($id: ID!, $a: String) { customer(id: $id) {"
                " events(first: 2, after: $a) { edges { cursor } }"
                " orders(first: 2, after: $a) { edges { cursor } } } }",
                {"id": customer_id, "a": cursor},
            )
        )
        found.append(
            gql(f"node {cursor[:12]}", "query($a: ID!) { node(id: $a) { id } }", {"a": cursor})
        )
    return found


def probes(customer_id: str) -> list[Probe]:
    return [
        *documents(),
        *malformed(),
        *extreme_values(customer_id),
        *lengthening(customer_id),
    ]


SETUP = gql("setup", IDENTIFY, {"i": {"identities": [CRM], "traits": {"firstName": "Fuzz"}}})

__all__ = ["JSON", "SETUP", "Probe", "probes"]
