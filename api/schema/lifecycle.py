"""The lifecycle model and stage transitions."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from domain.lifecycle import LifecycleModelRecord, StageRecord, TransitionRecord


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


def stage_or_unknown(model: LifecycleModelRecord, key: str) -> LifecycleStage:
    """A stage of history may have left the model since; it still has a key to show."""
    record = model.stage(key)
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
    condition: JSON


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
    reason: str | None
    actor: str | None

    @classmethod
    def of(cls, record: TransitionRecord, model: LifecycleModelRecord) -> StageTransition:
        return cls(
            from_=stage_or_unknown(model, record.from_stage) if record.from_stage else None,
            to=stage_or_unknown(model, record.to_stage),
            at=record.at,
            reason=record.reason,
            actor=record.actor,
        )
