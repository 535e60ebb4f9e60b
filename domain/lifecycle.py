"""The lifecycle model (a configurable stage graph) and each profile's stage history.

The default model is the `funnel` preset of seed 000: awareness -> consideration -> purchase ->
loyalty, churned reachable from every stage and left only by a win-back purchase.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import Database
from store.models import LifecycleEdge, LifecycleRule, LifecycleStage, StageTransition


@dataclass(frozen=True, slots=True)
class StageRecord:
    key: str
    name: str
    position: int
    terminal: bool


@dataclass(frozen=True, slots=True)
class RuleRecord:
    key: str
    to_stage: str
    priority: int
    condition: dict[str, Any]


@dataclass(frozen=True, slots=True)
class LifecycleModelRecord:
    stages: tuple[StageRecord, ...]
    edges: tuple[tuple[str, str], ...]
    rules: tuple[RuleRecord, ...]

    def stage(self, key: str | None) -> StageRecord | None:
        return next((stage for stage in self.stages if stage.key == key), None)


@dataclass(frozen=True, slots=True)
class TransitionRecord:
    customer_id: uuid.UUID
    from_stage: str | None
    to_stage: str
    at: datetime
    reason: str | None
    actor: str | None


FUNNEL_STAGES = (
    StageRecord("awareness", "Awareness 认知", 0, False),
    StageRecord("consideration", "Consideration 考虑", 1, False),
    StageRecord("purchase", "Purchase 购买", 2, False),
    StageRecord("loyalty", "Loyalty 忠诚", 3, False),
    StageRecord("churned", "Churned 流失", 4, True),
)
FUNNEL_EDGES = (
    ("awareness", "consideration"),
    ("awareness", "purchase"),
    ("consideration", "purchase"),
    ("purchase", "loyalty"),
    ("awareness", "churned"),
    ("consideration", "churned"),
    ("purchase", "churned"),
    ("loyalty", "churned"),
    ("churned", "purchase"),
)


async def load_model(session: AsyncSession) -> LifecycleModelRecord:
    stages = (
        await session.execute(select(LifecycleStage).order_by(LifecycleStage.position))
    ).scalars()
    edges = (await session.execute(select(LifecycleEdge.from_stage, LifecycleEdge.to_stage))).all()
    rules = (
        await session.execute(select(LifecycleRule).order_by(LifecycleRule.priority.desc()))
    ).scalars()
    return LifecycleModelRecord(
        stages=tuple(StageRecord(s.key, s.name, s.position, s.terminal) for s in stages),
        edges=tuple((e.from_stage, e.to_stage) for e in edges),
        rules=tuple(RuleRecord(r.key, r.to_stage, r.priority, r.condition) for r in rules),
    )


async def get_model(db: Database) -> LifecycleModelRecord:
    async with db.read() as session:
        return await load_model(session)


async def ensure_default_model(session: AsyncSession) -> None:
    """A new database starts with the funnel preset."""
    if (await session.execute(select(func.count()).select_from(LifecycleStage))).scalar_one():
        return
    session.add_all(
        LifecycleStage(key=s.key, name=s.name, position=s.position, terminal=s.terminal)
        for s in FUNNEL_STAGES
    )
    await session.flush()
    session.add_all(LifecycleEdge(from_stage=a, to_stage=b) for a, b in FUNNEL_EDGES)


async def history_of(
    db: Database, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[TransitionRecord]]:
    columns = (getattr(StageTransition, name) for name in TransitionRecord.__slots__)
    statement = (
        select(*columns)
        .where(StageTransition.customer_id.in_(customer_ids))
        .order_by(StageTransition.customer_id, StageTransition.at, StageTransition.id)
    )
    found: dict[uuid.UUID, list[TransitionRecord]] = defaultdict(list)
    async with db.read() as session:
        for row in await session.execute(statement):
            found[row.customer_id].append(TransitionRecord(*row))
    return found
