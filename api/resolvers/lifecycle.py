"""Resolvers of the lifecycle: map input, call the domain, map the outcome."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from api.context import Context
from api.ids import parse_uuid_id
from api.schema.conditions import condition_dict
from api.schema.customers import Customer
from api.schema.lifecycle import FunnelReport, FunnelStage, LifecycleModel, StageTransition
from api.schema.lifecycle_mutations import LifecycleModelInput, LifecycleModelPayload, StagePayload
from domain import profile
from domain.errors import InvalidInput
from domain.lifecycle import by_hand
from domain.lifecycle import config as lifecycle_config
from domain.lifecycle import funnel as domain_funnel
from domain.lifecycle.kpis import KpiSpec
from domain.lifecycle.model import LifecycleModelRecord, RuleRecord, StageRecord


def _model_of(input: LifecycleModelInput) -> LifecycleModelRecord:
    return LifecycleModelRecord(
        stages=tuple(
            StageRecord(
                s.key,
                s.name,
                position,
                bool(s.terminal),
                tuple(
                    KpiSpec(
                        k.key,
                        k.name,
                        k.measure.value,
                        k.event_type,
                        k.channel,
                        k.property,
                        k.metric,
                    )
                    for k in s.kpis or ()
                ),
            )
            for position, s in enumerate(input.stages)
        ),
        edges=tuple((e.from_, e.to) for e in input.transitions),
        rules=tuple(
            RuleRecord(r.key, r.to_stage, r.priority or 0, condition_dict(r.condition))
            for r in input.rules or ()
        ),
    )


def _mapping(raw: Any) -> Mapping[str, str] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidInput(
            "stageMapping is an object: {oldStage: newStage}", field=["stageMapping"]
        )
    return raw


async def configure(
    context: Context, input: LifecycleModelInput, stage_mapping: Any
) -> LifecycleModelPayload:
    saved = await lifecycle_config.configure(
        context.db, _model_of(input), _mapping(stage_mapping), actor=context.actor
    )
    return LifecycleModelPayload(model=LifecycleModel.of(saved), errors=[])


async def apply_preset(
    context: Context, preset: str, stage_mapping: Any, churn_days: int | None
) -> LifecycleModelPayload:
    saved = await lifecycle_config.apply_preset(
        context.db,
        preset,
        _mapping(stage_mapping),
        churn_days=churn_days,
        actor=context.actor,
    )
    return LifecycleModelPayload(model=LifecycleModel.of(saved), errors=[])


async def set_stage(
    context: Context, customer: str, stage: str, reason: str | None, force: bool
) -> StagePayload:
    change = await by_hand.set_stage(
        context.db,
        parse_uuid_id(customer, "Customer", "customer"),
        stage,
        reason=reason,
        actor=context.actor,
        force=force,
    )
    record = await profile.get_customer(context.db, change.customer_id)
    stages = await context.loaders.stages()
    return StagePayload(
        customer=Customer.of(record) if record else None,
        transition=StageTransition.of(change.transition, stages),
        errors=[],
    )


async def funnel(
    context: Context, start: datetime | None, end: datetime | None, segment: str | None
) -> FunnelReport:
    segment_id = parse_uuid_id(segment, "Segment", "segment") if segment else None
    stages = await domain_funnel.funnel(context.db, start=start, end=end, segment_id=segment_id)
    return FunnelReport(stages=[FunnelStage.of(stage) for stage in stages])
