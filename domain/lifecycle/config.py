"""Replacing the lifecycle model: validation of the whole model, then migration of profiles.

A model is refused whole, with every problem found (`ModelRefused.errors`), and nothing is
written. What is checked:
- stages: at least one, keys are short slugs and unique; the first is the entry stage; their
  KPIs are well declared (INVALID_KPI, domain.lifecycle.kpis);
- edges: both ends are stages of the model (UNKNOWN_STAGE), no self-edge or duplicate;
- rules: unique keys, a target stage of the model (UNKNOWN_STAGE) with an edge leading into
  it from somewhere (UNREACHABLE_RULE: such a rule could never fire), a condition that
  validates (the condition language's own codes, at the path of the bad node);
- every stage can be reached from the entry stage along edges (UNREACHABLE_STAGE).
Profiles in a stage the new model drops move to the stage `stage_mapping` names for it, with a
transition and a change event each; a dropped stage that holds profiles and has no mapping
refuses the model (STAGE_MAPPING_REQUIRED).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from domain.conditions.language import Catalog, parse
from domain.errors import DomainError, InvalidInput
from domain.lifecycle.kpis import check_kpis
from domain.lifecycle.model import (
    LifecycleModelRecord,
    load_model,
    preset_model,
    store_model,
)
from domain.lifecycle.moves import move_everyone_in
from domain.lifecycle.rules import rules_catalog
from domain.values import text_for
from store.db import Database
from store.locking import hold_lifecycle_model
from store.models import Customer, LifecycleEdge, LifecycleRule, LifecycleStage
from store.types import utcnow

KEY = re.compile(r"[a-z][a-z0-9_-]{0,63}")  # fullmatch: `$` allows a final "\n"
MAX_STAGES = 50
MAX_RULES = 100
Field = tuple[str | int, ...]


class ModelRefused(InvalidInput):
    """A model (or its stage mapping) refused whole: `errors` lists every problem found."""

    code = "INVALID_MODEL"

    def __init__(self, errors: Sequence[DomainError]) -> None:
        first = errors[0]
        super().__init__(first.message, field=first.field, code=first.code)
        self.errors = tuple(errors)

    def at(self, *prefix: str | int) -> DomainError:
        return ModelRefused([error.at(*prefix) for error in self.errors])


def _error(message: str, field: Field, code: str = "INVALID_MODEL") -> DomainError:
    return InvalidInput(message, field=field, code=code)


def _too_long(column: QueryableAttribute[str], value: str, field: Field) -> list[DomainError]:
    """The refusal of `value` for `column` (domain.values.text_for), as a list of problems."""
    try:
        text_for(column, value, field, code="INVALID_MODEL")
    except InvalidInput as error:
        return [error]
    return []


def check_model(model: LifecycleModelRecord, catalog: Catalog) -> list[DomainError]:
    """Every problem of `model`, with field paths into its input (`stages`, `transitions`,
    `rules`); `catalog` is what conditions may name, with the model's own stage keys."""
    errors = _check_stages(model)
    keys = {stage.key for stage in model.stages}
    edges: set[tuple[str, str]] = set()
    for index, (a, b) in enumerate(model.edges):
        here: Field = ("transitions", index)
        unknown = [(end, name) for end, name in (("from", a), ("to", b)) if name not in keys]
        for end, name in unknown:
            errors.append(_error(f"no stage {name!r} in the model", (*here, end), "UNKNOWN_STAGE"))
        if a == b:
            errors.append(_error(f"an edge from {a} to itself", here))
        elif (a, b) in edges:
            errors.append(_error(f"the edge {a} -> {b} is listed twice", here))
        elif not unknown:
            edges.add((a, b))
    errors += _check_rules(model, keys, edges, catalog)
    if model.stages and not errors:
        reached = _reachable(model.stages[0].key, edges)
        errors += [
            _error(
                f"{stage.key} cannot be reached from the entry stage {model.stages[0].key}",
                ("stages", index),
                "UNREACHABLE_STAGE",
            )
            for index, stage in enumerate(model.stages)
            if stage.key not in reached
        ]
    return errors


def _check_stages(model: LifecycleModelRecord) -> list[DomainError]:
    if not model.stages:
        return [_error("a model has at least one stage", ("stages",))]
    if len(model.stages) > MAX_STAGES:
        return [_error(f"a model has at most {MAX_STAGES} stages", ("stages",))]
    errors, seen = [], set()
    for index, stage in enumerate(model.stages):
        if not KEY.fullmatch(stage.key):
            errors.append(
                _error(
                    "a stage key is a lowercase slug: a-z first, then a-z, 0-9, _ or -",
                    ("stages", index, "key"),
                )
            )
        elif stage.key in seen:
            errors.append(_error(f"stage {stage.key} is listed twice", ("stages", index, "key")))
        else:
            errors += _too_long(LifecycleStage.key, stage.key, ("stages", index, "key"))
        if not stage.name.strip():
            errors.append(_error("a stage needs a name", ("stages", index, "name")))
        errors += _too_long(LifecycleStage.name, stage.name, ("stages", index, "name"))
        errors += check_kpis(stage.kpis, ("stages", index, "kpis"))
        seen.add(stage.key)
    return errors


