"""The compiled SQL agrees with a brute-force Python evaluation of random condition trees over
random customers (hypothesis), on each backend.

The brute force below is the oracle and lives only here: it restates the documented meaning of
every leaf (domain/conditions/language.py) over plain Python values. Each example writes a random
population, then checks a handful of random trees against it.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert

from service.settings import Settings
from store.db import Database
from store.models import (
    Customer,
    CustomerMetrics,
    Event,
    Identity,
    Order,
    Segment,
    SegmentMembership,
    TagAssignment,
    TagDefinition,
)
from tests.conftest import reset
from tests.integration.condition_helpers import (
    NOW,
    add_customer,
    add_identity,
    add_order,
    add_segment,
    ago,
    assign,
    define_tag,
    matching,
    set_metrics,
)

COUNTRIES = ["CN", "US", "DE"]
CITIES = ["Shanghai", "shanghai", "Beijing", "New York", "Zürich"]
STAGES = ["awareness", "purchase", "loyalty", "churned"]
RFM = ["Champions", "Loyal", "At Risk", "Lost"]
JSON_NUMBER = re.compile(r"^[ \t\n\r]*-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?[ \t\n\r]*$")
MISSING = object()  # an attribute key the customer does not have
DAYS = st.integers(0, 40)
CHANNELS = ["app", "web"]


@dataclass
class Person:
    active: bool
    country: str | None
    city: str | None
    age: Any
    stage: str | None
    stage_days: int
    tags: dict[str, tuple[str | None, int | None]]  # key -> (value, expires in days)
    identities: set[str]
    events: list[tuple[int, str | None, dict[str, Any]]]  # page views: days ago, channel, props
    orders: list[tuple[int, int, str]]  # amount, days ago, status
    metrics: dict[str, Any] | None
    segment_member: bool
    id: uuid.UUID = field(default_factory=uuid.uuid4)


people = st.builds(
    Person,
    active=st.sampled_from([True, True, True, False]),
    country=st.none() | st.sampled_from(COUNTRIES),
    city=st.none() | st.sampled_from(CITIES),
    age=st.sampled_from([MISSING, None, 31, 31.5, 45, "31", "gold", True, False]),
    stage=st.none() | st.sampled_from(STAGES),
    stage_days=DAYS,
    tags=st.fixed_dictionaries(
        {},
        optional={
            "vip": st.tuples(st.none(), st.none() | st.integers(-3, 3)),
            "tier": st.tuples(st.sampled_from(["gold", "silver"]), st.none() | st.integers(-3, 3)),
            "points": st.tuples(st.sampled_from(["5", "12.5", "100", "abc", "1e2"]), st.none()),
        },
    ),
    identities=st.sets(st.sampled_from(["email", "phone"])),
    events=st.lists(
        st.tuples(
            DAYS,
            st.none() | st.sampled_from(CHANNELS),
            st.fixed_dictionaries(
                {},
                optional={
                    "category": st.sampled_from(["sports", "Sports", "books", 3, True, None]),
                    "price": st.sampled_from([5, 12.5, 40, "5", False]),
                },
            ),
        ),
        max_size=5,
    ),
    orders=st.lists(
        st.tuples(
            st.sampled_from([10, 20, 25, 100]), DAYS, st.sampled_from(["completed", "refunded"])
        ),
        max_size=4,
    ),
    metrics=st.none()
    | st.fixed_dictionaries(
        {
            "order_count": st.integers(0, 4),
            "total_spent": st.sampled_from([0, 50, 100, 400]),
            "last_days": st.none() | DAYS | st.floats(-2, 40).map(lambda d: round(d, 2)),
            "rfm_segment": st.none() | st.sampled_from(RFM),
            "clv": st.none() | st.sampled_from([0, 100, 900]),
            "churn_risk": st.none() | st.sampled_from([0.1, 0.5, 0.7]),
        }
    ),
    segment_member=st.booleans(),
)


def ops_for(kind: str) -> list[str]:
    base = ["EQ", "NEQ", "IN", "NOT_IN", "EXISTS", "NOT_EXISTS"]
    if kind == "boolean":
        return ["EQ", "NEQ", "EXISTS", "NOT_EXISTS"]
    ordered = [*base, "GT", "GTE", "LT", "LTE", "BETWEEN"]
    return [*ordered, "CONTAINS", "STARTS_WITH"] if kind == "text" else ordered


@st.composite
def attribute(draw: st.DrawFn) -> dict[str, Any]:
    name, kind, pool = draw(
        st.sampled_from(
            [
                ("country", "text", ["CN", "US", "C", "D"]),
                ("city", "text", ["Shanghai", "hai", "S", "Beijing", "Zü"]),
                ("attributes.age", "number", [31, 31.5, 40, 45]),
                ("attributes.age", "text", ["31", "gold", "g"]),
                ("attributes.age", "boolean", [True, False]),
            ]
        )
    )
    op = draw(st.sampled_from(ops_for(kind)))
    leaf: dict[str, Any] = {"field": name, "op": op}
    if op in ("IN", "NOT_IN"):
        leaf["values"] = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))
    elif op == "BETWEEN":
        leaf["values"] = sorted(draw(st.lists(st.sampled_from(pool), min_size=2, max_size=2)))
    elif op not in ("EXISTS", "NOT_EXISTS"):
        leaf["value"] = draw(st.sampled_from(pool))
    return {"attribute": leaf}


def counting() -> st.SearchStrategy[str]:
    return st.sampled_from(["EQ", "NEQ", "GT", "GTE", "LT", "LTE"])


tags = st.one_of(
    st.builds(lambda p: {"tag": {"key": "vip", "present": p}}, st.booleans()),
    st.builds(
        lambda op, v: {"tag": {"key": "tier", "op": op, "value": v}},
        st.sampled_from(["EQ", "NEQ"]),
        st.sampled_from(["gold", "silver"]),
    ),
    st.builds(
        lambda op, v: {"tag": {"key": "points", "op": op, "value": v}},
        counting(),
        st.sampled_from(["5", "12.5", "100"]),
    ),
)
stages = st.builds(
    lambda s, d: {"stage": {"in": s, **({"enteredWithinDays": d} if d is not None else {})}},
    st.lists(st.sampled_from(STAGES), min_size=1, max_size=2, unique=True),
    st.none() | DAYS,
)
identities = st.builds(
    lambda t, p: {"identity": {"type": t, "present": p}},
    st.sampled_from(["email", "phone"]),
    st.booleans(),
)
PROPERTIES = [
    ("category", "text", ["sports", "Sports", "port", "s", "books"]),
    ("category", "number", [3, 3.0, 4]),
    ("category", "boolean", [True, False]),
    ("price", "number", [5, 12.5, 40, 6]),
    ("price", "text", ["5", "6"]),
    ("brand", "text", ["x"]),
]


@st.composite
def property_condition(draw: st.DrawFn) -> dict[str, Any]:
    name, kind, pool = draw(st.sampled_from(PROPERTIES))
    op = draw(st.sampled_from(ops_for(kind)))
    leaf: dict[str, Any] = {"property": name, "op": op}
    if op in ("IN", "NOT_IN"):
        leaf["value"] = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))
    elif op == "BETWEEN":
        leaf["value"] = sorted(draw(st.lists(st.sampled_from(pool), min_size=2, max_size=2)))
    elif op not in ("EXISTS", "NOT_EXISTS"):
        leaf["value"] = draw(st.sampled_from(pool))
    return leaf


events = st.builds(
    lambda w, op, n, channel, where: {
        "event": {
            "type": "page_view",
            "withinDays": w,
            "op": op,
            "count": n,
            **({"channel": channel} if channel else {}),
            **({"where": where} if where else {}),
        }
    },
    st.none() | DAYS,
    counting(),
    st.integers(0, 4),
    st.none() | st.sampled_from(CHANNELS),
    st.lists(property_condition(), max_size=2),
)
orders = st.one_of(
    st.builds(
        lambda w, op, n: {"orders": {"measure": "COUNT", "op": op, "value": n, "withinDays": w}},
        st.none() | DAYS,
        counting(),
        st.integers(0, 3),
    ),
    st.builds(
        lambda m, w, op, v: {"orders": {"measure": m, "op": op, "value": v, "withinDays": w}},
        st.sampled_from(["SUM", "AVERAGE"]),
        st.none() | DAYS,
        counting(),
        st.sampled_from([0, 10, 20, 25, 30, 100, 125]),
    ),
)


@st.composite
def metric(draw: st.DrawFn) -> dict[str, Any]:
    name, pool = draw(
        st.sampled_from(
            [
                ("RECENCY_DAYS", [0, 1, 3, 10, 20]),
                ("FREQUENCY", [0, 1, 2, 4]),
                ("MONETARY", [0, 50, 60, 400]),
                ("RFM_SEGMENT", RFM),
                ("CLV", [0, 100, 500]),
                ("CHURN_RISK", [0.1, 0.5, 0.6]),
            ]
        )
    )
    op = draw(st.sampled_from(["EQ", "NEQ", "IN", "NOT_IN"] if name == "RFM_SEGMENT" else [
        "EQ", "NEQ", "IN", "NOT_IN", "GT", "GTE", "LT", "LTE", "BETWEEN"]))  # fmt: skip
    if op in ("IN", "NOT_IN"):
        value: Any = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))
    elif op == "BETWEEN":
        value = sorted(draw(st.lists(st.sampled_from(pool), min_size=2, max_size=2)))
    else:
        value = draw(st.sampled_from(pool))
    return {"metric": {"name": name, "op": op, "value": value}}


segments = st.builds(
    lambda key, member: {"segment": {"key": key, "member": member}},
    st.sampled_from(["cn", "stored"]),
    st.booleans(),
)
leaves = st.one_of(attribute(), tags, stages, identities, events, orders, metric(), segments)
conditions = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(lambda c: {"and": c}, st.lists(inner, max_size=3)),
        st.builds(lambda c: {"or": c}, st.lists(inner, max_size=3)),
        st.builds(lambda c: {"not": c}, inner),
    ),
    max_leaves=8,
)
CN_SEGMENT = {"attribute": {"field": "country", "op": "EQ", "value": "CN"}}


# --- the oracle ---------------------------------------------------------------------------


def compare(value: Any, op: str, operands: list[Any]) -> bool:
    """A leaf's comparison over a Python value; None is "no value"."""
    if op in ("NEQ", "NOT_IN", "NOT_EXISTS"):
        return not compare(
            value, {"NEQ": "EQ", "NOT_IN": "IN", "NOT_EXISTS": "EXISTS"}[op], operands
        )
    if value is None:
        return False
    key = (lambda v: v.encode()) if isinstance(value, str) else (lambda v: v)
    x = operands[0] if operands else None
    return {
        "EXISTS": lambda: True,
        "EQ": lambda: value == x,
        "IN": lambda: value in operands,
        "GT": lambda: key(value) > key(x),
        "GTE": lambda: key(value) >= key(x),
        "LT": lambda: key(value) < key(x),
        "LTE": lambda: key(value) <= key(x),
        "BETWEEN": lambda: key(operands[0]) <= key(value) <= key(operands[1]),
        "CONTAINS": lambda: x in value,
        "STARTS_WITH": lambda: value.startswith(x),
    }[op]()


