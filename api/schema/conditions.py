"""ConditionInput: the condition language's GraphQL shape, and its conversion to the plain dict
the domain validates and stores (domain.conditions.language documents what each leaf means)."""

from __future__ import annotations

from enum import Enum
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.schema.name_converter import NameConverter
from strawberry.types.base import get_object_definition

from domain.conditions.tree import Measure, Metric, Op

# The domain's own enums, as the schema names them: one list of operators, measures and
# metrics for the language, wherever it is parsed.
strawberry.enum(Op, name="Operator")
strawberry.enum(Measure, name="OrderMeasure")
strawberry.enum(Metric, name="MetricName")


@strawberry.input(
    description="`field`: a core field (country, city, gender, birthday, createdAt, ...) "
    'or "attributes.<key>".'
)
class AttributeCondition:
    field: str
    op: Op
    value: JSON | None = None
    values: list[JSON] | None = None


@strawberry.input
class TagCondition:
    key: str
    present: bool | None = True
    op: Op | None = None
    value: str | None = None


@strawberry.input
class StageCondition:
    in_: list[str] = strawberry.field(name="in")
    entered_within_days: int | None = None


@strawberry.input
class IdentityCondition:
    type: str
    present: bool | None = True


@strawberry.input(
    description="A comparison on one key of an event's JSON properties; IN / NOT_IN / BETWEEN "
    "take a list in `value`."
)
class PropertyCondition:
    property: str
    op: Op
    value: JSON | None = None


@strawberry.input
class EventCondition:
    type: str
    within_days: int | None = None
    op: Op | None = Op.GTE
    count: int | None = 1
    channel: str | None = None
    where: list[PropertyCondition] | None = strawberry.field(
        default=None, description="All must hold on one event's properties."
    )


@strawberry.input
class OrderCondition:
    within_days: int | None = None
    measure: Measure
    op: Op
    value: float


@strawberry.input
class MetricCondition:
    name: Metric
    op: Op
    value: JSON


@strawberry.input
class SegmentRef:
    key: str
    member: bool | None = True


@strawberry.input(
    one_of=True,
    description="One language for customer filters, segments, RULE tags and lifecycle rules.",
)
class ConditionInput:
    and_: list[ConditionInput] | None = strawberry.field(name="and", default=strawberry.UNSET)
    or_: list[ConditionInput] | None = strawberry.field(name="or", default=strawberry.UNSET)
    not_: ConditionInput | None = strawberry.field(name="not", default=strawberry.UNSET)
    attribute: AttributeCondition | None = strawberry.UNSET
    tag: TagCondition | None = strawberry.UNSET
    stage: StageCondition | None = strawberry.UNSET
    identity: IdentityCondition | None = strawberry.UNSET
    event: EventCondition | None = strawberry.UNSET
    orders: OrderCondition | None = strawberry.UNSET
    metric: MetricCondition | None = strawberry.UNSET
    segment: SegmentRef | None = strawberry.UNSET


_NAMES = NameConverter()


def condition_dict(value: Any) -> Any:
    """An input object as the domain's plain dict, under its GraphQL field names (`and`,
    `withinDays`, ...); unset and null fields are left out, enums become their names, JSON
    values pass through as they are."""
    if isinstance(value, list):
        return [condition_dict(item) for item in value]
    if isinstance(value, Enum):
        return value.value
    definition = get_object_definition(value)
    if definition is None:
        return value
    found = {}
    for field in definition.fields:
        item = getattr(value, field.python_name)
        if item is not None and item is not strawberry.UNSET:
            found[_NAMES.get_graphql_name(field)] = condition_dict(item)
    return found
