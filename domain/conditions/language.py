"""The condition language: one tree for list filters, segments, RULE tags and lifecycle rules.

A condition is a plain dict in the contract's ConditionInput shape, the shape stored in
segments.condition, tag_definitions.condition and lifecycle_rules.condition:

    {"and": [{"tag": {"key": "vip"}},
             {"attribute": {"field": "country", "op": "EQ", "value": "CN"}}]}

`parse` validates it against the catalog (tags, stages, identity types, segments) and returns a
typed tree; `domain.conditions.sql` compiles that tree into one SQL predicate over customers.
There is no Python-side evaluator to drift from it: checking one customer runs the same SQL
with a customer filter. Errors are InvalidInput whose `field` is the path of the bad node, e.g.
("and", 1, "tag"); callers put the argument's name in front.

What a condition means (the same on SQLite and PostgreSQL):
- Only ACTIVE customers ever match.
- Every leaf is true or false for every customer, never unknown, so NOT is an exact complement,
  and NEQ / NOT_IN are the complements of EQ / IN: a customer without a value matches them.
  A missing value never equals, orders or contains anything; EXISTS means "has a value".
- attribute: a core field (FIELDS) compares by the field's type; `attributes.<key>` compares a
  custom trait only when its JSON value has the type of the condition's value (30 matches 30,
  never "30"). Text orders by its bytes; CONTAINS / STARTS_WITH are case-sensitive; BETWEEN is
  inclusive. IN, NOT_IN and BETWEEN take `values` (or a list in `value`).
- tag: holds an unexpired assignment (no expiry, or expires_at later than now). With op/value,
  the assignment's value must also compare: numerically for NUMBER tags, as ISO dates for DATE
  tags, as text otherwise; NEQ means "holds the tag with another or no value".
- stage: the current stage is one of `in` [and was entered at most enteredWithinDays ago].
- identity: holds (present) or does not hold an identity of the type.
- event: the number of events of the type that occurred since now - withinDays days (ever,
  without withinDays) compares with `count`. With `channel`, only events on that channel
  (events.channel, exact) count; with `where`, only events whose JSON properties pass every
  entry (all on the same event). A property compares like a custom attribute: as the type of
  the condition's value, a missing or differently typed property has no value (so NEQ and
  NOT_IN match it), EXISTS means "has a non-null value".
- orders: over the orders placed since now - withinDays days, COUNT the completed ones, SUM
  their value net of refunds (domain.activity.metrics.order_value, the definition totalSpent
  uses: a refund placed in the window subtracts), AVERAGE = that SUM / COUNT. A customer
  without such orders counts and sums 0, and has no average.
- metric: from customer_metrics (missing row: FREQUENCY and MONETARY are 0, the rest have no
  value). RECENCY_DAYS is whole days since last_activity_at, 0 for a time in the future, as
  CustomerMetrics.recencyDays shows it; FREQUENCY = order_count, MONETARY = total_spent,
  RFM_SEGMENT = the named RFM segment, CLV = clv, CHURN_RISK = churn_risk.
- segment: membership now. A dynamic segment's condition is inlined; a materialized one is read
  from its stored members (as of its last refresh).
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

from domain.conditions.catalog import (
    Catalog,
    SegmentSpec,
    TagSpec,
    load_catalog,
    referenced_segments,
)
from domain.conditions.tree import (
    ATTRIBUTE_PREFIX,
    COUNTING,
    EQUALITY,
    FIELDS,
    LISTS,
    METRIC_KINDS,
    OPS_BY_KIND,
    ORDERING,
    PRESENCE,
    RFM_NAMES,
    TAG_OPS,
    WHOLE_METRICS,
    AllOf,
    AnyOf,
    AttributeLeaf,
    EventLeaf,
    FieldLeaf,
    IdentityLeaf,
    Kind,
    Measure,
    MembershipLeaf,
    Metric,
    MetricLeaf,
    Negation,
    Node,
    Op,
    OrdersLeaf,
    PropertyTest,
    StageLeaf,
    TagLeaf,
    Test,
)
from domain.conditions.typed_json import checked_key, is_number, typed_test
from domain.errors import InvalidInput
from domain.values import check_days, check_moment, representable_number

__all__ = [
    "MAX_DEPTH",
    "MAX_LEAVES",
    "Catalog",
    "SegmentSpec",
    "TagSpec",
    "load_catalog",
    "parse",
    "referenced_segments",
]

MAX_DEPTH = 12
MAX_LEAVES = 200
MAX_EXPANDED_LEAVES = 2000  # leaves once referenced segments are inlined
MAX_CHAINED_SEGMENTS = 16  # segments inlined within segments inlined within ...
MAX_LIST_VALUES = 1000
MAX_PROPERTY_TESTS = 20  # `where` entries of one event condition
Path = tuple[str | int, ...]


# --- validation ---------------------------------------------------------------------------


def invalid(message: str, path: Path, code: str = "INVALID_VALUE") -> InvalidInput:
    return InvalidInput(message, field=path, code=code)


def parse(condition: Any, catalog: Catalog, *, owner: str | None = None) -> Node:
    """Validate `condition` and return its typed tree. `owner` is the key of the segment the
    condition is being saved on, so that a reference back to it is refused as a cycle."""
    parser = _Parser(catalog, owner)
    node = parser.node(condition, (), 1)
    if parser.expanded > MAX_EXPANDED_LEAVES:
        raise invalid(
            f"with the segments it refers to inlined, the condition has more than "
            f"{MAX_EXPANDED_LEAVES} leaves",
            (),
            "CONDITION_TOO_LARGE",
        )
    return node


class _Parser:
    def __init__(self, catalog: Catalog, owner: str | None) -> None:
        self.catalog = catalog
        self.owner = owner
        self.leaves = 0
        self.expanded = 0
        self.inlining: list[str] = []
        self.inlined: dict[str, tuple[Node, int]] = {}
        self.references: dict[str, set[str]] = {}

    def node(self, raw: Any, path: Path, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise invalid(
                f"conditions nest at most {MAX_DEPTH} levels deep", path, "CONDITION_TOO_DEEP"
            )
        if not isinstance(raw, dict) or len(raw) != 1:
            raise invalid("a condition node has exactly one key, such as `and` or `tag`", path)
        ((kind, payload),) = raw.items()
        here = (*path, kind)
        if kind in ("and", "or"):
            if not isinstance(payload, list):
                raise invalid(f"`{kind}` takes a list of conditions", here)
            children = tuple(self.node(c, (*here, i), depth + 1) for i, c in enumerate(payload))
            return AllOf(children) if kind == "and" else AnyOf(children)
        if kind == "not":
            return Negation(self.node(payload, here, depth + 1))
        leaf = LEAVES.get(kind)
        if leaf is None:
            raise invalid(f"unknown condition `{kind}`", here)
        if not isinstance(payload, dict):
            raise invalid(f"`{kind}` takes an object", here)
        self.leaves += 1
        if self.leaves > MAX_LEAVES:
            raise invalid(f"a condition has at most {MAX_LEAVES} leaves", (), "CONDITION_TOO_LARGE")
        allowed, parse_leaf = leaf
        unknown = set(payload) - allowed
        if unknown:
            raise invalid(f"`{kind}` has no `{sorted(unknown)[0]}`", here)
        before = self.expanded
        result = parse_leaf(self, {k: v for k, v in payload.items() if v is not None}, here)
        if self.expanded == before:
            self.expanded += 1
        return result

    # --- leaves ---

    def attribute(self, payload: dict[str, Any], path: Path) -> Node:
        name = _text(payload, "field", path)
        op = _op(payload.get("op"), path)
        if name.startswith(ATTRIBUTE_PREFIX):
            key = checked_key(name.removeprefix(ATTRIBUTE_PREFIX), "a custom attribute", path)
            return AttributeLeaf(key, *typed_test(op, _operands(payload, op, path), path))
        if name not in FIELDS:
            raise invalid(
                f"unknown field {name!r}: use a core field or attributes.<key>",
                path,
                "UNKNOWN_FIELD",
            )
        column, kind = FIELDS[name]
        _check_op(op, OPS_BY_KIND[kind], name, path)
        operands = _operands(payload, op, path)
        return FieldLeaf(column, kind, Test(op, tuple(_coerce(kind, v, path) for v in operands)))

    def tag(self, payload: dict[str, Any], path: Path) -> Node:
        key = _text(payload, "key", path)
        spec = self.catalog.tags.get(key)
        if spec is None:
            raise invalid(f"unknown tag {key!r}", path, "UNKNOWN_TAG")
        present = _flag(payload, "present", path)
        raw_op, value = payload.get("op"), payload.get("value")
        if raw_op is None and value is None:
            leaf = TagLeaf(spec.id, spec.value_type, None)
            return leaf if present else Negation(leaf)
        if not present:
            raise invalid("a tag that must be absent has no value to compare", path)
        op = _op(raw_op or "EQ", path)
        _check_op(op, TAG_OPS.get(spec.value_type, frozenset()), f"a {spec.value_type} tag", path)
        if not isinstance(value, str):
            raise invalid(f"{op.value} on a tag needs a `value`", path)
        return TagLeaf(spec.id, spec.value_type, Test(op, (_tag_value(spec, op, value, path),)))

    def stage(self, payload: dict[str, Any], path: Path) -> Node:
        stages = payload.get("in")
        if not isinstance(stages, list) or not stages:
            raise invalid("`in` takes a non-empty list of stage keys", path)
        for stage in stages:
            if not isinstance(stage, str) or stage not in self.catalog.stages:
                raise invalid(f"unknown stage {stage!r}", path, "UNKNOWN_STAGE")
        within = _days(payload, "enteredWithinDays", path)
        return StageLeaf(tuple(dict.fromkeys(stages)), within)

    def identity(self, payload: dict[str, Any], path: Path) -> Node:
        type_key = _text(payload, "type", path)
        if type_key not in self.catalog.identity_types:
            raise invalid(f"unknown identity type {type_key!r}", path, "UNKNOWN_IDENTITY_TYPE")
        leaf = IdentityLeaf(type_key)
        return leaf if _flag(payload, "present", path) else Negation(leaf)

    def event(self, payload: dict[str, Any], path: Path) -> Node:
        type_key = _text(payload, "type", path)
        op = _op(payload.get("op", "GTE"), path)
        _check_op(op, COUNTING, "an event count", path)
        count = payload.get("count", 1)
        if not _is_int(count) or count < 0:
            raise invalid("`count` is a whole number, 0 or more", path)
        channel = payload.get("channel")
        if channel is not None and (not isinstance(channel, str) or not channel):
            raise invalid("`channel` is a non-empty string", (*path, "channel"))
        where = payload.get("where", [])
        if not isinstance(where, list) or len(where) > MAX_PROPERTY_TESTS:
            raise invalid(f"`where` is a list of at most {MAX_PROPERTY_TESTS}", (*path, "where"))
        tests = tuple(_property(item, (*path, "where", i)) for i, item in enumerate(where))
        within = _days(payload, "withinDays", path)
        rolled_up = self.catalog.events_rolled_up and within is None and not tests
        return EventLeaf(type_key, within, Test(op, (count,)), channel, tests, rolled_up)

    def orders(self, payload: dict[str, Any], path: Path) -> Node:
        measure = _member(Measure, payload.get("measure"), "measure", path, "INVALID_VALUE")
        op = _op(payload.get("op"), path)
        _check_op(op, COUNTING, f"an order {measure.value.lower()}", path)
        value: Any = payload.get("value")
        if not is_number(value):
            raise invalid("`value` is a number", path)
        if measure is Measure.COUNT and not float(value).is_integer():
            raise invalid("an order count compares with a whole number", path)
        number = int(value) if measure is Measure.COUNT else value
        return OrdersLeaf(measure, _days(payload, "withinDays", path), Test(op, (number,)))

    def metric(self, payload: dict[str, Any], path: Path) -> Node:
        metric = _member(Metric, payload.get("name"), "name", path, "UNKNOWN_FIELD")
        op = _op(payload.get("op"), path)
        kind = METRIC_KINDS[metric]
        allowed = EQUALITY if metric is Metric.RFM_SEGMENT else EQUALITY | ORDERING
        _check_op(op, allowed, metric.value, path)
        operands = _operands(payload, op, path)
        for value in operands:
            if metric is Metric.RFM_SEGMENT and value not in RFM_NAMES:
                raise invalid(
                    f"{value!r} is not an RFM segment: {', '.join(sorted(RFM_NAMES))}", path
                )
            if kind is Kind.NUMBER and not is_number(value):
                raise invalid(f"{metric.value} compares with numbers", path)
            if metric in WHOLE_METRICS and not float(value).is_integer():
                raise invalid(f"{metric.value} compares with whole numbers", path)
        if metric in WHOLE_METRICS:
            operands = tuple(int(v) for v in operands)
        elif kind is Kind.NUMBER:
            operands = tuple(float(v) for v in operands)
        return MetricLeaf(metric, Test(op, operands))

    def segment(self, payload: dict[str, Any], path: Path) -> Node:
        key = _text(payload, "key", path)
        if key == self.owner:
            raise invalid(f"segment {key!r} cannot refer to itself", path, "SEGMENT_CYCLE")
        spec = self.catalog.segments.get(key)
        if spec is None:
            raise invalid(f"unknown segment {key!r}", path, "UNKNOWN_SEGMENT")
        if self.owner is not None and self._reaches(key, self.owner):
            raise invalid(f"segment {key!r} refers back to {self.owner!r}", path, "SEGMENT_CYCLE")
        leaf = MembershipLeaf(spec.id) if spec.materialized else self._inline(key, spec, path)
        return leaf if _flag(payload, "member", path) else Negation(leaf)

    def _inline(self, key: str, spec: SegmentSpec, path: Path) -> Node:
        """A dynamic segment's own condition, parsed once however often it is referred to."""
        if key in self.inlining:
            raise invalid(f"segment {key!r} refers to itself", path, "SEGMENT_CYCLE")
        if len(self.inlining) >= MAX_CHAINED_SEGMENTS:
            raise invalid(
                f"segments refer to segments more than {MAX_CHAINED_SEGMENTS} deep",
                path,
                "CONDITION_TOO_DEEP",
            )
        if key not in self.inlined:
            inner = _Parser(self.catalog, None)
            inner.inlining = [*self.inlining, key]
            inner.inlined, inner.references = self.inlined, self.references
            try:
                node = inner.node(spec.condition, (), 1)
            except InvalidInput as error:
                raise invalid(f"segment {key!r}: {error.message}", path, error.code) from None
            self.inlined[key] = (node, inner.expanded)
        node, size = self.inlined[key]
        self.expanded += size
        return node

    def _reaches(self, start: str, target: str) -> bool:
        """Whether segment `start` refers to `target`, directly or through other segments."""
        seen, stack = set(), [start]
        while stack:
            key = stack.pop()
            if key == target:
                return True
            if key in seen or key not in self.catalog.segments:
                continue
            seen.add(key)
            if key not in self.references:
                self.references[key] = referenced_segments(self.catalog.segments[key].condition)
            stack.extend(self.references[key])
        return False


