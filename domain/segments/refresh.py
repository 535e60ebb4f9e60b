"""Materialized segments: their stored members, kept in step with their conditions.

Members are recomputed in SQL (INSERT ... SELECT for who entered, DELETE ... RETURNING for who
left), never by loading the population. Every entry and exit is recorded in
segment_membership_history and emitted as a `segment.entered` / `segment.exited` change event in
the same transaction. Three paths run the same refresh:
- `refresh_segment`: one segment, whole population (the refreshSegment mutation);
- `refresh_all`: every materialized segment (`c360 refresh-segments`, the periodic job);
- `refresh_for_customers`: every materialized segment, only the customers writes touched,
  called in the derived-state worker's batch (domain.derived) or inside an erasure's or a
  move by hand's transaction.
Segments that refer to other materialized segments are refreshed after them. Incremental
refreshes never update the segment's own row (no hot row for concurrent writes): its
member_count and last_refreshed_at are those of the last full refresh, and the live count is
read from the stored members.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    delete,
    false,
    func,
    insert,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from domain.changes import Change, record_changes
from domain.conditions.language import Catalog, load_catalog, referenced_segments
from domain.conditions.sql import CustomerFilter, compile_with
from domain.errors import InvalidInput, NotFound
from store.db import Database
from store.models import (
    Customer,
    CustomerMetrics,
    Segment,
    SegmentMembership,
    SegmentMembershipHistory,
)
from store.types import UTCDateTime, utcnow

log = logging.getLogger("c360.segments")


@dataclass(frozen=True, slots=True)
class RefreshResult:
    segment_id: uuid.UUID
    entered: int
    exited: int


def refresh_order(catalog: Catalog) -> list[str]:
    """The keys of the materialized segments, each after the materialized segments it reads
    (directly or through dynamic segments it inlines)."""
    order: list[str] = []
    done: set[str] = set()

    def visit(key: str, trail: frozenset[str]) -> None:
        if key in done or key in trail or key not in catalog.segments:
            return
        for ref in sorted(referenced_segments(catalog.segments[key].condition)):
            visit(ref, trail | {key})
        done.add(key)
        if catalog.segments[key].materialized:
            order.append(key)

    for key in sorted(catalog.segments):
        visit(key, frozenset())
    return order


async def refresh_members(
    session: AsyncSession,
    catalog: Catalog,
    key: str,
    now: datetime,
    customer_ids: Sequence[uuid.UUID] | Select[Any] | None = None,
) -> RefreshResult:
    """Bring one materialized segment's members in step with its condition, for everyone or
    for `customer_ids` only, recording who entered and who left."""
    spec = catalog.segments[key]
    matches = compile_with(catalog, spec.condition, now)
    entering = select(Customer.id, literal(spec.id), literal(now, UTCDateTime())).where(
        ~select(SegmentMembership.customer_id)
        .where(
            SegmentMembership.segment_id == spec.id,
            SegmentMembership.customer_id == Customer.id,
        )
        .exists()
    )
    still_in = select(Customer.id).where(Customer.id == SegmentMembership.customer_id)
    leaving = delete(SegmentMembership).where(
        SegmentMembership.segment_id == spec.id, ~matches.apply(still_in).exists()
    )
    if customer_ids is not None:
        entering = entering.where(Customer.id.in_(customer_ids))
        leaving = leaving.where(SegmentMembership.customer_id.in_(customer_ids))
    entered = (
        await session.scalars(
            insert(SegmentMembership)
            .from_select(["customer_id", "segment_id", "entered_at"], matches.apply(entering))
            .returning(SegmentMembership.customer_id)
        )
    ).all()
    exited = (await session.scalars(leaving.returning(SegmentMembership.customer_id))).all()
    await _record(
        session,
        {spec.id: key},
        now,
        [(spec.id, c) for c in entered],
        [(spec.id, c) for c in exited],
    )
    if customer_ids is None:
        # Incremental refreshes leave the segment row alone: writes on different customers
        # must not queue on it. The stored count is the snapshot of the last full refresh.
        counted = select(func.count()).where(SegmentMembership.segment_id == spec.id)
        await session.execute(
            update(Segment)
            .where(Segment.id == spec.id)
            .values(member_count=counted.scalar_subquery(), last_refreshed_at=now)
        )
    return RefreshResult(spec.id, len(entered), len(exited))


async def _record(
    session: AsyncSession,
    keys: Mapping[uuid.UUID, str],
    now: datetime,
    entered: Sequence[tuple[uuid.UUID, uuid.UUID]],
    exited: Sequence[tuple[uuid.UUID, uuid.UUID]],
) -> None:
    """History rows and change events of who entered and who left ((segment id, customer id)
    pairs; `keys`: segment id -> key)."""
    moves = [("ENTERED", *pair) for pair in entered] + [("EXITED", *pair) for pair in exited]
    if not moves:
        return
    await session.execute(
        insert(SegmentMembershipHistory),
        [{"segment_id": s, "customer_id": c, "action": a, "at": now} for a, s, c in moves],
    )
    await record_changes(
        session,
        (
            Change(
                f"segment.{action.lower()}",
                customer_id,
                {
                    "customerId": str(customer_id),
                    "segmentId": str(segment_id),
                    "segmentKey": keys[segment_id],
                },
                now,
            )
            for action, segment_id, customer_id in moves
        ),
    )


async def refresh_segment(
    db: Database, segment_id: uuid.UUID, now: datetime | None = None
) -> RefreshResult:
    """Recompute one materialized segment over the whole population (a dynamic segment has
    nothing stored: nothing to do)."""
    now = now or utcnow()

    async def work(session: AsyncSession) -> RefreshResult:
        key = await session.scalar(
            select(Segment.key).where(Segment.id == segment_id).with_for_update()
        )
        if key is None:
            raise NotFound("no such segment", field=["id"])
        catalog = await load_catalog(session)
        if not catalog.segments[key].materialized:
            return RefreshResult(segment_id, 0, 0)
        return await refresh_members(session, catalog, key, now)

    return await db.transact(work)


async def refresh_all(
    db: Database,
    now: datetime | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> list[RefreshResult]:
    """Every materialized segment, dependencies first, each in its own transaction; a segment
    whose condition no longer validates is skipped and logged, not fatal to the others.
    `progress(segments done, segments)` after each."""
    now = now or utcnow()
    async with db.read() as session:
        order = refresh_order(await load_catalog(session))
    results = []
    for done, key in enumerate(order, 1):

        async def work(session: AsyncSession, key: str = key) -> RefreshResult:
            return await refresh_members(session, await load_catalog(session), key, now)

        try:
            results.append(await db.transact(work))
        except InvalidInput as error:
            log.warning("segment %s not refreshed: %s", key, error.message)
        if progress is not None:
            progress(done, len(order))
    return results


async def refresh_for_customers(
    session: AsyncSession,
    customer_ids: Collection[uuid.UUID] | Select[Any],
    now: datetime | None = None,
) -> list[RefreshResult]:
    """Re-evaluate every materialized segment for these customers only (ids, or a select of
    ids that reads no customers row), inside the caller's write transaction: call it at the
    end of a write that changed what conditions read (profile fields, tags, stage,
    identities, events, orders, metrics, merges). The segments are refreshed together, a
    level at a time (`_levels`): two statements per level, whatever the number of segments."""
    if not isinstance(customer_ids, Select) and not customer_ids:
        return []
    materialized = select(Segment.id).where(Segment.materialized.is_(True)).limit(1)
    if await session.scalar(materialized) is None:
        return []  # the common case, answered with one cheap statement
    now = now or utcnow()
    ids = customer_ids if isinstance(customer_ids, Select) else list(dict.fromkeys(customer_ids))
    results = []
    for level in _levels(await load_catalog(session), now):
        results.extend(await _refresh_level(session, level, now, ids))
    return results


@dataclass(frozen=True, slots=True)
class _Compiled:
    key: str
    id: uuid.UUID
    matches: CustomerFilter


def _levels(catalog: Catalog, now: datetime) -> list[list[_Compiled]]:
    """The materialized segments in refresh order, grouped: a segment's group comes after the
    groups of the materialized segments it reads (directly or through dynamic segments), so
    a group's segments can be refreshed together. A segment whose condition no longer
    validates is skipped and logged."""
    depth: dict[str, int] = {}
    levels: list[list[_Compiled]] = []
    for key in refresh_order(catalog):
        spec = catalog.segments[key]
        try:
            matches = compile_with(catalog, spec.condition, now)
        except InvalidInput as error:
            log.warning("segment %s not refreshed: %s", key, error.message)
            continue
        reads = _materialized_reads(catalog, key)
        depth[key] = 1 + max((depth.get(read, -1) for read in reads), default=-1)
        while len(levels) <= depth[key]:
            levels.append([])
        levels[depth[key]].append(_Compiled(key, spec.id, matches))
    return levels


def _materialized_reads(catalog: Catalog, key: str) -> set[str]:
    """The materialized segments segment `key`'s condition reads, through dynamic ones."""
    found: set[str] = set()
    seen: set[str] = set()
    stack = [key]
    while stack:
        for ref in referenced_segments(catalog.segments[stack.pop()].condition) - seen:
            seen.add(ref)
            if ref not in catalog.segments:
                continue
            if catalog.segments[ref].materialized:
                found.add(ref)
            else:
                stack.append(ref)
    return found


