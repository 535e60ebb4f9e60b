"""Automatic stage transitions: the model's rules, evaluated in SQL, after writes and in a sweep.

`apply_rules` runs in the transaction of a write (identify, events, orders, profile edits, tags:
see domain.cascade) for the profiles it touched; `sweep` runs every rule over all live
profiles in batches: for the rules that time alone makes true ("no activity in 180 days"), and
for inputs that change without a write (RFM scores, tag expiry, a merge).

How a run decides, in passes until nothing moves:
- A profile without a stage enters the model's entry stage (a new profile: "first identify").
- Otherwise the first rule by priority whose target is reachable (an edge leads there from
  the profile's stage) and whose condition holds moves it. Conditions are compiled by
  `domain.conditions.sql` (the SQL of segments; no Python-side evaluator) into one CASE, so a
  pass is one INSERT ... SELECT over the candidates, written set-based by `domain.lifecycle.moves`
  with rule_key, reason and actor. The next pass starts from the new stages, so three orders
  in one batch take a new profile awareness -> purchase -> loyalty at once.
- No rule fires twice for the same data. A rule never moves a profile into the stage it is
  in, and a rule that already moved this profile does not fire for it again until the
  profile's data changes after that transition: a later `last_seen_at` (any identify, event or
  order) or tag history. So a rule does not undo a person's move on the data it already acted
  on, and no two rules can bounce a profile between them. Transitions a merge brought do not
  count: they fired on the other profile's data.
A rule whose condition no longer validates (a tag or segment it names was removed) is skipped
and logged, never allowed to fail the write that triggered it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import ColumnElement, Select, String, and_, case, exists, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.conditions.catalog import events_rolled_up, leaves
from domain.conditions.language import Catalog, load_catalog, parse
from domain.conditions.sql import CustomerFilter, to_sql
from domain.errors import InvalidInput
from domain.lifecycle.model import LifecycleModelRecord, RuleRecord, load_model
from domain.lifecycle.moves import write_moves
from store.db import Database
from store.locking import hold_lifecycle_model
from store.models import Customer, CustomerMetrics, StageTransition, TagHistory
from store.tuning import tune_for_bulk
from store.types import utcnow

log = logging.getLogger("c360.lifecycle")

SWEEP_ACTOR = "lifecycle-sweep"
# Profiles per sweep transaction. Larger batches amortize the scans PostgreSQL chooses for the
# rules' subqueries (1M profiles: 10k -> 277 s, 50k -> 137 s, 100k -> 91 s); a batch holds the
# row locks of the profiles it moves until it commits (writes to them wait that long).
SWEEP_BATCH_SIZE = 50_000
CATALOG_LEAVES = frozenset({"tag", "segment", "identity"})  # leaves that need the catalog


@dataclass(frozen=True, slots=True)
class _Rule:
    record: RuleRecord
    sources: tuple[str, ...]
    filter: CustomerFilter


async def apply_rules(
    session: AsyncSession,
    customer_ids: Collection[uuid.UUID] | Select[Any],
    now: datetime,
    actor: str | None,
) -> int:
    """Run the model's rules for these profiles (ids, or a select of ids that reads no
    customers row) inside the caller's transaction (which holds their row locks); returns how
    many transitions were written."""
    if not isinstance(customer_ids, Select) and not customer_ids:
        return 0
    await hold_lifecycle_model(session, exclusive=False)
    model = await load_model(session)
    rules = await _compiled_rules(session, model, now)
    return await _run(session, model, rules, Customer.id.in_(customer_ids), now, actor)


@dataclass(frozen=True, slots=True)
class SweepResult:
    customers: int
    transitions: int


async def sweep(
    db: Database,
    now: datetime | None = None,
    *,
    batch_size: int = SWEEP_BATCH_SIZE,
    actor: str = SWEEP_ACTOR,
    progress: Callable[[int, int | None], None] | None = None,
) -> SweepResult:
    """Every rule over every live profile, one transaction per batch of profiles in id order.
    A profile another transaction is writing is passed over (that write runs the rules).
    `progress(customers swept, None)` hears of each batch."""
    now = now or utcnow()
    after: uuid.UUID | None = None
    customers = transitions = 0
    while True:
        work = partial(_sweep_batch, after=after, size=batch_size, now=now, actor=actor)
        outcome = await db.transact(work)
        if outcome is None:
            return SweepResult(customers, transitions)
        after, seen, moved = outcome
        customers, transitions = customers + seen, transitions + moved
        if progress is not None:
            progress(customers, None)


async def _sweep_batch(
    session: AsyncSession, *, after: uuid.UUID | None, size: int, now: datetime, actor: str
) -> tuple[uuid.UUID, int, int] | None:
    """The next `size` live profiles after `after`: (the last id, how many, transitions
    written), or None past the end."""
    await hold_lifecycle_model(session, exclusive=False)
    await tune_for_bulk(session)
    batch = select(Customer.id).where(Customer.status == "ACTIVE").order_by(Customer.id)
    if after is not None:
        batch = batch.where(Customer.id > after)
    ids = (await session.scalars(batch.limit(size))).all()
    if not ids:
        return None
    count, last = len(ids), ids[-1]
    model = await load_model(session)
    rules = await _compiled_rules(session, model, now)
    scope = Customer.id <= last
    if after is not None:
        scope = and_(Customer.id > after, scope)
    return last, count, await _run(session, model, rules, scope, now, actor)


async def _run(
    session: AsyncSession,
    model: LifecycleModelRecord,
    rules: Sequence[_Rule],
    scope: ColumnElement[bool],
    now: datetime,
    actor: str | None,
) -> int:
    """Passes of entry + rules over the profiles in `scope` until a pass moves nobody; after
    the first, only the profiles this run moved (entered their stage `now`) can move again."""
    plan, total = _Plan.of(model, rules), 0
    for _ in range(len(rules) + 2):  # a rule fires once per profile and run: passes are bounded
        written = await write_moves(session, plan.moves(scope), now=now, actor=actor)
        if not written:
            break
        total += written
        scope = and_(scope, Customer.stage_entered_at == now)
    return total


@dataclass(frozen=True, slots=True)
class _Plan:
    """The choice of a pass: for a live profile, the entry stage if it has none, else the
    first rule (by priority) that selects it; built once per run, applied to a scope per pass.

    The choice is one CASE, computed once per profile in a materialized CTE. The profiles that
    move are locked there (PostgreSQL: FOR UPDATE OF customers SKIP LOCKED; SQLAlchemy leaves it
    out on SQLite, whose write transaction excludes other writers): one another transaction
    holds is skipped, as that transaction's own write runs the rules for it."""

    pick: ColumnElement[Any]
    joins_metrics: bool
    targets: dict[int, str]
    reasons: dict[int, str]
    keys: dict[int, str]

    @classmethod
    def of(cls, model: LifecycleModelRecord, rules: Sequence[_Rule]) -> _Plan:
        branches: list[tuple[ColumnElement[bool], int]] = [(Customer.stage.is_(None), -1)]
        for index, rule in enumerate(rules):
            fired = _fired_on_same_data(rule.record.key)
            selects = and_(Customer.stage.in_(rule.sources), rule.filter.predicate, ~fired)
            branches.append((selects, index))
        return cls(
            pick=case(*branches, else_=None),
            joins_metrics=any(rule.filter.joins_metrics for rule in rules),
            targets={-1: model.entry} | {i: r.record.to_stage for i, r in enumerate(rules)},
            reasons={-1: "new profile"} | {i: f"rule {r.record.key}" for i, r in enumerate(rules)},
            keys={i: rule.record.key for i, rule in enumerate(rules)},
        )

    def moves(self, scope: ColumnElement[bool]) -> Select[Any]:
        """The pass over `scope`, as the SELECT `write_moves` takes."""
        picked = select(Customer.id, Customer.stage, self.pick.label("pick")).where(
            scope, Customer.status == "ACTIVE", self.pick.is_not(None)
        )
        if self.joins_metrics:
            picked = picked.outerjoin(CustomerMetrics, CustomerMetrics.customer_id == Customer.id)
        locked = picked.with_for_update(skip_locked=True, of=Customer)
        p = locked.cte("picked").prefix_with("MATERIALIZED").c
        return select(
            p.id,
            p.stage,
            case(self.targets, value=p.pick),
            case(self.reasons, value=p.pick),
            case(self.keys, value=p.pick, else_=None) if self.keys else literal(None, String()),
        )


