"""Compiling a condition tree (domain.conditions.tree; its meaning: domain.conditions.language)
into one SQL predicate.

Leaves on other tables are EXISTS subqueries correlated on customers.id (tags, identities,
events, stored segment members) or scalar aggregates over a customer's orders; metric leaves
read customer_metrics, outer-joined once. The whole condition is one statement the database
plans as a whole, and the same statement with `customers.id IN (...)` checks a few customers.

Every leaf compiles to a predicate that is never NULL (a nullable operand is tested for NULL
first), so NOT and the NEQ / NOT_IN complements mean the same on both backends. Windows are
bound as `now - N days`, computed here: no date arithmetic in SQL to differ between dialects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    String,
    and_,
    case,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from domain.activity.metrics import counted_order, order_value
from domain.activity.retention import MAX_FUTURE
from domain.conditions.catalog import Catalog, load_catalog
from domain.conditions.language import parse
from domain.conditions.tree import (
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
    StageLeaf,
    TagLeaf,
    Test,
)
from store.condition_funcs import (
    byte_order,
    json_boolean,
    json_contains_hint,
    json_number,
    json_present,
    json_string,
    numeric_text,
    text_contains,
)
from store.models import (
    Customer,
    CustomerMetrics,
    Event,
    EventRollup,
    Identity,
    Order,
    SegmentMembership,
    TagAssignment,
)

S = TypeVar("S", bound=Select[*tuple[Any, ...]])
COMPLEMENTS = {Op.NEQ: Op.EQ, Op.NOT_IN: Op.IN, Op.NOT_EXISTS: Op.EXISTS}
JSON_READERS = {Kind.NUMBER: json_number, Kind.TEXT: json_string, Kind.BOOLEAN: json_boolean}


@dataclass(frozen=True, slots=True)
class CustomerFilter:
    """A predicate over `customers` (and `customer_metrics` when `joins_metrics`), true only
    for ACTIVE customers."""

    predicate: ColumnElement[bool]
    joins_metrics: bool = False

    def apply(self, statement: S, *, metrics_joined: bool = False) -> S:
        """Restrict a statement over customers to the customers the filter matches."""
        if self.joins_metrics and not metrics_joined:
            statement = statement.outerjoin(
                CustomerMetrics, CustomerMetrics.customer_id == Customer.id
            )
        return statement.where(self.predicate)

    def __and__(self, other: CustomerFilter) -> CustomerFilter:
        return CustomerFilter(
            and_(self.predicate, other.predicate), self.joins_metrics or other.joins_metrics
        )


EVERYONE = CustomerFilter(Customer.status == "ACTIVE")


def to_sql(node: Node, now: datetime) -> CustomerFilter:
    compiler = _Compiler(now)
    predicate = compiler.compile(node)
    return CustomerFilter(and_(Customer.status == "ACTIVE", predicate), compiler.joins_metrics)


def compile_with(catalog: Catalog, condition: Any, now: datetime) -> CustomerFilter:
    return to_sql(parse(condition, catalog), now)


async def compile_condition(session: AsyncSession, condition: Any, now: datetime) -> CustomerFilter:
    """Validate `condition` (InvalidInput with the path of the bad node) and compile it."""
    return compile_with(await load_catalog(session), condition, now)


def _known(expression: Any, clause: ColumnElement[bool]) -> ColumnElement[bool]:
    """`clause`, made false (not NULL) where `expression` is NULL."""
    return and_(expression.is_not(None), clause)


def _money(values: tuple[Any, ...]) -> tuple[Decimal, ...]:
    return tuple(Decimal(str(v)) for v in values)


class _Compiler:
    def __init__(self, now: datetime) -> None:
        self.now = now
        self.joins_metrics = False

    def since(self, days: int) -> datetime:
        return self.now - timedelta(days=days)

    def compile(self, node: Node) -> ColumnElement[bool]:
        match node:
            case AllOf(children):
                return and_(*map(self.compile, children)) if children else true()
            case AnyOf(children):
                return or_(*map(self.compile, children)) if children else false()
            case Negation(child):
                return not_(self.compile(child))
            case FieldLeaf(column, kind, test):
                return compare(getattr(Customer, column), kind, test)
            case AttributeLeaf(key, kind, test):
                return self.attribute(key, kind, test)
            case TagLeaf():
                return self.tag(node)
            case StageLeaf(stages, within):
                clause = _known(Customer.stage, Customer.stage.in_(stages))
                if within is None:
                    return clause
                entered = Customer.stage_entered_at
                return and_(clause, _known(entered, entered >= self.since(within)))
            case IdentityLeaf(type_key):
                return exists(
                    select(Identity.id)
                    .where(Identity.customer_id == Customer.id, Identity.type == type_key)
                    .correlate(Customer)
                )
            case EventLeaf():
                return self.event(node)
            case OrdersLeaf():
                return self.orders(node)
            case MetricLeaf(metric, test):
                self.joins_metrics = True
                return self.metric(metric, test)
            case MembershipLeaf(segment_id):
                member = aliased(SegmentMembership)
                return exists(
                    select(member.customer_id)
                    .where(member.segment_id == segment_id, member.customer_id == Customer.id)
                    .correlate(Customer)
                )
        raise TypeError(f"not a condition node: {node!r}")

    def attribute(self, key: str, kind: Kind | None, test: Test) -> ColumnElement[bool]:
        return json_compare(Customer.attributes, key, kind, test)

    def event(self, leaf: EventLeaf) -> ColumnElement[bool]:
        if leaf.rolled_up:
            return self.rolled_up_event(leaf)
        events = select(Event.id).where(Event.customer_id == Customer.id, Event.type == leaf.type)
        if leaf.within_days is not None:
            # Bounded above too (no stored event is later than MAX_FUTURE after it was
            # received): PostgreSQL skips the months ahead and the default partition.
            until = self.now + MAX_FUTURE
            events = events.where(
                Event.occurred_at >= self.since(leaf.within_days), Event.occurred_at <= until
            )
        if leaf.channel is not None:
            events = events.where(Event.channel == leaf.channel)
        for prop in leaf.where:
            events = events.where(json_compare(Event.properties, prop.key, prop.kind, prop.test))
            if prop.test.op is Op.EQ and prop.kind in (Kind.TEXT, Kind.BOOLEAN):
                # Implied by the comparison; on PostgreSQL a containment the GIN index serves.
                events = events.where(
                    json_contains_hint(Event.properties, prop.key, prop.test.values[0])
                )
        return count_test(events.correlate(Customer), leaf.test)

    def rolled_up_event(self, leaf: EventLeaf) -> ColumnElement[bool]:
        """An all-time count: the retained events plus the retired months' rollups, as one
        number (it cannot stop at the n-th row as `count_test` does)."""
        events = select(func.count()).where(
            Event.customer_id == Customer.id, Event.type == leaf.type
        )
        rolled = select(func.coalesce(func.sum(EventRollup.events), 0)).where(
            EventRollup.customer_id == Customer.id, EventRollup.type == leaf.type
        )
        if leaf.channel is not None:
            events = events.where(Event.channel == leaf.channel)
            rolled = rolled.where(EventRollup.channel == leaf.channel)
        total = (
            events.correlate(Customer).scalar_subquery()
            + rolled.correlate(Customer).scalar_subquery()
        )
        return compare(total, Kind.NUMBER, leaf.test, nullable=False)

    def tag(self, leaf: TagLeaf) -> ColumnElement[bool]:
        held = select(TagAssignment.id).where(
            TagAssignment.customer_id == Customer.id,
            TagAssignment.tag_id == leaf.tag_id,
            or_(TagAssignment.expires_at.is_(None), TagAssignment.expires_at > self.now),
        )
        if leaf.test is not None:
            value: Any = TagAssignment.value
            kind = Kind.TEXT  # DATE tags hold ISO dates: their text order is their date order
            if leaf.value_type == "NUMBER":
                value, kind = numeric_text(TagAssignment.value), Kind.NUMBER
            held = held.where(compare(value, kind, leaf.test))
        return exists(held.correlate(Customer))

    def orders(self, leaf: OrdersLeaf) -> ColumnElement[bool]:
        filters = [Order.customer_id == Customer.id]
        if leaf.within_days is not None:
            filters.append(Order.placed_at >= self.since(leaf.within_days))
        if leaf.measure is Measure.COUNT:
            counted = select(Order.id).where(*filters, counted_order())
            return count_test(counted.correlate(Customer), leaf.test)
        if leaf.test.op in COMPLEMENTS:
            positive = Test(COMPLEMENTS[leaf.test.op], leaf.test.values)
            return not_(self.orders(OrdersLeaf(leaf.measure, leaf.within_days, positive)))
        # One scalar subquery answering the comparison itself: an aggregate over no rows still
        # yields a row, so SUM reads 0 (coalesce) and AVERAGE reads NULL, then false. Both add
        # up order_value, net of refunds, as total_spent does.
        measure: Any = func.coalesce(func.sum(order_value()), 0)
        if leaf.measure is Measure.AVERAGE:
            completed = func.count(case((counted_order(), 1)))
            measure = measure * literal(1.0, Float()) / func.nullif(completed, 0)
        test = Test(leaf.test.op, _money(leaf.test.values))
        answer = select(_positive(measure, Kind.NUMBER, test)).where(*filters).correlate(Customer)
        return func.coalesce(answer.scalar_subquery(), false())

    def metric(self, metric: Metric, test: Test) -> ColumnElement[bool]:
        m = CustomerMetrics
        if metric is Metric.RECENCY_DAYS:
            return self.recency(test)
        if metric is Metric.FREQUENCY:
            return compare(func.coalesce(m.order_count, 0), Kind.NUMBER, test, nullable=False)
        if metric is Metric.MONETARY:
            spent = func.coalesce(m.total_spent, 0)
            return compare(spent, Kind.NUMBER, Test(test.op, _money(test.values)), nullable=False)
        if metric is Metric.RFM_SEGMENT:
            return compare(m.rfm_segment, Kind.TEXT, test)
        if metric is Metric.CLV:
            return compare(m.clv, Kind.NUMBER, Test(test.op, _money(test.values)))
        return compare(m.churn_risk, Kind.NUMBER, test)

    def recency(self, test: Test) -> ColumnElement[bool]:
        """Whole days since last activity, as ranges of last_activity_at: recency >= k exactly
        when last <= now - k days, and <= k exactly when last > now - (k + 1) days."""
        last = CustomerMetrics.last_activity_at

        def at_least(k: int) -> ColumnElement[bool]:
            return last.is_not(None) if k <= 0 else _known(last, last <= self.since(k))

        def at_most(k: int) -> ColumnElement[bool]:
            return false() if k < 0 else _known(last, last > self.since(k + 1))

        if test.op in COMPLEMENTS:
            return not_(self.recency(Test(COMPLEMENTS[test.op], test.values)))
        v = test.values
        match test.op:
            case Op.EQ:
                return and_(at_least(v[0]), at_most(v[0]))
            case Op.IN:
                return or_(*(and_(at_least(k), at_most(k)) for k in v))
            case Op.GT:
                return at_least(v[0] + 1)
            case Op.GTE:
                return at_least(v[0])
            case Op.LT:
                return at_most(v[0] - 1)
            case Op.LTE:
                return at_most(v[0])
            case Op.BETWEEN:
                return and_(at_least(v[0]), at_most(v[1]))
        raise ValueError(f"{test.op} does not apply to RECENCY_DAYS")


def json_compare(document: Any, key: str, kind: Kind | None, test: Test) -> ColumnElement[bool]:
    """A typed comparison on one top-level key of a JSON document (domain.conditions.typed_json:
    a value of another type reads as no value)."""
    name = literal(key, String())
    if kind is None:
        present = json_present(document, name)
        return present if test.op is Op.EXISTS else not_(present)
    return compare(JSON_READERS[kind](document, name), kind, test)


def compare(
    expression: Any, kind: Kind, test: Test, *, nullable: bool = True
) -> ColumnElement[bool]:
    """`expression <op> values`, false where `expression` is NULL; NEQ, NOT_IN and NOT_EXISTS
    are the complements of EQ, IN and EXISTS."""
    if test.op in COMPLEMENTS:
        return not_(compare(expression, kind, Test(COMPLEMENTS[test.op], test.values)))
    if test.op is Op.EXISTS:
        return expression.is_not(None) if nullable else true()
    clause = _positive(expression, kind, test)
    return _known(expression, clause) if nullable else clause


def _positive(expression: Any, kind: Kind, test: Test) -> ColumnElement[bool]:
    """The comparison itself, for the operators that are not complements."""
    v = test.values
    ordered = byte_order(expression) if kind is Kind.TEXT else expression
    match test.op:
        case Op.EQ:
            return expression == v[0]  # type: ignore[no-any-return]
        case Op.IN:
            return expression.in_(v)  # type: ignore[no-any-return]
        case Op.GT:
            return ordered > v[0]  # type: ignore[no-any-return]
        case Op.GTE:
            return ordered >= v[0]  # type: ignore[no-any-return]
        case Op.LT:
            return ordered < v[0]  # type: ignore[no-any-return]
        case Op.LTE:
            return ordered <= v[0]  # type: ignore[no-any-return]
        case Op.BETWEEN:
            return ordered.between(v[0], v[1])  # type: ignore[no-any-return]
        case Op.CONTAINS:
            return text_contains(expression, v[0])
        case Op.STARTS_WITH:
            return func.substr(expression, 1, len(v[0])) == v[0]
    raise ValueError(f"{test.op} is not a positive comparison")


def count_test(rows: Select[Any], test: Test) -> ColumnElement[bool]:
    """How many `rows` there are, compared with a whole number, as EXISTS tests only: "at
    least n" stops reading at the n-th row instead of counting them all."""

    def at_least(n: int) -> ColumnElement[bool]:
        if n <= 0:
            return true()
        return exists(rows if n == 1 else rows.offset(n - 1).limit(1))

    if test.op in COMPLEMENTS:
        return not_(count_test(rows, Test(COMPLEMENTS[test.op], test.values)))
    n = int(test.values[0])
    match test.op:
        case Op.EQ:
            return and_(at_least(n), not_(at_least(n + 1)))
        case Op.GT:
            return at_least(n + 1)
        case Op.GTE:
            return at_least(n)
        case Op.LT:
            return not_(at_least(n))
        case Op.LTE:
            return not_(at_least(n + 1))
    raise ValueError(f"{test.op} does not apply to a count")
