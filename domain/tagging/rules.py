"""RULE tags: a tag whose condition says who holds it, kept in step with the data in SQL.

A RULE tag is held (as a FLAG, without expiry) by exactly the live profiles its condition
matches. Evaluating it is set-based, whatever the population: one INSERT ... SELECT adds the
profiles that match and do not hold it, one DELETE ... WHERE removes the holders that stopped
matching, each with its history rows (ASSIGNED / REMOVED, source `rule`) and tag.assigned /
tag.removed events written by INSERT ... SELECT beside it (domain.tagging.records). The condition
is compiled by domain.conditions.sql, the SQL of segments and lifecycle rules.

Three paths run the same evaluation, each called by domain.cascade (the component that runs
what follows a write):
- `reevaluate_for_customers`: every RULE tag, only for the profiles writes touched, in the
  derived-state worker's batch (`follow_write`, domain.derived) or in the transaction of an
  erasure or a move by hand;
- `after_definition`: a tag just defined or given a new condition, over everyone, with the
  RULE tags that depend on it, in the defining transaction (`follow_rule_definition`);
- `reevaluate_one` over `evaluation_order`: every RULE tag over everyone, a transaction per
  tag (`reevaluate_rule_tags`: `c360 sweep-tags` and the periodic task of `serve`):
  conditions that time alone makes true ("no order in 90 days") need it.
Tags are evaluated after the RULE tags their conditions read (directly or through segments).
After the full paths, the cascade runs the lifecycle rules and materialized segments for the
profiles whose RULE tags moved. Archived RULE tags are no longer evaluated: their holders keep
them as they were. A tag whose stored condition no longer validates is skipped and logged,
never allowed to fail the write that triggered it.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    Select,
    and_,
    case,
    false,
    func,
    insert,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

import domain.tagging.records as tag_records
from domain.conditions.catalog import referenced_tags
from domain.conditions.language import (
    Catalog,
    SegmentSpec,
    load_catalog,
    parse,
    referenced_segments,
)
from domain.conditions.sql import CustomerFilter, compile_with
from domain.errors import InvalidInput
from store.db import Database
from store.locking import hold_rule_tags
from store.models import Customer, CustomerMetrics, TagAssignment, TagDefinition
from store.tuning import no_nested_loops
from store.types import UTCDateTime

__all__ = [
    "RULE_SOURCE",
    "SWEEP_ACTOR",
    "RuleResult",
    "after_definition",
    "check_condition",
    "check_segment_condition",
    "evaluation_order",
    "reevaluate_for_customers",
    "reevaluate_one",
]

RULE_SOURCE = "rule"
SWEEP_ACTOR = "tag-sweep"


def rule_actor(key: str) -> str:
    """Who assigned or removed a RULE tag: the rule itself, not the write that ran it."""
    return f"rule:{key}"


Scope = Collection[uuid.UUID] | Select[Any]
log = logging.getLogger("c360.tags")


@dataclass(frozen=True, slots=True)
class RuleTag:
    id: uuid.UUID
    key: str
    condition: Any


@dataclass(frozen=True, slots=True)
class RuleResult:
    tag_id: uuid.UUID
    key: str
    assigned: int
    removed: int


async def _rule_tags(session: AsyncSession) -> list[RuleTag]:
    rows = await session.execute(
        select(TagDefinition.id, TagDefinition.key, TagDefinition.condition)
        .where(TagDefinition.kind == "RULE", TagDefinition.archived.is_(False))
        .order_by(TagDefinition.key)
    )
    return [RuleTag(*row) for row in rows]


def _reads(condition: Any, catalog: Catalog) -> set[str]:
    """The tag keys a condition reads, directly or through the segments it names."""
    found: set[str] = set()
    seen: set[str] = set()
    stack = [condition]
    while stack:
        node = stack.pop()
        found |= referenced_tags(node)
        for key in referenced_segments(node) - seen:
            seen.add(key)
            if key in catalog.segments:
                stack.append(catalog.segments[key].condition)
    return found


def _in_order(rules: Sequence[RuleTag], catalog: Catalog) -> list[RuleTag]:
    """Each RULE tag after the RULE tags its condition reads (a cycle, which definitions
    refuse but a later segment edit could make, is broken where it is met)."""
    by_key = {rule.key: rule for rule in rules}
    order: list[RuleTag] = []
    done: set[str] = set()

    def visit(key: str, trail: frozenset[str]) -> None:
        if key in done or key in trail:
            return
        for read in sorted(_reads(by_key[key].condition, catalog) & by_key.keys()):
            visit(read, trail | {key})
        done.add(key)
        order.append(by_key[key])

    for key in sorted(by_key):
        visit(key, frozenset())
    return order


async def check_condition(
    session: AsyncSession, key: str, condition: Any, field: tuple[str, ...]
) -> None:
    """Refuse a RULE tag's condition as segments refuse theirs (the condition language's codes,
    with the path of the bad node under `field`), and TAG_CYCLE when it would read the tag
    itself, directly or through other RULE tags or segments."""
    await hold_rule_tags(session)
    catalog = await load_catalog(session)
    try:
        parse(condition, catalog)
    except InvalidInput as error:
        raise error.at(*field) from None
    conditions = {rule.key: rule.condition for rule in await _rule_tags(session)}
    conditions[key] = condition
    _refuse_cycle(conditions, catalog, key, field)


async def check_segment_condition(
    session: AsyncSession, segment: SegmentSpec, key: str, field: tuple[str, ...]
) -> None:
    """TAG_CYCLE when segment `key`, given `segment`'s condition, would make a RULE tag read
    itself through it (a tag reading the segment, the segment reading the tag)."""
    await hold_rule_tags(session)
    catalog = await load_catalog(session)
    catalog = dataclasses.replace(catalog, segments={**catalog.segments, key: segment})
    conditions = {rule.key: rule.condition for rule in await _rule_tags(session)}
    for tag in conditions:
        _refuse_cycle(conditions, catalog, tag, field)


def _refuse_cycle(
    conditions: dict[str, Any], catalog: Catalog, key: str, field: tuple[str, ...]
) -> None:
    seen, stack = set(), [key]
    while stack:
        for read in _reads(conditions[stack.pop()], catalog):
            if read == key:
                raise InvalidInput(
                    f"the condition of {key} reads {key} itself", field=field, code="TAG_CYCLE"
                )
            if read in conditions and read not in seen:
                seen.add(read)
                stack.append(read)


@dataclass(frozen=True, slots=True)
class _Compiled:
    rule: RuleTag
    matches: CustomerFilter


def _evaluated(level: Sequence[_Compiled], scope: Scope) -> CTE:
    """Every condition of the level, once per profile of the batch: a row per profile with its
    status and a column per RULE tag (`m<i>`: its condition, NULL counting as false),
    MATERIALIZED: the conditions read each profile (and its metrics) once, whatever the number
    of tags and of statements reading them."""
    columns: list[Any] = [Customer.id.label("customer_id"), Customer.status.label("status")]
    columns += [c.matches.predicate.label(f"m{i}") for i, c in enumerate(level)]
    evaluated = select(*columns).where(Customer.id.in_(scope))
    if any(c.matches.joins_metrics for c in level):
        evaluated = evaluated.outerjoin(CustomerMetrics, CustomerMetrics.customer_id == Customer.id)
    return evaluated.cte("evaluated").prefix_with("MATERIALIZED")


def _holds(level: Sequence[_Compiled], evaluated: CTE, tag: Any) -> ColumnElement[bool]:
    """The condition of the RULE tag whose id is `tag` (a column), read from `evaluated`."""
    if len(level) == 1:
        return evaluated.c.m0
    return case(*((tag == c.rule.id, evaluated.c[f"m{i}"]) for i, c in enumerate(level)))


async def _evaluate_batch(
    session: AsyncSession,
    level: Sequence[_Compiled],
    now: datetime,
    scope: Scope,
    written_after: int,
) -> list[RuleResult]:
    """Bring the holders of these RULE tags (none reads another) in step with their conditions,
    for the profiles of `scope`, in one set of statements whatever their number: an INSERT ...
    SELECT of the (profile, tag) pairs that match and are not held, then the holders that
    stopped matching removed, each with its history and events. `written_after`: the highest
    assignment id before this evaluation began. The rule is the actor of what it assigns and
    removes (`rule:<key>`), whichever write or sweep ran it."""
    ids = [c.rule.id for c in level]
    keys = {c.rule.id: c.rule.key for c in level}
    actors = {c.rule.id: rule_actor(c.rule.key) for c in level}

    def actor_of(tag: Any) -> ColumnElement[str]:
        return case(actors, value=tag)

    e = _evaluated(level, scope)
    held = select(TagAssignment.id).where(
        TagAssignment.customer_id == e.c.customer_id, TagAssignment.tag_id == TagDefinition.id
    )
    entering = (
        select(
            e.c.customer_id,
            TagDefinition.id,
            literal(RULE_SOURCE, TagAssignment.source.type),
            actor_of(TagDefinition.id),
            literal(now, UTCDateTime()),
        )
        .select_from(e)
        .join(TagDefinition, TagDefinition.id.in_(ids))
        .where(_holds(level, e, TagDefinition.id), ~held.exists())
    )
    added = Counter(
        (
            await session.scalars(
                insert(TagAssignment)
                .from_select(["customer_id", "tag_id", "source", "actor", "assigned_at"], entering)
                .returning(TagAssignment.tag_id)
            )
        ).all()
    )
    if added:
        # History and events read back the rows just written rather than evaluate the
        # conditions twice more.
        fresh = and_(
            TagAssignment.tag_id.in_(ids),
            TagAssignment.id > written_after,
            TagAssignment.assigned_at == now,
        )
        await tag_records.history(
            session, "ASSIGNED", fresh, None, RULE_SOURCE, actor_of(TagAssignment.tag_id), now
        )
        await session.execute(tag_records.events_by_tag(session, "tag.assigned", fresh, keys, now))
    # Holders that stopped matching (a profile no longer live keeps what it held: merges and
    # unmerges move those rows themselves), found from the evaluated profiles towards their
    # assignments: the evaluation is never the inner side of a join, which a planner that
    # underestimates a batch (its claim is new to the statistics) would scan per assignment.
    holder = aliased(TagAssignment, name="holder")
    stopped = (
        select(holder.id)
        .select_from(e)
        .join(holder, and_(holder.customer_id == e.c.customer_id, holder.tag_id.in_(ids)))
        .where(
            e.c.status == "ACTIVE",
            ~func.coalesce(_holds(level, e, holder.tag_id), false()),
        )
    )
    leaving = and_(TagAssignment.tag_id.in_(ids), TagAssignment.id.in_(stopped))
    removed = await tag_records.remove_by_tag(
        session, "REMOVED", leaving, keys, RULE_SOURCE, actor_of(TagAssignment.tag_id), now
    )
    return [RuleResult(c.rule.id, c.rule.key, added[c.rule.id], removed[c.rule.id]) for c in level]


async def _evaluate_everyone(
    session: AsyncSession,
    rule: RuleTag,
    matches: CustomerFilter,
    now: datetime,
    written_after: int,
) -> RuleResult:
    """Bring one RULE tag's holders in step with its condition, over everyone: each condition
    in statements of its own, so that the planner sees it whole (an index on what it reads
    may serve it; the full runs turn nested loops off). `written_after`: the highest
    assignment id before this evaluation began. The rule is the actor of what it assigns and
    removes (`rule:<key>`), whichever write or sweep ran it."""
    actor = rule_actor(rule.key)
    held = select(TagAssignment.id).where(
        TagAssignment.tag_id == rule.id, TagAssignment.customer_id == Customer.id
    )
    entering = matches.apply(
        select(
            Customer.id,
            literal(rule.id, TagAssignment.tag_id.type),
            literal(RULE_SOURCE, TagAssignment.source.type),
            literal(actor, TagAssignment.actor.type),
            literal(now, UTCDateTime()),
        ).where(~held.exists())
    )
    added = await session.execute(
        insert(TagAssignment).from_select(
            ["customer_id", "tag_id", "source", "actor", "assigned_at"], entering
        )
    )
    added_count = int(added.rowcount or 0)  # type: ignore[attr-defined]
    if added_count:
        # History and events read back the rows just written rather than evaluate the
        # condition twice more.
        fresh = and_(
            TagAssignment.tag_id == rule.id,
            TagAssignment.id > written_after,
            TagAssignment.assigned_at == now,
        )
        await tag_records.history(session, "ASSIGNED", fresh, None, RULE_SOURCE, actor, now)
        await session.execute(
            tag_records.events(
                session,
                "tag.assigned",
                select(TagAssignment.customer_id).where(fresh),
                rule.key,
                None,
                now,
            )
        )
    # Holders that stopped matching (a profile no longer live keeps what it held: merges and
    # unmerges move those rows themselves).
    still = select(Customer.id).where(
        Customer.id == TagAssignment.customer_id,
        or_(Customer.status != "ACTIVE", matches.predicate),
    )
    if matches.joins_metrics:
        still = still.outerjoin(CustomerMetrics, CustomerMetrics.customer_id == Customer.id)
    leaving = and_(TagAssignment.tag_id == rule.id, ~still.exists())
    removed = await tag_records.remove(
        session, "REMOVED", leaving, rule.key, RULE_SOURCE, actor, now
    )
    return RuleResult(rule.id, rule.key, added_count, removed)


def _compiled(catalog: Catalog, rule: RuleTag, now: datetime) -> CustomerFilter | None:
    try:
        return compile_with(catalog, rule.condition, now)
    except InvalidInput as error:
        log.warning("RULE tag %s not evaluated: %s", rule.key, error.message)
        return None


def _levels(rules: Sequence[RuleTag], catalog: Catalog, now: datetime) -> list[list[_Compiled]]:
    """The RULE tags grouped for a batch: a tag's group comes after the groups of the RULE
    tags it reads, so a group's tags can be evaluated together; the groups are as few as the
    dependencies allow (none: one group), which bounds a batch's statements."""
    ordered = _in_order(rules, catalog)
    keys = {rule.key for rule in ordered}
    depth: dict[str, int] = {}
    levels: list[list[_Compiled]] = []
    for rule in ordered:
        reads = _reads(rule.condition, catalog) & keys
        depth[rule.key] = 1 + max((depth.get(k, -1) for k in reads), default=-1)
        matches = _compiled(catalog, rule, now)
        if matches is None:
            continue
        while len(levels) <= depth[rule.key]:
            levels.append([])
        levels[depth[rule.key]].append(_Compiled(rule, matches))
    return [level for level in levels if level]


