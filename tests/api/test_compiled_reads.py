"""Compiled customer reads (domain.profile_json, api.compiled_reads) answer exactly as the
resolvers do: the same data, errors and charged cost, for every role, on both backends (on
SQLite both sides are the resolvers; the test then checks the switch changes nothing).
Documents: the reads the customer, PII and role tests send, and selection sets hypothesis
draws over Customer and its connection (a bounded, derandomized set: the test stays cheap).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from api.app import create_app
from api.ids import to_global_id
from api.json_text import JsonText, encode
from api.schema.customers import CustomerStatus
from api.schema.tags import TagKind, TagValueType
from domain.access.keys import Role
from service.settings import Settings
from store.db import Database
from store.json_fields import ENUMS
from store.models import CustomerMetrics, StageTransition, TagAssignment, TagDefinition
from tests.builders import make_customer
from tests.conftest import Api

SCALARS = [
    "id",
    "status",
    "displayName",
    "firstName",
    "lastName",
    "email",
    "phone",
    "gender",
    "birthday",
    "locale",
    "country",
    "region",
    "city",
    "attributes",
    "createdAt",
    "updatedAt",
    "firstSeenAt",
    "lastSeenAt",
    "stageEnteredAt",
    "__typename",
]
IDENTITY = ["type", "value", "source", "verified", "firstSeenAt", "lastSeenAt", "__typename"]
STAGE = ["key", "name", "position", "terminal", "__typename"]
NESTED = {
    "tags": ["value", "source", "confidence", "assignedAt", "expiresAt", "__typename",
             "tag { id key name description category valueType allowedValues kind condition "
             "defaultTtlDays archived pii __typename }", "tag { key }"],
    "stage": STAGE,
    "stageHistory": ["at", "reason", "actor", "rule", "__typename", "from { key name position }",
                     "to { " + " ".join(STAGE) + " }"],
    "metrics": ["orderCount", "totalSpent", "firstOrderAt", "lastOrderAt", "lastActivityAt",
                "clv", "churnRisk", "__typename", "rfm { recency frequency monetary code segment }"],
}  # fmt: skip
# Fields the compiler does not take (yet): a selection holding one answers with the resolvers.
OTHERS = [
    "stage { kpis { key } }",
    'tags(category: "test") { value }',
    "metrics { averageOrderValue recencyDays }",
    'identities(type: "email") { value }',
    "merges { reason }",
    "segments { key }",
    "stageHistory { merge { id } }",
]
PAGE_INFO = ["hasNextPage", "hasPreviousPage", "startCursor", "endCursor", "__typename"]
ORDERS = ["", "orderBy: [{field: LAST_SEEN_AT, direction: DESC}]", "orderBy: [{field: STAGE_ENTERED_AT}, {field: CREATED_AT, direction: DESC}]", "orderBy: [{field: DISPLAY_NAME}]"]  # fmt: skip

FULL = " ".join(
    [*SCALARS, "identities {", *IDENTITY, "}"]
    + [part for name, below in NESTED.items() for part in (name, "{", *below, "}")]
)
FIXED = [
    "query($ann: ID!) { customer(id: $ann) { " + FULL + " } }",
    "query($merged: ID!) { customer(id: $merged) { id displayName identities { type } } }",
    "query($erased: ID!) { customer(id: $erased) { id status displayName birthday email } }",
    '{ customer(id: "nonsense") { id } }',
    "query($segment: ID!) { customer(id: $segment) { id } }",
    'query($ann: ID!) { customer(id: $ann, identity: {type: "email", value: "x"}) { id } }',
    '{ customer(identity: {type: "crm_id", value: "C-1"}) { id email } }',
    "query($gone: ID!) { customer(id: $gone) { id } }",
    "{ customers(first: 2) { totalCount edges { cursor node { "
    + FULL
    + " } } pageInfo { "
    + " ".join(PAGE_INFO)
    + " } } }",
    "query($c: String) { customers(first: 2, after: $c) { edges { cursor node { id } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }",
    "query($c: String) { customers(last: 2, before: $c) { edges { cursor node { id } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }",
    "{ customers(last: 3) { edges { cursor node { id } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }",
    "{ customers(first: 0) { edges { cursor } pageInfo { hasNextPage startCursor endCursor } totalCount } }",
    "{ customers(first: 201) { totalCount } }",
    "{ customers(first: -1) { totalCount } }",
    '{ customers(after: "garbage!") { totalCount } }',
    "{ customers(first: 2, last: 2) { totalCount } }",
    "{ customers(orderBy: [{field: LAST_SEEN_AT, direction: DESC}]) { edges { cursor node { id lastSeenAt } } } }",
    "{ customers(orderBy: [{field: DISPLAY_NAME}]) { edges { cursor } } }",
    '{ customers(where: {attribute: {field: "country", op: EQ, value: "CN"}}) { totalCount edges { node { id country } } } }',
    '{ customers(where: {attribute: {field: "email", op: STARTS_WITH, value: "a"}}) { totalCount } }',
    '{ customers(where: {identity: {type: "email"}}) { totalCount edges { node { email identities { type value } } } } }',
    "{ a: customers(first: 1) { b: edges { c: node { ...F x: id } } } } fragment F on Customer { id email ... on Customer { city } }",
    "{ customers { edges { node { id ...@include(if: true) { email } } } } }",
    "query($ann: ID!) { customer(id: $ann) { id stage { key } tags { value } } }",
    "query($ann: ID!) { one: customer(id: $ann) { id } two: customers(first: 1) { totalCount } }",
    "query($ann: ID!) { node(id: $ann) { id __typename ... on Customer { " + FULL + " } } }",
    "query($merged: ID!) { node(id: $merged) { ...on Node { id } ... on Customer { email } } }",
    "query($segment: ID!) { node(id: $segment) { id ... on Segment { key } } }",
    "query($ann: ID!) { node(id: $ann) { id ... on Segment { key } } }",
    '{ segment(key: "cn") { key members(first: 2) { totalCount edges { cursor node { '
    + FULL
    + " } } pageInfo { hasNextPage endCursor } } } }",
    'query($c: String) { segment(key: "cn") { members(first: 1, after: $c) { edges { node { id } } pageInfo { hasPreviousPage startCursor } } } }',
    '{ segment(key: "pii") { members { totalCount edges { node { id } } } } }',
]


@pytest.fixture
async def reference(api: Api, settings: Settings) -> AsyncIterator[Api]:
    """The same service with every read through the resolvers."""
    app = create_app(settings.model_copy(update={"compiled_reads": False}))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield Api(client, api.keys, api.sql, api.db)
    await app.state.c360.close()


async def _people(db: Database) -> dict[str, str]:
    """Profiles covering what formatting and masking distinguish: PII and not, an erased
    profile, a merged-away one, timestamps with and without microseconds, no last seen."""
    ann = await make_customer(
        db,
        identities=[("email", "ann@example.com"), ("phone", "13800000001"), ("crm_id", "C-1")],
        display_name='Ann "Lee" 李',
        first_name="Ann",
        last_name="Lee",
        email="ann@example.com",
        phone="+8613800000001",
        gender="female",
        birthday=date(1990, 5, 1),
        country="CN",
        city="杭州",
        attributes={"tier": "gold", "score": 1.5, "nested": {"a": [1, None, "x"]}},
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        tags=["vip", "newsletter"],
        stages=["awareness", "purchase", "left_the_model"],
        last_seen_at=datetime(2026, 6, 1, 12, 0, 0, 123456, tzinfo=UTC),
        first_seen_at=datetime(2026, 1, 2, 3, 4, 5, 10, tzinfo=UTC),
    )
    async with db.write() as session:
        session.add(
            CustomerMetrics(
                customer_id=ann,
                order_count=3,
                total_spent=Decimal("120.50"),
                clv=Decimal("300.00"),
                churn_risk=1.0,
                rfm_recency=5,
                rfm_frequency=4,
                rfm_monetary=3,
                rfm_segment="champions",
                last_order_at=datetime(2026, 5, 1, 8, 0, 0, 250, tzinfo=UTC),
                last_activity_at=datetime(2026, 5, 2, tzinfo=UTC),
            )
        )
        later, earlier = datetime(2999, 1, 1, tzinfo=UTC), datetime(2020, 1, 1, tzinfo=UTC)
        for key, value, confidence, expires_at in (
            ("tier", "gold", 0.25, later),
            ("old", "x", 1.0, earlier),
        ):
            tag = TagDefinition(
                key=key, name=key.title(), value_type="TEXT", allowed_values=["gold"]
            )
            session.add(tag)
            await session.flush()
            assignment = TagAssignment(
                customer_id=ann,
                tag_id=tag.id,
                value=value,
                confidence=confidence,
                expires_at=expires_at,
            )
            session.add(assignment)
        moved = update(StageTransition).where(StageTransition.customer_id == ann)
        await session.execute(moved.values(reason="moved by hand"))
    erased = await make_customer(db, status="ERASED", display_name="Gone", email="g@example.com")
    await make_customer(
        db,
        identities=[("device_id", "dev-1")],
        country="CN",
        created_at=datetime(2026, 2, 1, 0, 0, 0, 500000, tzinfo=UTC),
        stages=["consideration"],
    )
    await make_customer(db, display_name="Bo", locale="zh-CN", region="ZJ")
    merged = await make_customer(db, status="MERGED", merged_into_id=ann, display_name="Old")
    return {
        "ann": to_global_id("Customer", ann),
        "erased": to_global_id("Customer", erased),
        "merged": to_global_id("Customer", merged),
        "segment": to_global_id("Segment", ann),
        "gone": to_global_id("Customer", "00000000-0000-0000-0000-000000000000"),
    }


def _charges(api: Api) -> list[int]:
    """What each operation through `api` is charged (recorded off its rate limiter)."""
    limiter = api.client._transport.app.state.c360.limiter  # type: ignore[attr-defined]
    charged: list[int] = []
    settle = limiter.settle

    def record(key: str, cost: int) -> Any:
        charged.append(cost)
        return settle(key, cost)

    limiter.settle = record
    return charged


def _answer(response: httpx.Response) -> tuple[int, Any]:
    """Status and body; a float kept apart from an integer (`1.0` is not `1`)."""
    body = json.loads(response.content, parse_float=lambda text: ("float", text))
    for error in body.get("errors", []):
        error.get("extensions", {}).pop("requestId", None)
    return response.status_code, body


async def _same(
    api: Api,
    reference: Api,
    document: str,
    variables: dict[str, Any],
    roles: Sequence[Role] = tuple(Role),
) -> None:
    used = {name: value for name, value in variables.items() if f"${name}" in document}
    for role in roles:
        ours = _answer(await api.post(document, used, role=role))
        theirs = _answer(await reference.post(document, used, role=role))
        assert ours == theirs, (document, role, ours, theirs)


async def test_the_suites_reads_answer_the_same_compiled(api: Api, reference: Api) -> None:
    people = await _people(api.db)
    first = await reference.query("{ customers(first: 2) { pageInfo { endCursor } } }")
    last = await reference.query("{ customers(last: 2) { pageInfo { startCursor } } }")
    variables = {
        **people,
        "c": first["customers"]["pageInfo"]["endCursor"],
    }
    for key, condition in (
        ("cn", '{attribute: {field: "country", op: EQ, value: "CN"}}'),
        ("pii", '{attribute: {field: "email", op: EXISTS}}'),
    ):
        defined = await api.query(
            f'mutation {{ defineSegment(input: {{key: "{key}", name: "{key}", '
            f"condition: {condition}}}) {{ errors {{ code }} }} }}"
        )
        assert defined["defineSegment"]["errors"] == []
    ours, theirs = _charges(api), _charges(reference)
    for document in FIXED:
        await _same(api, reference, document, variables)
    variables["c"] = last["customers"]["pageInfo"]["startCursor"]
    await _same(api, reference, FIXED[10], variables)
    assert ours == theirs


def _selection(fields: list[str], aliases: list[bool]) -> str:
    return " ".join(
        f"a{i}: {field}" if alias else field
        for i, (field, alias) in enumerate(zip(fields, aliases, strict=False))
    )


@st.composite
def _profile(draw: st.DrawFn) -> tuple[str, str]:
    """A selection over Customer, and the fragment it spreads (or "")."""
    fields = draw(st.lists(st.sampled_from(SCALARS), min_size=1, max_size=8, unique=True))
    aliases = draw(st.lists(st.booleans(), min_size=len(fields), max_size=len(fields)))
    picked = _selection(fields, aliases)
    lists = {"identities": IDENTITY, **NESTED}
    for name in draw(st.lists(st.sampled_from(sorted(lists)), max_size=3, unique=True)):
        below = draw(st.lists(st.sampled_from(lists[name]), min_size=1, max_size=4, unique=True))
        picked += f" {name} {{ " + " ".join(below) + " }"
    if draw(st.integers(0, 5)) == 0:
        picked += " " + draw(st.sampled_from(OTHERS))
    if draw(st.booleans()):
        return "...P", f" fragment P on Customer {{ {picked} }}"
    return picked, ""


@st.composite
def _document(draw: st.DrawFn) -> str:
    profile, tail = draw(_profile())
    if draw(st.booleans()):
        head = f"query($ann: ID!) {{ customer(id: $ann) {{ {profile} }} }}"
        return head + tail
    order = draw(st.sampled_from(ORDERS))
    size = draw(st.integers(0, 4))
    page = " ".join(draw(st.lists(st.sampled_from(PAGE_INFO), min_size=1, max_size=4, unique=True)))
    count = " totalCount" if draw(st.booleans()) else ""
    cursor = " cursor" if draw(st.booleans()) else ""
    head = (
        f"{{ customers(first: {size} {order}) {{{count} edges {{{cursor} node {{ {profile} }} }}"
        f" pageInfo {{ {page} }} }} }}"
    )
    return head + tail


def _documents(count: int) -> list[str]:
    """`count` documents hypothesis draws, the same on every run."""
    found: list[str] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(_document())
    def collect(document: str) -> None:
        found.append(document)

    collect()
    return found


async def test_drawn_selections_answer_the_same_compiled(api: Api, reference: Api) -> None:
    variables = await _people(api.db)
    ours, theirs = _charges(api), _charges(reference)
    roles = list(Role)
    for index, document in enumerate(_documents(32)):  # each role in turn: every role, cheaply
        await _same(api, reference, document, variables, [roles[index % len(roles)]])
    assert ours == theirs


async def test_a_compiled_root_field_is_one_statement(api: Api, db: Database) -> None:
    people = await _people(db)
    page = "{ customers(first: 3) { totalCount edges { cursor node { " + FULL + " } } pageInfo { hasNextPage endCursor } } }"  # fmt: skip
    one = "query($ann: ID!) { customer(id: $ann) { " + FULL + " } }"
    node = "query($ann: ID!) { node(id: $ann) { ... on Customer { " + FULL + " } } }"
    for document in (page, one, node):
        await api.post(document, {"ann": people["ann"]})  # the key is read and cached
        api.sql.reset()
        data = await api.query(document, {"ann": people["ann"]})
        reads = [s for s in api.sql.statements if "api_keys" not in s]
        if db.dialect == "postgresql":
            assert len(reads) == 1 and "json_build_object" in reads[0], reads
        else:  # the resolvers: the profile or page, then its identities
            assert len(reads) >= 2, reads
        assert json.dumps(data)


async def test_segment_members_are_one_statement(api: Api) -> None:
    await _people(api.db)
    await api.query(
        'mutation { defineSegment(input: {key: "cn", name: "cn", condition: {attribute: '
        '{field: "country", op: EQ, value: "CN"}}}) { errors { code } } }'
    )
    document = '{ segment(key: "cn") { members { edges { node { ' + FULL + " } } } } }"
    await api.post(document)
    api.sql.reset()
    data = await api.query(document)
    assert len(data["segment"]["members"]["edges"]) == 2
    *before, page = [s for s in api.sql.statements if "api_keys" not in s]
    lists = ("identities i", "tag_assignments", "stage_transitions", "customer_metrics")
    if api.db.dialect == "postgresql":  # the segment and its condition's catalog, then one
        assert "json_build_object" in page and "customers" in page, page
        assert not any(name in s for s in before for name in lists), before
    else:
        assert any("tag_assignments" in s for s in before), before


def test_compiled_json_is_written_as_it_is_even_beside_what_orjson_refuses() -> None:
    spliced = JsonText(b'{"x" : [1.0, "\\u00e9"]}')
    assert encode({"a": spliced}) == b'{"a":{"x" : [1.0, "\\u00e9"]}}'
    big = 2**70  # orjson refuses it: json writes the answer, reading the text back
    assert json.loads(encode({"a": spliced, "b": big})) == {"a": {"x": [1.0, "é"]}, "b": big}


def test_compiled_enums_are_the_schemas() -> None:
    """A compiled enum field writes only the values the schema names (the rest fail)."""
    assert {
        name: tuple(e.value for e in enum)
        for name, enum in [
            ("CustomerStatus", CustomerStatus),
            ("TagValueType", TagValueType),
            ("TagKind", TagKind),
        ]
    } == ENUMS