LEAVES: dict[str, tuple[frozenset[str], Any]] = {
    "attribute": (frozenset({"field", "op", "value", "values"}), _Parser.attribute),
    "tag": (frozenset({"key", "present", "op", "value"}), _Parser.tag),
    "stage": (frozenset({"in", "enteredWithinDays"}), _Parser.stage),
    "identity": (frozenset({"type", "present"}), _Parser.identity),
    "event": (
        frozenset({"type", "withinDays", "op", "count", "channel", "where"}),
        _Parser.event,
    ),
    "orders": (frozenset({"withinDays", "measure", "op", "value"}), _Parser.orders),
    "metric": (frozenset({"name", "op", "value"}), _Parser.metric),
    "segment": (frozenset({"key", "member"}), _Parser.segment),
}


# --- small readers of leaf fields ---------------------------------------------------------


def _property(raw: Any, path: Path) -> PropertyTest:
    """One entry of an event condition's `where`: {property, op, value}."""
    if not isinstance(raw, dict) or set(raw) - {"property", "op", "value"}:
        raise invalid("a property condition has `property`, `op` and `value`", path)
    key = checked_key(raw.get("property"), "an event property name", (*path, "property"))
    op = _op(raw.get("op"), (*path, "op"))
    operands = _operands({k: v for k, v in raw.items() if v is not None}, op, (*path, "value"))
    return PropertyTest(key, *typed_test(op, operands, (*path, "value")))


