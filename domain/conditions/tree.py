"""The condition language's vocabulary (operators, field types, the fields and metrics a
condition may name) and the typed tree a validated condition becomes.

domain.conditions.language builds this tree from the stored dict shape, checking it against the
catalog;
domain.conditions.sql compiles it to SQL. Nodes are plain frozen values: a tree says what to
test, never how.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import Enum
from typing import Any

from domain.activity.metrics import RFM_SEGMENTS


class Op(Enum):
    EQ = "EQ"
    NEQ = "NEQ"
    IN = "IN"
    NOT_IN = "NOT_IN"
    GT = "GT"
    GTE = "GTE"
    LT = "LT"
    LTE = "LTE"
    BETWEEN = "BETWEEN"
    CONTAINS = "CONTAINS"
    STARTS_WITH = "STARTS_WITH"
    EXISTS = "EXISTS"
    NOT_EXISTS = "NOT_EXISTS"


class Kind(Enum):
    TEXT = "text"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"


class Measure(Enum):
    COUNT = "COUNT"
    SUM = "SUM"
    AVERAGE = "AVERAGE"


class Metric(Enum):
    RECENCY_DAYS = "RECENCY_DAYS"
    FREQUENCY = "FREQUENCY"
    MONETARY = "MONETARY"
    RFM_SEGMENT = "RFM_SEGMENT"
    CLV = "CLV"
    CHURN_RISK = "CHURN_RISK"


COUNTING = frozenset({Op.EQ, Op.NEQ, Op.GT, Op.GTE, Op.LT, Op.LTE})
EQUALITY = frozenset({Op.EQ, Op.NEQ, Op.IN, Op.NOT_IN})
ORDERING = frozenset({Op.GT, Op.GTE, Op.LT, Op.LTE, Op.BETWEEN})
PRESENCE = frozenset({Op.EXISTS, Op.NOT_EXISTS})
TEXT_MATCH = frozenset({Op.CONTAINS, Op.STARTS_WITH})
LISTS = frozenset({Op.IN, Op.NOT_IN, Op.BETWEEN})
OPS_BY_KIND = {
    Kind.TEXT: EQUALITY | ORDERING | TEXT_MATCH | PRESENCE,
    Kind.NUMBER: EQUALITY | ORDERING | PRESENCE,
    Kind.BOOLEAN: frozenset({Op.EQ, Op.NEQ}) | PRESENCE,
    Kind.DATE: EQUALITY | ORDERING | PRESENCE,
    Kind.DATETIME: EQUALITY | ORDERING | PRESENCE,
}
TAG_OPS = {
    "FLAG": frozenset[Op](),
    "ENUM": frozenset({Op.EQ, Op.NEQ}),
    "TEXT": frozenset({Op.EQ, Op.NEQ, Op.CONTAINS, Op.STARTS_WITH}),
    "NUMBER": COUNTING,
    "DATE": COUNTING,
}
# Contract name -> (customers column, type). Custom traits are `attributes.<key>`.
FIELDS: dict[str, tuple[str, Kind]] = {
    **{
        name: (column, Kind.TEXT)
        for name, column in (
            ("displayName", "display_name"),
            ("firstName", "first_name"),
            ("lastName", "last_name"),
            ("email", "email"),
            ("phone", "phone"),
            ("gender", "gender"),
            ("locale", "locale"),
            ("country", "country"),
            ("region", "region"),
            ("city", "city"),
        )
    },
    "birthday": ("birthday", Kind.DATE),
    **{
        name: (column, Kind.DATETIME)
        for name, column in (
            ("createdAt", "created_at"),
            ("updatedAt", "updated_at"),
            ("firstSeenAt", "first_seen_at"),
            ("lastSeenAt", "last_seen_at"),
            ("stageEnteredAt", "stage_entered_at"),
        )
    },
}
ATTRIBUTE_PREFIX = "attributes."
METRIC_KINDS = {
    Metric.RECENCY_DAYS: Kind.NUMBER,
    Metric.FREQUENCY: Kind.NUMBER,
    Metric.MONETARY: Kind.NUMBER,
    Metric.RFM_SEGMENT: Kind.TEXT,
    Metric.CLV: Kind.NUMBER,
    Metric.CHURN_RISK: Kind.NUMBER,
}
WHOLE_METRICS = frozenset({Metric.RECENCY_DAYS, Metric.FREQUENCY})
RFM_NAMES = frozenset(name for name, _ in RFM_SEGMENTS)


# --- the typed tree -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Test:
    """An operator and its operands: none (EXISTS), one, two (BETWEEN) or several (IN)."""

    op: Op
    values: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class AllOf:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Negation:
    child: Node


@dataclass(frozen=True, slots=True)
class FieldLeaf:
    column: str
    kind: Kind
    test: Test


@dataclass(frozen=True, slots=True)
class AttributeLeaf:
    key: str
    kind: Kind | None  # None for EXISTS / NOT_EXISTS
    test: Test


@dataclass(frozen=True, slots=True)
class TagLeaf:
    tag_id: uuid.UUID
    value_type: str
    test: Test | None  # None: any value


@dataclass(frozen=True, slots=True)
class StageLeaf:
    stages: tuple[str, ...]
    entered_within_days: int | None


@dataclass(frozen=True, slots=True)
class IdentityLeaf:
    type: str


@dataclass(frozen=True, slots=True)
class PropertyTest:
    """A comparison on one key of an event's JSON properties, typed like a custom attribute's."""

    key: str
    kind: Kind | None  # None for EXISTS / NOT_EXISTS
    test: Test


@dataclass(frozen=True, slots=True)
class EventLeaf:
    type: str
    within_days: int | None
    test: Test  # on the count
    channel: str | None = None
    where: tuple[PropertyTest, ...] = ()  # all hold on each counted event
    # Counts retired months' rollups too: there are some, and no window nor property filter
    # asks for what they forgot (domain.activity.retention).
    rolled_up: bool = False


@dataclass(frozen=True, slots=True)
class OrdersLeaf:
    measure: Measure
    within_days: int | None
    test: Test


@dataclass(frozen=True, slots=True)
class MetricLeaf:
    metric: Metric
    test: Test


@dataclass(frozen=True, slots=True)
class MembershipLeaf:
    """Membership of a materialized segment, read from its stored members."""

    segment_id: uuid.UUID


Node = (
    AllOf
    | AnyOf
    | Negation
    | FieldLeaf
    | AttributeLeaf
    | TagLeaf
    | StageLeaf
    | IdentityLeaf
    | EventLeaf
    | OrdersLeaf
    | MetricLeaf
    | MembershipLeaf
)
