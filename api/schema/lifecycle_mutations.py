"""Inputs and payloads of the lifecycle mutations: configureLifecycle, setStage, presets."""

from __future__ import annotations

import strawberry

from api.schema.common import UserError
from api.schema.conditions import ConditionInput
from api.schema.customers import Customer
from api.schema.lifecycle import KpiMeasure, LifecycleModel, StageTransition


@strawberry.input(description="A KPI the stage declares (see StageKpiDefinition).")
class StageKpiInput:
    key: str
    name: str
    measure: KpiMeasure
    event_type: str | None = None
    channel: str | None = None
    property: str | None = None
    metric: str | None = None


@strawberry.input
class LifecycleStageInput:
    key: str
    name: str
    terminal: bool | None = False  # null: the default
    kpis: list[StageKpiInput] | None = strawberry.field(
        default=None, description="What the funnel report shows for the stage; null: none."
    )


@strawberry.input
class StageEdgeInput:
    from_: str = strawberry.field(name="from")
    to: str


@strawberry.input
class LifecycleRuleInput:
    key: str
    to_stage: str
    priority: int | None = 0  # null: the default
    condition: ConditionInput


@strawberry.input(description="Stages in funnel order: the first is where new profiles enter.")
class LifecycleModelInput:
    stages: list[LifecycleStageInput]
    transitions: list[StageEdgeInput]
    rules: list[LifecycleRuleInput] | None = None


@strawberry.type
class LifecycleModelPayload:
    model: LifecycleModel | None
    errors: list[UserError]


@strawberry.type
class StagePayload:
    customer: Customer | None
    transition: StageTransition | None
    errors: list[UserError]
