"""Assigning and removing tags, in bulk, in SQL, with history and change events.

Every verb works on a set of target profiles (an explicit list, or a segment's members) with a
fixed number of set-based statements, whatever the size of the set: assignments, history rows
and outbox events are written by INSERT ... SELECT, never row by row from Python.

An assignment of a tag a profile already carries replaces its value (history: CHANGED when the
value changes). An assignment past its `expires_at` stops counting at once everywhere; the
sweep (`sweep_expired`) removes it later and records EXPIRED.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, delete, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.errors import InvalidInput, NotFound
from domain.profile import live_customers
from domain.tags import DEFINITION_COLUMNS, TagDefinitionRecord, check_value
from store.db import Database
from store.models import Customer, OutboxEvent, TagAssignment, TagDefinition, TagHistory
from store.sqlfuncs import new_uuid
from store.types import UTCDateTime, utcnow

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


def _targets_of(ids: Sequence[uuid.UUID] | Select[Any]) -> Select[Any]:
    if isinstance(ids, Select):
        return ids
    return select(Customer.id).where(Customer.id.in_(ids), Customer.status == "ACTIVE")


def _events(
    session: AsyncSession,
    kind: str,
    customers: Select[Any],
    tag: TagDefinitionRecord,
    value: str | None,
    now: datetime,
) -> Any:
    """tag.assigned / tag.removed for each profile in `customers`, written by the database."""
    dialect = session.get_bind().dialect.name
    payload = {"tag": tag.key, "value": value} if kind == "tag.assigned" else {"tag": tag.key}
    rows = customers.subquery()
    column = rows.c[0]
    return insert(OutboxEvent).from_select(
        ["event_id", "kind", "customer_id", "payload", "created_at"],
        select(
            new_uuid(dialect),
            literal(kind),
            column,
            literal(payload, OutboxEvent.payload.type),
            literal(now, UTCDateTime()),
        ),
    )


async def _expire(
    session: AsyncSession, tag: TagDefinitionRecord, customers: Select[Any], now: datetime
) -> None:
    """Record and remove assignments past their expiry among `customers`."""
    expired = and_(
        TagAssignment.tag_id == tag.id,
        TagAssignment.customer_id.in_(customers),
        TagAssignment.expires_at <= now,
    )
    await _history(session, "EXPIRED", expired, None, None, "expiry", now)
    await session.execute(
        _events(
            session, "tag.removed", select(TagAssignment.customer_id).where(expired), tag, None, now
        )
    )
    await session.execute(delete(TagAssignment).where(expired))


async def _history(
    session: AsyncSession,
    action: str,
    which: Any,
    new_value: Any,
    source: Any,
    actor: str | None,
    now: datetime,
) -> None:
    """One history row per current assignment matching `which`."""
    await session.execute(
        insert(TagHistory).from_select(
            ["customer_id", "tag_id", "action", "old_value", "new_value", "source", "actor", "at"],
            select(
                TagAssignment.customer_id,
                TagAssignment.tag_id,
                literal(action),
                TagAssignment.value,
                literal(new_value, TagHistory.new_value.type),
                literal(source, TagHistory.source.type),
                literal(actor, TagHistory.actor.type),
                literal(now, UTCDateTime()),
            ).where(which),
        )
    )


async def assign(
    session: AsyncSession,
    tag: TagDefinitionRecord,
    customers: Sequence[uuid.UUID] | Select[Any],
    assignment: Assignment,
    actor: str | None,
    now: datetime,
) -> int:
    """Assign `tag` to every profile in `customers` (ids, or a select of ids); returns how many."""
    targets = _targets_of(customers)
    count = (
        await session.execute(select(func.count()).select_from(targets.subquery()))
    ).scalar_one()
    if not count:
        return 0
    await _expire(session, tag, targets, now)
    mine = and_(TagAssignment.tag_id == tag.id, TagAssignment.customer_id.in_(targets))
    changed = and_(mine, TagAssignment.value.is_distinct_from(assignment.value))
    await _history(session, "CHANGED", changed, assignment.value, assignment.source, actor, now)
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
    await session.execute(_events(session, "tag.assigned", targets, tag, assignment.value, now))
    return int(count)


async def unassign(
    session: AsyncSession,
    tag: TagDefinitionRecord,
    customers: Sequence[uuid.UUID] | Select[Any],
    actor: str | None,
    now: datetime,
) -> int:
    """Remove `tag` from every profile in `customers` that carries it; returns how many."""
    targets = _targets_of(customers)
    await _expire(session, tag, targets, now)
    mine = and_(TagAssignment.tag_id == tag.id, TagAssignment.customer_id.in_(targets))
    carrying = select(TagAssignment.customer_id).where(mine)
    count = (
        await session.execute(select(func.count()).select_from(carrying.subquery()))
    ).scalar_one()
    if not count:
        return 0
    await _history(session, "REMOVED", mine, None, None, actor, now)
    await session.execute(_events(session, "tag.removed", carrying, tag, None, now))
    await session.execute(delete(TagAssignment).where(mine))
    return int(count)


def expiry(tag: TagDefinitionRecord, expires_at: datetime | None, now: datetime) -> datetime | None:
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise InvalidInput("expiresAt needs a time zone offset", field=("expiresAt",))
        if expires_at <= now:
            raise InvalidInput("expiresAt is in the past", field=("expiresAt",))
        return expires_at
    return now + timedelta(days=tag.default_ttl_days) if tag.default_ttl_days else None


async def tag_customers(
    db: Database,
    key: str,
    customers: Sequence[uuid.UUID] | Select[Any],
    assignment: Assignment,
    actor: str | None,
    *,
    allow_rule: bool = False,
    now: datetime | None = None,
) -> int:
    """The tagCustomers verb: checks the tag and value, then assigns in one transaction."""
    now = now or utcnow()
    if assignment.confidence is not None and not 0 <= assignment.confidence <= 1:
        raise InvalidInput("confidence is between 0 and 1", field=("confidence",))

    async def work(session: AsyncSession) -> int:
        tag = await _tag(session, key, for_assignment=True)
        if tag.kind == "RULE" and not allow_rule:
            raise InvalidInput(
                f"{key} is a RULE tag: its condition assigns it",
                field=("tag",),
                code="RULE_TAG_READ_ONLY",
            )
        checked = Assignment(
            value=check_value(tag, assignment.value),
            expires_at=expiry(tag, assignment.expires_at, now),
            source=assignment.source,
            confidence=assignment.confidence,
        )
        return await assign(session, tag, customers, checked, actor, now)

    return await db.transact(work)


async def untag_customers(
    db: Database,
    key: str,
    customers: Sequence[uuid.UUID] | Select[Any],
    actor: str | None,
    *,
    now: datetime | None = None,
) -> int:
    now = now or utcnow()

    async def work(session: AsyncSession) -> int:
        tag = await _tag(session, key, for_assignment=False)
        if tag.kind == "RULE":
            raise InvalidInput(
                f"{key} is a RULE tag: its condition removes it",
                field=("tag",),
                code="RULE_TAG_READ_ONLY",
            )
        return await unassign(session, tag, customers, actor, now)

    return await db.transact(work)


async def sweep_expired(db: Database, now: datetime | None = None) -> int:
    """Remove every assignment past its expiry, recording EXPIRED and tag.removed."""
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
        return removed

    return await db.transact(work)