async def _evaluate_in_order(
    session: AsyncSession,
    rules: Sequence[RuleTag],
    catalog: Catalog,
    now: datetime,
    scope: Scope | None,
) -> list[RuleResult]:
    highest = select(func.coalesce(func.max(TagAssignment.id), 0))
    written_after = int(await session.scalar(highest) or 0)
    results = []
    if scope is None:  # over everyone: a tag at a time, in dependency order
        await no_nested_loops(session)
        for rule in _in_order(rules, catalog):
            matches = _compiled(catalog, rule, now)
            if matches is not None:
                results.append(await _evaluate_everyone(session, rule, matches, now, written_after))
        return results
    for level in _levels(rules, catalog, now):  # a batch: the tags of a level together
        results.extend(await _evaluate_batch(session, level, now, scope, written_after))
    return results


async def reevaluate_for_customers(
    session: AsyncSession, customers: Scope, now: datetime
) -> list[RuleResult]:
    """Every RULE tag for these profiles only (ids, or a select of ids that reads no
    customers row, such as tag_records.touched), inside the caller's write transaction."""
    if not isinstance(customers, Select) and not customers:
        return []
    rules = await _rule_tags(session)
    if not rules:
        return []  # the common case, answered with one cheap statement
    catalog = await load_catalog(session)
    return await _evaluate_in_order(session, rules, catalog, now, customers)