def operands_of(leaf: dict[str, Any]) -> list[Any]:
    if "values" in leaf:
        return list(leaf["values"])
    value = leaf.get("value")
    return list(value) if isinstance(value, list) else [] if value is None else [value]


def json_typed(value: Any, sample: Any) -> Any:
    """A custom trait read as the type of the condition's value, else no value."""
    if value is MISSING or value is None:
        return None
    if isinstance(sample, bool):
        return value if isinstance(value, bool) else None
    if isinstance(sample, int | float):
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None
    return value if isinstance(value, str) else None


def counts(n: int, op: str, x: int) -> bool:
    return compare(n, op, [x])


def evaluate(condition: dict[str, Any], p: Person) -> bool:
    ((kind, leaf),) = condition.items()
    if kind in ("and", "or"):
        results = [evaluate(c, p) for c in leaf]
        return all(results) if kind == "and" else any(results)
    if kind == "not":
        return not evaluate(leaf, p)
    return LEAVES[kind](leaf, p)


def attribute_leaf(leaf: dict[str, Any], p: Person) -> bool:
    operands, op = operands_of(leaf), leaf["op"]
    if leaf["field"] == "attributes.age":
        if op in ("EXISTS", "NOT_EXISTS"):
            present = p.age is not MISSING and p.age is not None
            return present if op == "EXISTS" else not present
        return compare(json_typed(p.age, operands[0]), op, operands)
    return compare(getattr(p, leaf["field"]), op, operands)


