"""The lifecycle model, stage transitions and the funnel report."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info
from strawberry.types.lazy_type import LazyType

from api.context import Context
from api.pii import free_text, pii_condition
from domain.lifecycle.funnel import FunnelStageRecord, Kpi
from domain.lifecycle.model import LifecycleModelRecord, StageRecord, TransitionRecord

# api.schema.customers imports this module (Customer.stageHistory); this one refers to
# MergeRecord above it only lazily, as api.schema.segments does. Never by import (api.schema).
LazyMergeRecord: Any = LazyType("MergeRecord", "api.schema.customers")


@strawberry.type
class LifecycleStage:
    key: str
    name: str
    position: int
    terminal: bool

    @classmethod
    def of(cls, record: StageRecord) -> LifecycleStage:
        return cls(
            key=record.key, name=record.name, position=record.position, terminal=record.terminal
        )


def stage_or_unknown(stages: Mapping[str, StageRecord], key: str) -> LifecycleStage:
    """A stage of history may have left the model since; it still has a key to show."""
    record = stages.get(key)
    return (
        LifecycleStage.of(record)
        if record
        else LifecycleStage(key=key, name=key, position=-1, terminal=False)
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


@strawberry.type(description="One of a stage's key indicators (seed 000) over the window.")
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