def _fired_on_same_data(rule_key: str) -> ColumnElement[bool]:
    """This rule already moved the profile, and its data has not changed since."""
    t = StageTransition
    changed_tags = exists(
        select(TagHistory.id).where(TagHistory.customer_id == t.customer_id, TagHistory.at > t.at)
    )
    return exists(
        select(t.id).where(
            t.customer_id == Customer.id,
            t.rule_key == rule_key,
            t.merge_id.is_(None),
            t.at >= func.coalesce(Customer.last_seen_at, Customer.created_at),
            ~changed_tags,
        )
    )


async def _compiled_rules(
    session: AsyncSession, model: LifecycleModelRecord, now: datetime
) -> list[_Rule]:
    """The model's rules that can fire (an edge leads to their target), compiled at `now`."""
    catalog = await rules_catalog(session, model)
    compiled = []
    for rule in model.rules:
        sources = model.sources(rule.to_stage)
        if not sources:
            continue
        try:
            node = parse(rule.condition, catalog)
        except InvalidInput as error:
            log.warning("lifecycle rule %s skipped: %s (%s)", rule.key, error.message, error.field)
            continue
        compiled.append(_Rule(rule, sources, to_sql(node, now)))
    return compiled


async def rules_catalog(session: AsyncSession, model: LifecycleModelRecord) -> Catalog:
    """What the rules' conditions may name. Only tags, segments and identity types need the
    stored catalog; stage keys come from `model` (which may be about to replace the stored
    one), so rules of the default presets cost no catalog queries."""
    stages = frozenset(stage.key for stage in model.stages)
    found = [leaf for rule in model.rules for leaf in leaves(rule.condition)]
    if not any(kind in CATALOG_LEAVES for kind, _ in found):
        # An all-time event count adds retired months' rollups, if there are any.
        all_time = any(kind == "event" and "withinDays" not in leaf for kind, leaf in found)
        return Catalog(stages=stages, events_rolled_up=all_time and await events_rolled_up(session))
    return replace(await load_catalog(session), stages=stages)