def tag_leaf(leaf: dict[str, Any], p: Person) -> bool:
    held = p.tags.get(leaf["key"])
    live = held is not None and (held[1] is None or ago(-held[1]) > NOW)
    if "op" not in leaf:
        return live if leaf.get("present", True) else not live
    if not live:
        return False
    value = held[0]  # type: ignore[index]
    if leaf["key"] == "points":
        number = float(value) if value and JSON_NUMBER.match(value) else None
        return compare(number, leaf["op"], [float(leaf["value"])])
    return compare(value, leaf["op"], [leaf["value"]])


def stage_leaf(leaf: dict[str, Any], p: Person) -> bool:
    within = leaf.get("enteredWithinDays")
    return p.stage in leaf["in"] and (within is None or p.stage_days <= within)


def property_holds(test: dict[str, Any], properties: dict[str, Any]) -> bool:
    """A `where` entry on one event's properties, typed like a custom attribute."""
    value, op = properties.get(test["property"], MISSING), test["op"]
    if op in ("EXISTS", "NOT_EXISTS"):
        return (value is not MISSING and value is not None) == (op == "EXISTS")
    operands = operands_of(test)
    return compare(json_typed(value, operands[0]), op, operands)


def event_leaf(leaf: dict[str, Any], p: Person) -> bool:
    within, channel = leaf["withinDays"], leaf.get("channel")
    n = sum(
        1
        for days, on, properties in p.events
        if (within is None or days <= within)
        and (channel is None or on == channel)
        and all(property_holds(test, properties) for test in leaf.get("where", []))
    )
    return counts(n, leaf["op"], leaf["count"])