async def _refresh_level(
    session: AsyncSession,
    level: Sequence[_Compiled],
    now: datetime,
    customer_ids: Sequence[uuid.UUID] | Select[Any],
) -> list[RefreshResult]:
    """The members of these segments (none reads another) among `customer_ids`: every
    condition evaluated once per customer (a MATERIALIZED CTE with a column per segment),
    then one INSERT ... SELECT of the (customer, segment) pairs that entered and one DELETE
    of those that left. Both start from the evaluated customers, never scanning the
    evaluation per membership (a planner underestimates a batch: its claim is new to the
    statistics)."""
    columns: list[Any] = [Customer.id.label("customer_id")]
    columns += [c.matches.predicate.label(f"m{i}") for i, c in enumerate(level)]
    evaluated = select(*columns).where(Customer.id.in_(customer_ids))
    if any(c.matches.joins_metrics for c in level):
        evaluated = evaluated.outerjoin(CustomerMetrics, CustomerMetrics.customer_id == Customer.id)
    e = evaluated.cte("evaluated").prefix_with("MATERIALIZED")
    ids = [c.id for c in level]

    def holds(segment: Any) -> ColumnElement[bool]:
        if len(level) == 1:
            return e.c.m0
        return case(*((segment == c.id, e.c[f"m{i}"]) for i, c in enumerate(level)))

    member = select(SegmentMembership.customer_id).where(
        SegmentMembership.segment_id == Segment.id,
        SegmentMembership.customer_id == e.c.customer_id,
    )
    entering = (
        select(e.c.customer_id, Segment.id, literal(now, UTCDateTime()))
        .select_from(e)
        .join(Segment, Segment.id.in_(ids))
        .where(holds(Segment.id), ~member.exists())
    )
    moved = (SegmentMembership.segment_id, SegmentMembership.customer_id)
    entered = (
        await session.execute(
            insert(SegmentMembership)
            .from_select(["customer_id", "segment_id", "entered_at"], entering)
            .returning(*moved)
        )
    ).all()
    held = aliased(SegmentMembership, name="held")
    stopped = (
        select(held.segment_id, held.customer_id)
        .select_from(e)
        .join(held, and_(held.customer_id == e.c.customer_id, held.segment_id.in_(ids)))
        .where(~func.coalesce(holds(held.segment_id), false()))
    )
    exited = (
        await session.execute(
            delete(SegmentMembership).where(tuple_(*moved).in_(stopped)).returning(*moved)
        )
    ).all()
    pairs = [(s, c) for s, c in entered], [(s, c) for s, c in exited]
    await _record(session, {c.id: c.key for c in level}, now, *pairs)
    entered_by, exited_by = Counter(s for s, _ in entered), Counter(s for s, _ in exited)
    return [RefreshResult(c.id, entered_by[c.id], exited_by[c.id]) for c in level]