def _check_rules(
    model: LifecycleModelRecord, keys: set[str], edges: set[tuple[str, str]], catalog: Catalog
) -> list[DomainError]:
    if len(model.rules) > MAX_RULES:
        return [_error(f"a model has at most {MAX_RULES} rules", ("rules",))]
    errors, seen = [], set()
    targets = {b for _, b in edges}
    for index, rule in enumerate(model.rules):
        here: Field = ("rules", index)
        if not KEY.fullmatch(rule.key):
            errors.append(_error("a rule key is a lowercase slug", (*here, "key")))
        elif rule.key in seen:
            errors.append(_error(f"rule {rule.key} is listed twice", (*here, "key")))
        else:
            errors += _too_long(LifecycleRule.key, rule.key, (*here, "key"))
        seen.add(rule.key)
        if rule.to_stage not in keys:
            message = f"no stage {rule.to_stage!r} in the model"
            errors.append(_error(message, (*here, "toStage"), "UNKNOWN_STAGE"))
        elif rule.to_stage not in targets:
            message = f"no edge leads into {rule.to_stage}: rule {rule.key} could never fire"
            errors.append(_error(message, (*here, "toStage"), "UNREACHABLE_RULE"))
        try:
            parse(rule.condition, catalog)
        except InvalidInput as error:
            errors.append(error.at(*here, "condition"))
    return errors


def _reachable(entry: str, edges: set[tuple[str, str]]) -> set[str]:
    reached, frontier = {entry}, [entry]
    while frontier:
        stage = frontier.pop()
        for a, b in edges:
            if a == stage and b not in reached:
                reached.add(b)
                frontier.append(b)
    return reached


async def configure(
    db: Database,
    model: LifecycleModelRecord,
    stage_mapping: Mapping[str, str] | None,
    *,
    actor: str | None,
    now: datetime | None = None,
) -> LifecycleModelRecord:
    """Replace the model with `model` (stage positions are their order in it) and move the
    profiles of dropped stages as `stage_mapping` says; refused whole with ModelRefused."""
    now = now or utcnow()
    mapping = dict(stage_mapping or {})

    async def work(session: AsyncSession) -> LifecycleModelRecord:
        await hold_lifecycle_model(session, exclusive=True)
        errors = [e.at("input") for e in check_model(model, await rules_catalog(session, model))]
        if errors:
            raise ModelRefused(errors)
        held = await _profiles_per_stage(session)
        errors = _check_mapping(model, mapping, held, await load_model(session))
        if errors:
            raise ModelRefused(errors)
        for table in (LifecycleRule, LifecycleEdge, LifecycleStage):
            await session.execute(delete(table))
        await store_model(session, model)
        for old, new in mapping.items():
            if old != new and held.get(old):
                reason = f"lifecycle model changed: {old} is now {new}"
                await move_everyone_in(session, old, new, now=now, actor=actor, reason=reason)
        return await load_model(session)

    return await db.transact(work)


async def apply_preset(
    db: Database,
    name: str,
    stage_mapping: Mapping[str, str] | None,
    *,
    churn_days: int | None = None,
    actor: str | None,
    now: datetime | None = None,
) -> LifecycleModelRecord:
    """`configure` with one of the presets (`domain.lifecycle.model.PRESETS`)."""
    if churn_days is not None and not 1 <= churn_days <= 3650:
        raise InvalidInput("churnDays is 1 to 3650", field=["churnDays"])
    return await configure(db, preset_model(name, churn_days), stage_mapping, actor=actor, now=now)


async def _profiles_per_stage(session: AsyncSession) -> dict[str, int]:
    """How many profiles (live or erased: erased ones keep an anonymous history) each stage
    holds; merged-away profiles follow their survivor."""
    rows = await session.execute(
        select(Customer.stage, func.count())
        .where(Customer.status != "MERGED", Customer.stage.is_not(None))
        .group_by(Customer.stage)
    )
    return {stage: count for stage, count in rows if stage is not None}


def _check_mapping(
    model: LifecycleModelRecord,
    mapping: dict[str, str],
    held: dict[str, int],
    current: LifecycleModelRecord,
) -> list[DomainError]:
    keys = {stage.key for stage in model.stages}
    known = {stage.key for stage in current.stages} | set(held)
    errors: list[DomainError] = []
    for old, new in mapping.items():
        if not isinstance(new, str) or new not in keys:
            message = f"the new model has no stage {new!r}"
            errors.append(_error(message, ("stageMapping", old), "UNKNOWN_STAGE"))
        if old not in known:
            message = f"there is no stage {old!r} to map"
            errors.append(_error(message, ("stageMapping", old), "UNKNOWN_STAGE"))
    for stage, count in sorted(held.items()):
        if stage not in keys and stage not in mapping:
            errors.append(
                _error(
                    f"{count} customers are in {stage}, which the new model drops: "
                    "map it to one of the new model's stages",
                    ("stageMapping", stage),
                    "STAGE_MAPPING_REQUIRED",
                )
            )
    return errors