def orders_leaf(leaf: dict[str, Any], p: Person) -> bool:
    """Completed orders count; sums are net of refunds (a refund subtracts its amount)."""
    within = leaf["withinDays"]
    placed = [(a, status) for a, days, status in p.orders if within is None or days <= within]
    count = sum(1 for _, status in placed if status == "completed")
    net = sum(a if status == "completed" else -a for a, status in placed)
    measure: Any = {
        "COUNT": count,
        "SUM": net,
        "AVERAGE": net / count if count else None,
    }[leaf["measure"]]
    return compare(measure, leaf["op"], [leaf["value"]])


def metric_leaf(leaf: dict[str, Any], p: Person) -> bool:
    m = p.metrics or {}
    last = m.get("last_days")
    value: Any = {
        "RECENCY_DAYS": None if last is None else max(0, (NOW - ago(last)).days),
        "FREQUENCY": m.get("order_count", 0),
        "MONETARY": m.get("total_spent", 0),
        "RFM_SEGMENT": m.get("rfm_segment"),
        "CLV": m.get("clv"),
        "CHURN_RISK": m.get("churn_risk"),
    }[leaf["name"]]
    return compare(value, leaf["op"], operands_of(leaf))


def segment_leaf(leaf: dict[str, Any], p: Person) -> bool:
    inside = evaluate(CN_SEGMENT, p) if leaf["key"] == "cn" else p.segment_member
    return inside if leaf["member"] else not inside


