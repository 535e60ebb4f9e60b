"""The lifecycle model as data (stages, allowed edges, rules), its presets, and stage history.

A model is a stage graph: the first stage (position 0) is where every new profile enters, an
edge (from, to) allows a move, and a rule moves a profile to its `to_stage` when its condition
(the condition language, as a JSON dict) holds and an edge leads there from the current stage.
Two presets come from the seeds; `funnel` is what a new database starts with:

- funnel (seed 000, 认知/考虑/购买/忠诚/流失): awareness -> consideration -> purchase -> loyalty,
  churned reachable from every stage and left only by a win-back purchase.
- clm (seeds 001 and 004, 获取/提升/成熟/衰退/离开): acquisition -> growth -> maturity -> decline
  -> churned, driven by order frequency and its decline; a new order revives a declining or
  churned customer into growth.

Both churn after `churn_days` (default 180) without any order or activity. Every preset stage
declares seed 000's KPIs for it (domain.lifecycle.kpis).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.errors import NotFound
from domain.lifecycle.kpis import PRESET_KPIS, KpiSpec, kpi_of
from store.db import Database
from store.models import LifecycleEdge, LifecycleRule, LifecycleStage, StageTransition

DEFAULT_CHURN_DAYS = 180


@dataclass(frozen=True, slots=True)
class StageRecord:
    key: str
    name: str
    position: int
    terminal: bool
    kpis: tuple[KpiSpec, ...] = ()  # what the funnel report shows for it (domain.lifecycle.kpis)


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

    @property
    def entry(self) -> str:
        """Where a new profile enters: the stage at the first position."""
        return min(self.stages, key=lambda s: s.position).key

    def sources(self, to_stage: str) -> tuple[str, ...]:
        """The stages an edge leads from into `to_stage`."""
        return tuple(a for a, b in self.edges if b == to_stage)

    def next_stage(self, key: str) -> str | None:
        """The following stage of the funnel by position, unless either is terminal."""
        ordered = sorted(self.stages, key=lambda s: s.position)
        index = next(i for i, s in enumerate(ordered) if s.key == key)
        if ordered[index].terminal or index + 1 == len(ordered) or ordered[index + 1].terminal:
            return None
        return ordered[index + 1].key


@dataclass(frozen=True, slots=True)
class TransitionRecord:
    customer_id: uuid.UUID
    from_stage: str | None
    to_stage: str
    at: datetime
    reason: str | None
    actor: str | None
    rule_key: str | None
    merge_id: uuid.UUID | None


def _orders(count: int, within_days: int | None = None) -> dict[str, Any]:
    """At least `count` completed orders (in the last `within_days`)."""
    spec: dict[str, Any] = {"measure": "COUNT", "op": "GTE", "value": count}
    if within_days is not None:
        spec["withinDays"] = within_days
    return {"orders": spec}


def _in_stage(*keys: str) -> dict[str, Any]:
    return {"stage": {"in": list(keys)}}


def _inactive(days: int, stages: Sequence[StageRecord]) -> dict[str, Any]:
    """No order and no other activity in `days` (RECENCY_DAYS counts both); a profile that
    never did anything at all is idle once it has spent `days` in its stage."""
    recency = {"name": "RECENCY_DAYS", "op": "GTE"}
    return {
        "or": [
            {"metric": {**recency, "value": days}},
            {
                "and": [
                    {"not": {"metric": {**recency, "value": 0}}},
                    {"not": {"stage": {"in": [s.key for s in stages], "enteredWithinDays": days}}},
                ]
            },
        ]
    }


def _preset(key: str, name: str, position: int, terminal: bool = False) -> StageRecord:
    """A preset's stage, with seed 000's KPIs for it."""
    return StageRecord(key, name, position, terminal, PRESET_KPIS[key])


def funnel_model(churn_days: int = DEFAULT_CHURN_DAYS) -> LifecycleModelRecord:
    """Seed 000's funnel. The stage conditions keep a churned customer's old orders from
    counting as a win-back: only an order placed since churning (within `churn_days`) does."""
    browsing = {
        "or": [
            {"event": {"type": "product_view", "withinDays": 30}},
            {"event": {"type": "add_to_cart", "withinDays": 30}},
        ]
    }
    stages = (
        _preset("awareness", "Awareness 认知", 0),
        _preset("consideration", "Consideration 考虑", 1),
        _preset("purchase", "Purchase 购买", 2),
        _preset("loyalty", "Loyalty 忠诚", 3),
        _preset("churned", "Churned 流失", 4, terminal=True),
    )
    return LifecycleModelRecord(
        stages=stages,
        edges=FUNNEL_EDGES,
        rules=(
            RuleRecord("inactive", "churned", 50, _inactive(churn_days, stages)),
            RuleRecord("repeat-buyer", "loyalty", 40, _orders(3, 365)),
            RuleRecord(
                "win-back", "purchase", 30, {"and": [_in_stage("churned"), _orders(1, churn_days)]}
            ),
            RuleRecord(
                "first-order",
                "purchase",
                20,
                {"and": [_in_stage("awareness", "consideration"), _orders(1)]},
            ),
            RuleRecord("browsing", "consideration", 10, browsing),
        ),
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


def clm_model(churn_days: int = DEFAULT_CHURN_DAYS) -> LifecycleModelRecord:
    """Seeds 001/004: activation by a first order, maturity by a steady order frequency (3 in a
    year), decline when orders stop for a quarter (half the churn window), churn when all
    activity stops; a new order revives a declining or churned customer into growth."""
    quiet_days = max(1, churn_days // 2)
    stages = (
        _preset("acquisition", "Acquisition 获取", 0),
        _preset("growth", "Growth 提升", 1),
        _preset("maturity", "Maturity 成熟", 2),
        _preset("decline", "Decline 衰退", 3),
        _preset("churned", "Churned 离开", 4, terminal=True),
    )
    return LifecycleModelRecord(
        stages=stages,
        edges=(
            ("acquisition", "growth"),
            ("growth", "maturity"),
            ("growth", "decline"),
            ("maturity", "decline"),
            ("decline", "growth"),
            ("acquisition", "churned"),
            ("growth", "churned"),
            ("maturity", "churned"),
            ("decline", "churned"),
            ("churned", "growth"),
        ),
        rules=(
            RuleRecord("inactive", "churned", 60, _inactive(churn_days, stages)),
            RuleRecord(
                "declining", "decline", 50, {"and": [_orders(1), {"not": _orders(1, quiet_days)}]}
            ),
            RuleRecord("steady-buyer", "maturity", 40, _orders(3, 365)),
            RuleRecord(
                "revived",
                "growth",
                30,
                {"and": [_in_stage("decline", "churned"), _orders(1, quiet_days)]},
            ),
            RuleRecord(
                "first-order", "growth", 20, {"and": [_in_stage("acquisition"), _orders(1)]}
            ),
        ),
    )


PRESETS: dict[str, Callable[[int], LifecycleModelRecord]] = {
    "funnel": funnel_model,
    "clm": clm_model,
}


def preset_model(name: str, churn_days: int | None = None) -> LifecycleModelRecord:
    build = PRESETS.get(name)
    if build is None:
        raise NotFound(
            f"no preset {name!r}: choose one of {', '.join(PRESETS)}",
            field=["preset"],
            code="UNKNOWN_PRESET",
        )
    return build(DEFAULT_CHURN_DAYS if churn_days is None else churn_days)


async def load_model(session: AsyncSession) -> LifecycleModelRecord:
    stages = (
        await session.execute(select(LifecycleStage).order_by(LifecycleStage.position))
    ).scalars()
    edges = (
        await session.execute(
            select(LifecycleEdge.from_stage, LifecycleEdge.to_stage).order_by(
                LifecycleEdge.from_stage, LifecycleEdge.to_stage
            )
        )
    ).all()
    rules = (
        await session.execute(
            select(LifecycleRule).order_by(LifecycleRule.priority.desc(), LifecycleRule.key)
        )
    ).scalars()
    return LifecycleModelRecord(
        stages=tuple(
            StageRecord(s.key, s.name, s.position, s.terminal, tuple(kpi_of(k) for k in s.kpis))
            for s in stages
        ),
        edges=tuple((e.from_stage, e.to_stage) for e in edges),
        rules=tuple(RuleRecord(r.key, r.to_stage, r.priority, r.condition) for r in rules),
    )


async def get_stages(db: Database) -> dict[str, StageRecord]:
    """The model's stages by key: all a profile's stage and history show of the model."""
    async with db.read() as session:
        rows = await session.execute(
            select(
                LifecycleStage.key,
                LifecycleStage.name,
                LifecycleStage.position,
                LifecycleStage.terminal,
            )
        )
        return {row.key: StageRecord(*row) for row in rows}


async def get_model(db: Database) -> LifecycleModelRecord:
    async with db.read() as session:
        return await load_model(session)


async def store_model(session: AsyncSession, model: LifecycleModelRecord) -> None:
    """Write `model` into empty model tables (the caller removed the previous one)."""
    await session.execute(
        insert(LifecycleStage),
        [{"key": s.key, "name": s.name, "position": s.position, "terminal": s.terminal,
          "kpis": [kpi.to_json() for kpi in s.kpis]}
         for s in model.stages],
    )  # fmt: skip
    if model.edges:
        await session.execute(
            insert(LifecycleEdge), [{"from_stage": a, "to_stage": b} for a, b in model.edges]
        )
    if model.rules:
        await session.execute(
            insert(LifecycleRule),
            [{"key": r.key, "to_stage": r.to_stage, "priority": r.priority,
              "condition": r.condition} for r in model.rules],
        )  # fmt: skip


async def ensure_default_model(session: AsyncSession) -> None:
    """A new database starts with the funnel preset; an existing model is never touched."""
    if (await session.execute(select(func.count()).select_from(LifecycleStage))).scalar_one():
        return
    await store_model(session, funnel_model())


async def history_of(
    db: Database, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[TransitionRecord]]:
    """Each profile's transitions, oldest first; those a merge brought carry its `merge_id`."""
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
