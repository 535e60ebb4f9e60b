"""The stage funnel report, computed in SQL from stage transitions, events and orders.

Definitions (window = [from, to), `to` defaulting to now and `from` to the beginning of time;
population = every profile, or the members of a segment). A journey is one profile's own
moves; the moves a merge brought stay the merged-away profile's journey (whose last stay ends
at the merge), so a merge never splices two people's stays together.
- current: live profiles in the stage now.
- entered: journeys with a transition into the stage inside the window.
- conversionToNext: of those, the share that later (any time up to now) entered the next stage
  by position, counting from their first entry inside the window; none after a terminal stage
  or into one. Order is (at, id): the moves of one rule run share a time stamp.
- medianDaysInStage: over the stays that began inside the window; a stay ends at the
  journey's next transition, else at its merge, else now (still there).
- kpis: the indicators each stage declares (domain.lifecycle.kpis), over the window; two of
  them are counted here with the journeys: churn rate = journeys that entered churned /
  journeys at risk (in another stage at the window's start, or entering one inside it);
  win-back rate = journeys that left churned / journeys churned at the start or entering
  churned inside it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, literal, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

import domain.segments.definitions as segments
from domain.errors import InvalidInput
from domain.lifecycle.kpis import measure_kpis
from domain.lifecycle.model import LifecycleModelRecord, StageRecord, load_model
from store.db import Database
from store.models import Customer, MergeRecord, StageTransition
from store.sqlfuncs import days_between, medians
from store.tuning import tune_for_bulk
from store.types import UTCDateTime, utcnow

CHURNED = "churned"


@dataclass(frozen=True, slots=True)
class Kpi:
    key: str
    label: str
    value: float | None


@dataclass(frozen=True, slots=True)
class FunnelStageRecord:
    stage: StageRecord
    current: int
    entered: int
    conversion_to_next: float | None
    median_days_in_stage: float | None
    kpis: tuple[Kpi, ...]


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime | None
    end: datetime
    population: Select[Any] | None  # customer ids, or None for everyone

    def holds(self, moment: Any) -> ColumnElement[bool]:
        inside = moment < self.end
        return inside if self.start is None else and_(moment >= self.start, inside)

    def members(self, column: Any) -> list[ColumnElement[bool]]:
        return [] if self.population is None else [column.in_(self.population)]


@dataclass(frozen=True, slots=True)
class _Journeys:
    entered: dict[str, int]
    converted: dict[str, int]
    medians: dict[str, float]
    kpis: dict[str, float | None]


async def funnel(
    db: Database,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    segment_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> tuple[FunnelStageRecord, ...]:
    now = now or utcnow()
    end = end or now
    if start is not None and start >= end:
        raise InvalidInput("`from` must be earlier than `to`", field=["from"])
    population = None
    if segment_id is not None:
        matches = await segments.customer_filter(db, None, segment_id, now)
        assert matches is not None
        population = matches.apply(select(Customer.id))
    window = Window(start, end, population)
    async with db.read() as session:
        await tune_for_bulk(session)
        model = await load_model(session)
        current = await _current(session, window)
        journeys = await _journeys(session, model, window, now)
        declared = {stage.key: stage.kpis for stage in model.stages}
        kpis = await measure_kpis(session, window, declared, journeys.kpis)
    return tuple(
        FunnelStageRecord(
            stage=stage,
            current=current.get(stage.key, 0),
            entered=journeys.entered[stage.key],
            conversion_to_next=_share(journeys.converted[stage.key], journeys.entered[stage.key])
            if model.next_stage(stage.key)
            else None,
            median_days_in_stage=journeys.medians.get(stage.key),
            kpis=tuple(Kpi(k.key, k.name, kpis[(stage.key, k.key)]) for k in stage.kpis),
        )
        for stage in model.stages
    )


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _flag(condition: ColumnElement[bool]) -> Any:
    """1 when any row of the group meets `condition` (bool_or, spelled for both backends)."""
    return func.max(case((condition, 1), else_=0))


async def _current(session: AsyncSession, window: Window) -> dict[str, int]:
    live = Customer.status == "ACTIVE"
    statement = (
        select(Customer.stage, func.count())
        .where(live, Customer.stage.is_not(None), *window.members(Customer.id))
        .group_by(Customer.stage)
    )
    rows = await session.execute(statement)
    return {stage: int(count) for stage, count in rows if stage is not None}


async def _journeys(
    session: AsyncSession, model: LifecycleModelRecord, window: Window, now: datetime
) -> _Journeys:
    """Entries, conversions, median stays and the churn indicators in one statement: the
    transitions are sorted once (by journey and time), then pivoted to one row per journey
    with a pair of columns per stage, then counted into a single row. Stages are carried as
    their number: integer comparisons and sorts, no collation lookups."""
    t, keys = StageTransition, [s.key for s in model.stages]
    # A journey is (its merge or its profile, its profile). Not (customer_id, ...) first: the
    # (customer_id, at) index would invite an incremental sort reading the table in random
    # order; a full sort of a sequential scan is faster.
    lineage = func.coalesce(t.merge_id, t.customer_id)
    journey: dict[str, Any] = {"partition_by": (lineage, t.customer_id), "order_by": (t.at, t.id)}
    merged_at = select(MergeRecord.merged_at).where(MergeRecord.id == t.merge_id)
    ended = case((t.merge_id.is_not(None), merged_at.scalar_subquery()))
    ranked = (
        select(
            t.customer_id,
            t.merge_id,
            case({key: i for i, key in enumerate(keys)}, value=t.to_stage, else_=-1).label("stage"),
            case((t.from_stage == CHURNED, 1), else_=0).label("from_churned"),
            t.at,
            func.row_number().over(**journey).label("seq"),
            func.coalesce(func.lead(t.at).over(**journey), ended).label("left"),
        )
        .where(*window.members(t.customer_id))
        .cte("ranked")
    )
    r = ranked.c
    inside = window.holds(r.at)
    columns = []
    for i in range(len(keys)):
        first = func.min(case((and_(r.stage == i, inside), r.seq)))
        columns += [
            first.label(f"first_{i}"),
            func.max(case((r.stage == i, r.seq))).label(f"last_{i}"),
        ]
    churned = keys.index(CHURNED) if CHURNED in keys else -2
    flags = _churn_flags(r, window, churned)
    per = select(*columns, *flags).group_by(r.customer_id, r.merge_id).subquery()
    counts = []
    for i, key in enumerate(keys):
        following = model.next_stage(key)
        went_on = (
            per.c[f"last_{keys.index(following)}"] > per.c[f"first_{i}"]
            if following
            else literal(False)
        )
        counts += [func.count(per.c[f"first_{i}"]), func.count(case((went_on, 1)))]
    at_risk = or_(per.c.other_at_start == 1, per.c.entered_other == 1)
    lapsed = or_(per.c.churned_at_start == 1, per.c.entered_churned == 1)
    counts += [
        func.count(case((at_risk, 1))),
        func.count(case((and_(at_risk, per.c.entered_churned == 1), 1))),
        func.count(case((lapsed, 1))),
        func.count(case((and_(lapsed, per.c.left_churned == 1), 1))),
    ]
    until = func.coalesce(r.left, literal(now, UTCDateTime()))
    stays = select(r.stage, days_between(session, r.at, until).label("days")).where(inside)
    flows = select(*counts).select_from(per).subquery()
    by_stage = medians(session, stays.subquery(), "stage", "days").subquery()
    stage, median = by_stage.c
    halves = select(*(func.max(case((stage == i, median))) for i in range(len(keys)))).subquery()
    row = (
        await session.execute(select(flows, halves).select_from(flows.join(halves, true())))
    ).one()
    n = len(keys)
    risky, gone, pool, back = (int(v) for v in row[2 * n : 2 * n + 4])
    return _Journeys(
        entered={key: int(row[2 * i]) for i, key in enumerate(keys)},
        converted={key: int(row[2 * i + 1]) for i, key in enumerate(keys)},
        medians={
            key: round(float(v), 2)
            for key, v in zip(keys, row[2 * n + 4 :], strict=True)
            if v is not None
        },
        kpis={"CHURN_RATE": _share(gone, risky), "WIN_BACK_RATE": _share(back, pool)},
    )


def _churn_flags(r: Any, window: Window, churned: int) -> list[Any]:
    """Per journey: in churned (stage number `churned`) / in another stage when the window
    began; entered churned / another stage / left churned inside it."""
    inside = window.holds(r.at)
    if window.start is None:
        held_at_start: ColumnElement[bool] = literal(False)
    else:
        held_at_start = and_(r.at < window.start, or_(r.left.is_(None), r.left >= window.start))
    return [
        _flag(and_(held_at_start, r.stage == churned)).label("churned_at_start"),
        _flag(and_(held_at_start, r.stage != churned)).label("other_at_start"),
        _flag(and_(inside, r.stage == churned)).label("entered_churned"),
        _flag(and_(inside, r.stage != churned)).label("entered_other"),
        _flag(and_(inside, r.from_churned == 1)).label("left_churned"),
    ]
