"""What follows a write to customers' data: the one component that keeps derived state in step.

Three things are derived from a profile's data by rules: RULE tags (domain.tagging.rules),
the lifecycle stage (domain.lifecycle.rules) and the members of materialized segments
(domain.segments.refresh).
They run in that order: RULE tags read the raw data, lifecycle rules and segments may read
tags, and segments may read the stage. A RULE tag reading a stage or a materialized segment
sees it as it was before this write; the periodic full runs (`c360 sweep-tags`, `sweep`,
`refresh-segments`) settle such chains. Metrics are not rules but sums over orders and events:
whoever adds or moves those rows rebuilds them before calling this (ingest, a merge, an
unmerge), so the cascade reads current figures.

The writes of customers' data do not call this module: they mark the profiles they touched
dirty, and the derived-state worker calls `follow_write` for a batch of them, after rebuilding
their metrics, in a transaction of its own (domain.derived, which states the consistency
contract): identify / identifyBatch (domain.identity.linking, merges included), trackEvents /
recordOrders (domain.activity.ingest), updateCustomer (domain.identity.editing), tag and untag
by hand or by segment (domain.tagging.bulk), mergeCustomers and unmerge
(domain.identity.merging: both profiles).

The rest call one entry of this module once, at the end of their work and inside their own
transaction, with the profiles they touched (a list of ids, or a select of ids that reads no
customers row, such as domain.tagging.records.touched):
- `follow_write`: the worker (domain.derived.batches), the tags' expiry sweep
  (domain.tagging.bulk), and erasure (domain.access.erasure), which must leave no erased
  profile in a segment for a moment;
- `follow_stage_move`: setStage (domain.lifecycle.by_hand): RULE tags and materialized segments
  that read the stage, but not the lifecycle rules, which would override the move by hand in
  the same breath (the sweep applies them later, as to any profile);
- `follow_rule_definition`: a RULE tag defined or given a new condition (domain.tags): the tag
  and the RULE tags reading it over everyone, then stages and segments of whoever moved;
- `reevaluate_rule_tags`: the full re-evaluation of every RULE tag (`c360 sweep-tags`, the
  periodic task), a transaction per tag, each with what follows for whoever moved.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

import domain.tagging.records as tag_records
import domain.tagging.rules as rule_tags
from domain.lifecycle.rules import apply_rules
from domain.segments.refresh import refresh_for_customers
from store.db import Database
from store.types import utcnow

__all__ = [
    "follow_rule_definition",
    "follow_stage_move",
    "follow_write",
    "reevaluate_rule_tags",
]


async def follow_write(
    session: AsyncSession,
    customers: Collection[uuid.UUID] | Select[Any],
    now: datetime,
    actor: str | None,
) -> None:
    """RULE tags, then lifecycle rules, then materialized segments, for these profiles."""
    await rule_tags.reevaluate_for_customers(session, customers, now)
    await apply_rules(session, customers, now, actor)
    await refresh_for_customers(session, customers, now)


async def follow_stage_move(
    session: AsyncSession, customers: Collection[uuid.UUID], now: datetime
) -> None:
    """RULE tags, then materialized segments, for profiles a person moved to another stage."""
    await rule_tags.reevaluate_for_customers(session, customers, now)
    await refresh_for_customers(session, customers, now)


async def _follow_rule_tags(
    session: AsyncSession,
    results: Sequence[rule_tags.RuleResult],
    now: datetime,
    actor: str | None,
) -> None:
    """Stages and materialized segments, for the profiles whose RULE tags just moved."""
    moved = [r.tag_id for r in results if r.assigned or r.removed]
    if moved:
        scope = tag_records.touched(moved, now)
        await apply_rules(session, scope, now, actor)
        await refresh_for_customers(session, scope, now)


async def follow_rule_definition(
    session: AsyncSession, key: str, now: datetime, actor: str | None
) -> list[rule_tags.RuleResult]:
    """RULE tag `key` (just defined, or given a new condition) over everyone, then the RULE
    tags that read it, then what follows for the profiles that moved."""
    results = await rule_tags.after_definition(session, key, now)
    await _follow_rule_tags(session, results, now, actor)
    return results


async def reevaluate_rule_tags(
    db: Database,
    now: datetime | None = None,
    actor: str = rule_tags.SWEEP_ACTOR,
    progress: Callable[[int, int | None], None] | None = None,
) -> list[rule_tags.RuleResult]:
    """Every RULE tag over every profile, each in its own transaction with the lifecycle rules
    and materialized segments of the profiles it moved; `progress(tags done, tags)` after each."""
    now = now or utcnow()
    results = []
    order = await rule_tags.evaluation_order(db)
    for done, key in enumerate(order, 1):

        async def work(session: AsyncSession, key: str = key) -> list[rule_tags.RuleResult]:
            done = await rule_tags.reevaluate_one(session, key, now)
            await _follow_rule_tags(session, done, now, actor)
            return done

        results.extend(await db.transact(work))
        if progress is not None:
            progress(done, len(order))
    return results
