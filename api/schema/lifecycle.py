"""The lifecycle model, stage transitions and the funnel report."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info
from strawberry.types.lazy_type import LazyType

from api.context import Context
from api.pii import free_text, pii_condition
from domain.lifecycle.funnel import FunnelStageRecord, Kpi
from domain.lifecycle.kpis import KpiSpec
from domain.lifecycle.model import LifecycleModelRecord, StageRecord, TransitionRecord

# api.schema.customers imports this module (Customer.stageHistory); this one refers to
# MergeRecord above it only lazily, as api.schema.segments does. Never by import (api.schema).
LazyMergeRecord: Any = LazyType("MergeRecord", "api.schema.customers")


@strawberry.enum(description="What a stage KPI counts: see StageKpiDefinition.")
class KpiMeasure(Enum):
    AVERAGE_ORDER_VALUE = "AVERAGE_ORDER_VALUE"
    CHURN_RATE = "CHURN_RATE"
    CONVERSION_RATE = "CONVERSION_RATE"
    EVENTS = "EVENTS"
    EVENT_CUSTOMERS = "EVENT_CUSTOMERS"
    METRIC_AVERAGE = "METRIC_AVERAGE"
    NPS = "NPS"
    REPEAT_RATE = "REPEAT_RATE"
    SATISFACTION = "SATISFACTION"
    WIN_BACK_RATE = "WIN_BACK_RATE"


@strawberry.type(
    description="A KPI a stage declares, shown by the funnel report over its window. EVENTS / "
    "EVENT_CUSTOMERS: events of eventType (and channel) / customers with one; CONVERSION_RATE: "
    "of the customers active (with an eventType event, when given), the share who bought; "
    "AVERAGE_ORDER_VALUE; REPEAT_RATE; NPS: survey events (eventType, default `survey`) whose "
    "property (default `nps`) is 0-10, promoters minus detractors in %; SATISFACTION: the "
    "average of property (default `satisfaction`, 1-5) on survey events; CHURN_RATE; "
    "WIN_BACK_RATE; METRIC_AVERAGE: the average of metric (CLV, CHURN_RISK, TOTAL_SPENT, "
    "ORDER_COUNT) over the stage's customers now."
)
class StageKpiDefinition:
    key: str
    name: str
    measure: KpiMeasure
    event_type: str | None
    channel: str | None
    property: str | None
    metric: str | None

    @classmethod
    def of(cls, spec: KpiSpec) -> StageKpiDefinition:
        return cls(
            key=spec.key,
            name=spec.name,
            measure=KpiMeasure[spec.measure],
            event_type=spec.event_type,
            channel=spec.channel,
            property=spec.property,
            metric=spec.metric,
        )


@strawberry.type
class LifecycleStage:
    key: str
    name: str
    position: int
    terminal: bool
    kpis: list[StageKpiDefinition]

    @classmethod
    def of(cls, record: StageRecord) -> LifecycleStage:
        return cls(
            key=record.key,
            name=record.name,
            position=record.position,
            terminal=record.terminal,
            kpis=[StageKpiDefinition.of(spec) for spec in record.kpis],
        )


def stage_or_unknown(stages: Mapping[str, StageRecord], key: str) -> LifecycleStage:
    """A stage of history may have left the model since; it still has a key to show."""
    record = stages.get(key)
    return (
        LifecycleStage.of(record)
        if record
        else LifecycleStage(key=key, name=key, position=-1, terminal=False, kpis=[])
    )


@strawberry.type
class StageEdge:
    from_: str = strawberry.field(name="from")
    to: str


@strawberry.type
class LifecycleRule:
    key: str
    to_stage: str
    priority: int
    condition: JSON = strawberry.field(extensions=pii_condition())


@strawberry.type
class LifecycleModel:
    stages: list[LifecycleStage]
    transitions: list[StageEdge]
    rules: list[LifecycleRule]

    @classmethod
    def of(cls, record: LifecycleModelRecord) -> LifecycleModel:
        return cls(
            stages=[LifecycleStage.of(stage) for stage in record.stages],
            transitions=[StageEdge(from_=a, to=b) for a, b in record.edges],
            rules=[
                LifecycleRule(
                    key=r.key, to_stage=r.to_stage, priority=r.priority, condition=JSON(r.condition)
                )
                for r in record.rules
            ],
        )


@strawberry.type
class StageTransition:
    from_: LifecycleStage | None = strawberry.field(name="from")
    to: LifecycleStage
    at: datetime
    reason: str | None = strawberry.field(extensions=free_text())
    actor: str | None
    rule: str | None = strawberry.field(
        description="The key of the rule that made this move; null when a person or a "
        "reconfiguration made it, or for a new profile's entry."
    )
    merge_uuid: strawberry.Private[uuid.UUID | None]

    @classmethod
    def of(cls, record: TransitionRecord, stages: Mapping[str, StageRecord]) -> StageTransition:
        return cls(
            from_=stage_or_unknown(stages, record.from_stage) if record.from_stage else None,
            to=stage_or_unknown(stages, record.to_stage),
            at=record.at,
            reason=record.reason,
            actor=record.actor,
            rule=record.rule_key,
            merge_uuid=record.merge_id,
        )

    @strawberry.field(
        description="The merge that brought this transition from a merged-away profile; "
        "null for the profile's own.",
        graphql_type=LazyMergeRecord | None,
    )
    async def merge(self, info: Info[Context, None]) -> object:
        if self.merge_uuid is None:
            return None
        view = await info.context.loaders.merge_records.load(self.merge_uuid)
        return LazyMergeRecord.resolve_type().of(view) if view else None


@strawberry.type(description="One of the KPIs a stage declares, over the report's window.")
class StageKpi:
    key: str
    label: str
    value: float | None

    @classmethod
    def of(cls, record: Kpi) -> StageKpi:
        return cls(key=record.key, label=record.label, value=record.value)


@strawberry.type
class FunnelStage:
    stage: LifecycleStage
    current: int
    entered: int
    conversion_to_next: float | None
    median_days_in_stage: float | None
    kpis: list[StageKpi]

    @classmethod
    def of(cls, record: FunnelStageRecord) -> FunnelStage:
        return cls(
            stage=LifecycleStage.of(record.stage),
            current=record.current,
            entered=record.entered,
            conversion_to_next=record.conversion_to_next,
            median_days_in_stage=record.median_days_in_stage,
            kpis=[StageKpi.of(kpi) for kpi in record.kpis],
        )


@strawberry.type
class FunnelReport:
    stages: list[FunnelStage]
