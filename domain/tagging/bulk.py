"""Assigning and removing tags, in bulk, in SQL, with history and change events.

Every verb works on a set of target profiles (an explicit list, or a segment's members) with a
fixed number of set-based statements, whatever the size of the set: assignments, history rows
and outbox events are written by INSERT ... SELECT, never row by row from Python. What depends
on tags follows in the same transaction, set-based too, for the profiles whose tags moved
(domain.cascade: RULE tags, lifecycle rules, materialized segments): through the derived-state
worker after a tag or an untag (domain.derived), in the same transaction after the expiry sweep.

An assignment of a tag a profile already carries replaces its value (history: CHANGED when the
value changes). An assignment past its `expires_at` stops counting at once everywhere; the
sweep (`sweep_expired`, run by `sweep` with the RULE tags' full re-evaluation: `c360
sweep-tags` and the periodic task of `serve`) removes it later and records EXPIRED.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

import domain.segments.definitions as segments
import domain.tagging.records as tag_records
from domain.cascade import follow_write, reevaluate_rule_tags
from domain.derived.batches import transact
from domain.derived.marks import mark
from domain.errors import InvalidInput, NotFound
from domain.profile import live_customers
from domain.tagging.rules import RuleResult
from domain.tags import DEFINITION_COLUMNS, TagDefinitionRecord, check_value
from domain.values import text_for
from store.db import Database
from store.models import Customer, TagAssignment, TagDefinition, TagHistory
from store.tuning import no_nested_loops
from store.types import UTCDateTime, utcnow

log = logging.getLogger("c360.tags")

MAX_LISTED = 10_000


@dataclass(frozen=True, slots=True)
class Assignment:
    value: str | None = None
    expires_at: datetime | None = None
    source: str | None = None
    confidence: float | None = None


async def _tag(session: AsyncSession, key: str, *, for_assignment: bool) -> TagDefinitionRecord:
    row = (
        await session.execute(select(*DEFINITION_COLUMNS).where(TagDefinition.key == key))
    ).first()
    if row is None:
        raise NotFound(f"no tag {key!r}", field=("tag",), code="UNKNOWN_TAG")
    tag = TagDefinitionRecord(*row)
    if for_assignment and tag.archived:
        raise InvalidInput(
            f"{key} is archived: it takes no new assignments", field=("tag",), code="TAG_ARCHIVED"
        )
    return tag


async def listed_targets(db: Database, customer_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """The live profiles an explicit list names (merged-away ids follow their merges); an id
    that names nobody refuses the whole call."""
    if len(customer_ids) > MAX_LISTED:
        raise InvalidInput(
            f"at most {MAX_LISTED} customers per call; use a segment",
            field=("customers",),
            code="TOO_MANY_CUSTOMERS",
        )
    live = await live_customers(db, customer_ids)
    for index, customer_id in enumerate(customer_ids):
        if customer_id not in live:
            raise NotFound("no such customer", field=("customers", index))
    return sorted({record.id for record in live.values()})


@dataclass(frozen=True, slots=True)
class InSegment:
    """The members of a segment at the time of the call, however many."""

    segment_id: uuid.UUID


Targets = Sequence[uuid.UUID] | InSegment


async def _targets_of(db: Database, targets: Targets, now: datetime) -> Select[Any]:
    """The live profiles to act on, as a select of their ids. A segment's members are what the
    segments module counts as its members: the stored ones of a materialized segment, the
    condition evaluated at `now` for a dynamic one."""
    if isinstance(targets, InSegment):
        members = await segments.customer_filter(db, None, targets.segment_id, now)
        assert members is not None
        return members.apply(select(Customer.id))
    return select(Customer.id).where(Customer.id.in_(targets), Customer.status == "ACTIVE")


async def _expire(
    session: AsyncSession, tag: TagDefinitionRecord, customers: Select[Any], now: datetime
) -> None:
    """Record and remove assignments past their expiry among `customers`."""
    expired = and_(
        TagAssignment.tag_id == tag.id,
        TagAssignment.customer_id.in_(customers),
        TagAssignment.expires_at <= now,
    )
    await tag_records.remove(session, "EXPIRED", expired, tag.key, None, "expiry", now)


async def assign(
    session: AsyncSession,
    tag: TagDefinitionRecord,
    targets: Select[Any],
    assignment: Assignment,
    actor: str | None,
    now: datetime,
) -> int:
    """Assign `tag` to every profile `targets` selects; returns how many.

    Expired rows go first (no condition counts them), then the events: a segment's condition
    may read this very tag, so who is targeted is read before any live assignment changes.
    The later statements stay exact regardless: updates
    touch only profiles already holding the tag, inserts only those not holding it, and no
    condition reads another profile's tags (nor tag history, nor the outbox)."""
    count = (
        await session.execute(select(func.count()).select_from(targets.subquery()))
    ).scalar_one()
    if not count:
        return 0
    # Expired rows first (their tag.removed before this tag.assigned): no condition counts an
    # expired assignment, so removing them cannot change who `targets` selects.
    await _expire(session, tag, targets, now)
    await session.execute(
        tag_records.events(session, "tag.assigned", targets, tag.key, assignment.value, now)
    )
    mine = and_(TagAssignment.tag_id == tag.id, TagAssignment.customer_id.in_(targets))
    changed = and_(mine, TagAssignment.value.is_distinct_from(assignment.value))
    await tag_records.history(
        session, "CHANGED", changed, assignment.value, assignment.source, actor, now
    )
    values = {
        "value": assignment.value,
        "source": assignment.source,
        "confidence": assignment.confidence,
        "actor": actor,
        "assigned_at": now,
        "expires_at": assignment.expires_at,
    }
    await session.execute(update(TagAssignment).where(mine).values(**values))
    has = select(TagAssignment.id).where(
        TagAssignment.tag_id == tag.id, TagAssignment.customer_id == Customer.id
    )
    fresh = targets.where(~has.exists())
    fresh_ids = fresh.subquery().c[0]
    await session.execute(
        insert(TagHistory).from_select(
            ["customer_id", "tag_id", "action", "new_value", "source", "actor", "at"],
            select(
                fresh_ids,
                literal(tag.id, TagHistory.tag_id.type),
                literal("ASSIGNED"),
                literal(assignment.value, TagHistory.new_value.type),
                literal(assignment.source, TagHistory.source.type),
                literal(actor, TagHistory.actor.type),
                literal(now, UTCDateTime()),
            ),
        )
    )
    await session.execute(
        insert(TagAssignment).from_select(
            ["customer_id", "tag_id", *values],
            select(
                fresh_ids,
                literal(tag.id, TagAssignment.tag_id.type),
                *(literal(v, getattr(TagAssignment, k).type) for k, v in values.items()),
            ),
        )
    )
    return int(count)