def _text(payload: dict[str, Any], name: str, path: Path) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise invalid(f"`{name}` is a non-empty string", path)
    return value


def _flag(payload: dict[str, Any], name: str, path: Path) -> bool:
    value = payload.get(name, True)
    if not isinstance(value, bool):
        raise invalid(f"`{name}` is true or false", path)
    return value


def _days(payload: dict[str, Any], name: str, path: Path) -> int | None:
    value = payload.get(name)
    return None if value is None else check_days(value, path, code="INVALID_VALUE")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _member(enum: type[Any], raw: Any, name: str, path: Path, code: str) -> Any:
    try:
        return enum(raw)
    except ValueError:
        choices = ", ".join(m.value for m in enum)
        raise invalid(f"`{name}` is one of {choices}", path, code) from None


def _op(raw: Any, path: Path) -> Op:
    result: Op = _member(Op, raw, "op", path, "INVALID_OPERATOR")
    return result


def _check_op(op: Op, allowed: frozenset[Op], what: str, path: Path) -> None:
    if op not in allowed:
        raise invalid(f"{op.value} does not apply to {what}", path, "INVALID_OPERATOR")


def _operands(payload: dict[str, Any], op: Op, path: Path) -> tuple[Any, ...]:
    """The values an operator takes: none, one, exactly two (BETWEEN) or a list (IN)."""
    if op in PRESENCE:
        return ()
    if op in LISTS:
        values = payload.get("values", payload.get("value"))
        if not isinstance(values, list) or not values:
            raise invalid(f"{op.value} takes a non-empty list in `values`", path)
        if op is Op.BETWEEN and len(values) != 2:
            raise invalid("BETWEEN takes exactly two values, low and high", path)
        if len(values) > MAX_LIST_VALUES:
            raise invalid(f"{op.value} takes at most {MAX_LIST_VALUES} values", path)
        return tuple(values)
    value = payload.get("value")
    if value is None:
        raise invalid(f"{op.value} takes a `value`", path)
    return (value,)


def _coerce(kind: Kind, value: Any, path: Path) -> Any:
    if kind is Kind.TEXT and isinstance(value, str):
        return value
    if kind is Kind.DATE and isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    if kind is Kind.DATETIME and isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return check_moment(moment, path, code="INVALID_VALUE")
    expected = {
        Kind.TEXT: "a string",
        Kind.DATE: "a date like 1990-04-23",
        Kind.DATETIME: "an ISO date-time like 2024-05-01T08:00:00Z",
    }
    raise invalid(f"expected {expected.get(kind, kind.value)}, got {value!r}", path)


def _tag_value(spec: TagSpec, op: Op, value: str, path: Path) -> Any:
    if spec.value_type == "NUMBER":
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not representable_number(number):
            raise invalid(f"a NUMBER tag compares with a number, got {value!r}", path)
        return number
    if spec.value_type == "DATE":
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            raise invalid(f"a DATE tag compares with a date, got {value!r}", path) from None
    if spec.value_type == "ENUM" and spec.allowed_values and value not in spec.allowed_values:
        raise invalid(
            f"{value!r} is not a value of this tag: {', '.join(spec.allowed_values)}", path
        )
    return value