LEAVES = {
    "attribute": attribute_leaf,
    "tag": tag_leaf,
    "stage": stage_leaf,
    "identity": lambda leaf, p: (leaf["type"] in p.identities) == leaf["present"],
    "event": event_leaf,
    "orders": orders_leaf,
    "metric": metric_leaf,
    "segment": segment_leaf,
}


# --- the property ---------------------------------------------------------------------------


async def store(db: Database, population: list[Person]) -> None:
    async with db.write() as s:
        tag_ids = {
            "vip": await define_tag(s, "vip"),
            "tier": await define_tag(s, "tier", "ENUM", ["gold", "silver"]),
            "points": await define_tag(s, "points", "NUMBER"),
        }
        for p in population:
            attributes = {} if p.age is MISSING else {"age": p.age}
            await add_customer(
                s, id=p.id, status="ACTIVE" if p.active else "MERGED", country=p.country,
                city=p.city, attributes=attributes, stage=p.stage,
                stage_entered_at=ago(p.stage_days) if p.stage else None,
            )  # fmt: skip
            for key, (value, expires) in p.tags.items():
                await assign(
                    s, p.id, tag_ids[key], value, ago(-expires) if expires is not None else None
                )
            for type_key in p.identities:
                await add_identity(s, p.id, type_key)
            if p.events:
                await s.execute(
                    insert(Event),
                    [
                        {"customer_id": p.id, "type": "page_view", "occurred_at": ago(days),
                         "channel": channel, "properties": properties}
                        for days, channel, properties in p.events
                    ],
                )  # fmt: skip
            for amount, days, status in p.orders:
                await add_order(s, p.id, amount, ago(days), status)
            if p.metrics is not None:
                m = dict(p.metrics)
                last = m.pop("last_days")
                await set_metrics(
                    s, p.id, last_activity_at=ago(last) if last is not None else None, **m
                )
        await add_segment(s, "cn", CN_SEGMENT)
        members = tuple(p.id for p in population if p.segment_member)
        await add_segment(s, "stored", {"and": []}, materialized=True, members=members)


# What an example writes, children first: cheaper to clear between examples than a full reset.
WRITTEN = (
    SegmentMembership, Segment, CustomerMetrics, Order, Event, Identity, TagAssignment,
    TagDefinition, Customer,
)  # fmt: skip


@pytest.fixture
def database(settings: Settings) -> str:
    """The test database, reset once for all the examples of a test."""

    async def fresh() -> None:
        db = Database.from_url(settings.database_url)
        try:
            await reset(db)
        finally:
            await db.dispose()

    asyncio.run(fresh())
    return settings.database_url


async def run(url: str, population: list[Person], trees: list[dict[str, Any]]) -> None:
    db = Database.from_url(url)
    try:
        async with db.write() as session:
            for model in WRITTEN:
                await session.execute(delete(model))
        await store(db, population)
        for tree in trees:
            expected = {p.id for p in population if p.active and evaluate(tree, p)}
            assert await matching(db, tree) == expected, tree
    finally:
        await db.dispose()


@settings(
    max_examples=int(os.environ.get("C360_PROPERTY_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    population=st.lists(people, min_size=1, max_size=10),
    trees=st.lists(conditions, min_size=1, max_size=8),
)
def test_compiled_sql_agrees_with_brute_force(
    database: str, population: list[Person], trees: list[dict[str, Any]]
) -> None:
    asyncio.run(run(database, population, trees))