async def after_definition(session: AsyncSession, key: str, now: datetime) -> list[RuleResult]:
    """Evaluate RULE tag `key` (just defined, or given a new condition) over everyone, then the
    RULE tags that read it (domain.cascade.follow_rule_definition runs what follows)."""
    rules = await _rule_tags(session)
    catalog = await load_catalog(session)
    affected = {key}
    for rule in _in_order(rules, catalog):
        if _reads(rule.condition, catalog) & affected:
            affected.add(rule.key)
    chosen = [rule for rule in rules if rule.key in affected]
    return await _evaluate_in_order(session, chosen, catalog, now, None)


async def evaluation_order(db: Database) -> list[str]:
    """The keys of the live RULE tags, each after the RULE tags its condition reads."""
    async with db.read() as session:
        rules, catalog = await _rule_tags(session), await load_catalog(session)
    return [rule.key for rule in _in_order(rules, catalog)]


async def reevaluate_one(session: AsyncSession, key: str, now: datetime) -> list[RuleResult]:
    """RULE tag `key` over every profile, in the caller's transaction (domain.cascade's full
    re-evaluation runs one per transaction, with what follows)."""
    rules = [rule for rule in await _rule_tags(session) if rule.key == key]
    catalog = await load_catalog(session)
    return await _evaluate_in_order(session, rules, catalog, now, None)