async def unassign(
    session: AsyncSession,
    tag: TagDefinitionRecord,
    targets: Select[Any],
    actor: str | None,
    now: datetime,
) -> int:
    """Remove `tag` from every profile `targets` selects that carries it; returns how many."""
    await _expire(session, tag, targets, now)
    mine = and_(TagAssignment.tag_id == tag.id, TagAssignment.customer_id.in_(targets))
    return await tag_records.remove(session, "REMOVED", mine, tag.key, None, actor, now)


def expiry(tag: TagDefinitionRecord, expires_at: datetime | None, now: datetime) -> datetime | None:
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise InvalidInput("expiresAt needs a time zone offset", field=("expiresAt",))
        if expires_at <= now:
            raise InvalidInput("expiresAt is in the past", field=("expiresAt",))
        return expires_at
    return now + timedelta(days=tag.default_ttl_days) if tag.default_ttl_days else None


def _refuse_rule(tag: TagDefinitionRecord) -> None:
    if tag.kind == "RULE":
        raise InvalidInput(
            f"{tag.key} is a RULE tag: its condition assigns and removes it",
            field=("tag",),
            code="RULE_TAG_READ_ONLY",
        )


async def tag_customers(
    db: Database,
    key: str,
    customers: Targets,
    assignment: Assignment,
    actor: str | None,
    *,
    now: datetime | None = None,
) -> int:
    """The tagCustomers verb: checks the tag and value, then assigns in one transaction, with
    what follows for the profiles whose tags changed."""
    now = now or utcnow()
    if assignment.confidence is not None and not 0 <= assignment.confidence <= 1:
        raise InvalidInput("confidence is between 0 and 1", field=("confidence",))
    if assignment.source is not None:
        text_for(TagAssignment.source, assignment.source, ("source",), what="a source")
    targets = await _targets_of(db, customers, now)

    async def work(session: AsyncSession) -> int:
        tag = await _tag(session, key, for_assignment=True)
        _refuse_rule(tag)
        if isinstance(customers, InSegment):
            await no_nested_loops(session)
        checked = Assignment(
            value=check_value(tag, assignment.value),
            expires_at=expiry(tag, assignment.expires_at, now),
            source=assignment.source,
            confidence=assignment.confidence,
        )
        count = await assign(session, tag, targets, checked, actor, now)
        if count:
            await mark(session, tag_records.touched([tag.id], now), actor, now)
        return count

    return await transact(db, work)


async def untag_customers(
    db: Database,
    key: str,
    customers: Targets,
    actor: str | None,
    *,
    now: datetime | None = None,
) -> int:
    now = now or utcnow()
    targets = await _targets_of(db, customers, now)

    async def work(session: AsyncSession) -> int:
        tag = await _tag(session, key, for_assignment=False)
        _refuse_rule(tag)
        count = await unassign(session, tag, targets, actor, now)
        if count:
            await mark(session, tag_records.touched([tag.id], now), actor, now)
        return count

    return await transact(db, work)


async def sweep_expired(db: Database, now: datetime | None = None) -> int:
    """Remove every assignment past its expiry, recording EXPIRED and tag.removed (and what
    follows for those profiles: RULE tags, stages, materialized segments)."""
    now = now or utcnow()

    async def work(session: AsyncSession) -> int:
        tag_ids = (
            await session.scalars(
                select(TagAssignment.tag_id).where(TagAssignment.expires_at <= now).distinct()
            )
        ).all()
        removed = 0
        for tag_id in tag_ids:
            key = await session.scalar(select(TagDefinition.key).where(TagDefinition.id == tag_id))
            tag = await _tag(session, str(key), for_assignment=False)
            expired = select(TagAssignment.customer_id).where(
                TagAssignment.tag_id == tag_id, TagAssignment.expires_at <= now
            )
            removed += (
                await session.execute(select(func.count()).select_from(expired.subquery()))
            ).scalar_one()
            await _expire(session, tag, expired, now)
        if tag_ids:
            await follow_write(session, tag_records.touched(tag_ids, now), now, "expiry")
        return removed

    return await db.transact(work)


@dataclass(frozen=True, slots=True)
class SweepResult:
    expired: int
    rules: list[RuleResult]


async def sweep(
    db: Database,
    now: datetime | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> SweepResult:
    """The periodic upkeep of tags: remove expired assignments (recorded EXPIRED), then
    re-evaluate every RULE tag over everyone (`c360 sweep-tags`, and `serve` on its interval);
    `progress(RULE tags done, RULE tags)` after each."""
    now = now or utcnow()
    expired = await sweep_expired(db, now)
    return SweepResult(expired, await reevaluate_rule_tags(db, now, progress=progress))
