"""What every change of tag assignments leaves behind: tag history rows and tag.assigned /
tag.removed change events, written by the database (INSERT ... SELECT) for a whole set of
profiles at once, never row by row from Python.

Shared by manual tagging (domain.tagging.bulk) and RULE tags (domain.tagging.rules); it knows
nothing of either, only the tag's id and key. `touched` names the profiles whose tags a change at
`now` moved, read back from the history it wrote: the scope of what must follow (RULE tags,
lifecycle rules, materialized segments).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, case, delete, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import OutboxEvent, TagAssignment, TagHistory
from store.sqlfuncs import new_uuid
from store.types import UTCDateTime

__all__ = ["events", "events_by_tag", "history", "remove", "remove_by_tag", "touched"]


def events(
    session: AsyncSession,
    kind: str,
    customers: Select[Any],
    tag_key: str,
    value: str | None,
    now: datetime,
) -> Any:
    """tag.assigned / tag.removed for each profile in `customers` (its first column)."""
    column = customers.subquery().c[0]
    return _outbox(session, kind, select(column, _payload_literal(kind, tag_key, value)), now)


def events_by_tag(
    session: AsyncSession, kind: str, which: Any, keys: Mapping[uuid.UUID, str], now: datetime
) -> Any:
    """tag.assigned / tag.removed (no value: RULE tags) for each assignment matching `which`,
    of several tags at once, each event naming its tag (`keys`: tag id -> key)."""
    payload = case(
        {tag_id: _payload_literal(kind, key, None) for tag_id, key in keys.items()},
        value=TagAssignment.tag_id,
    )
    return _outbox(session, kind, select(TagAssignment.customer_id, payload).where(which), now)


def _payload_literal(kind: str, tag_key: str, value: str | None) -> Any:
    payload = {"tag": tag_key, "value": value} if kind == "tag.assigned" else {"tag": tag_key}
    return literal(payload, OutboxEvent.payload.type)


def _outbox(session: AsyncSession, kind: str, rows: Select[Any], now: datetime) -> Any:
    """One outbox row per (customer id, payload) of `rows`."""
    source = rows.subquery()
    return insert(OutboxEvent).from_select(
        ["event_id", "kind", "customer_id", "payload", "created_at"],
        select(
            new_uuid(session),
            literal(kind),
            source.c[0],
            source.c[1],
            literal(now, UTCDateTime()),
        ),
    )


async def history(
    session: AsyncSession,
    action: str,
    which: Any,
    new_value: Any,
    source: Any,
    actor: str | ColumnElement[str] | None,
    now: datetime,
) -> int:
    """One history row per current assignment matching `which` (its value is the old one);
    returns how many. `actor` may be an expression over the assignment (an actor per tag)."""
    if not isinstance(actor, ColumnElement):
        actor = literal(actor, TagHistory.actor.type)
    result = await session.execute(
        insert(TagHistory).from_select(
            ["customer_id", "tag_id", "action", "old_value", "new_value", "source", "actor", "at"],
            select(
                TagAssignment.customer_id,
                TagAssignment.tag_id,
                literal(action),
                TagAssignment.value,
                literal(new_value, TagHistory.new_value.type),
                literal(source, TagHistory.source.type),
                actor,
                literal(now, UTCDateTime()),
            ).where(which),
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def remove(
    session: AsyncSession,
    action: str,
    which: Any,
    tag_key: str,
    source: str | None,
    actor: str | None,
    now: datetime,
) -> int:
    """Remove the assignments of one tag matching `which`, recording `action` (REMOVED,
    EXPIRED) and a tag.removed event for each; returns how many (`remove_by_tag`)."""
    removed = await _remove(session, action, which, source, actor, now)
    if removed:
        holders = select(TagAssignment.customer_id).where(which)
        await session.execute(events(session, "tag.removed", holders, tag_key, None, now))
        await session.execute(delete(TagAssignment).where(which))
    return sum(removed.values())


async def remove_by_tag(
    session: AsyncSession,
    action: str,
    which: Any,
    keys: Mapping[uuid.UUID, str],
    source: str | None,
    actor: ColumnElement[str],
    now: datetime,
) -> Counter[uuid.UUID]:
    """`remove` for the assignments of several tags (`keys`: tag id -> key) in one set of
    statements; how many each tag lost."""
    removed = await _remove(session, action, which, source, actor, now)
    if removed:
        await session.execute(events_by_tag(session, "tag.removed", which, keys, now))
        await session.execute(delete(TagAssignment).where(which))
    return removed


async def _remove(
    session: AsyncSession,
    action: str,
    which: Any,
    source: str | None,
    actor: str | ColumnElement[str] | None,
    now: datetime,
) -> Counter[uuid.UUID]:
    """Lock the assignments matching `which` and record their history; how many per tag.

    The rows are locked first: of two transactions removing the same assignment (a write's
    re-evaluation and the periodic sweep), the second waits, then finds it gone, and records
    nothing (each later statement reads afresh under READ COMMITTED). SQLite's writers are
    serial already."""
    locked = await session.scalars(select(TagAssignment.tag_id).where(which).with_for_update())
    removed = Counter(locked.all())
    if removed:
        await history(session, action, which, None, source, actor, now)
    return removed


def touched(tag_ids: Sequence[uuid.UUID], now: datetime) -> Select[Any]:
    """The profiles a change at `now` assigned, changed, expired or removed these tags on (a
    profile may appear more than once: use it with IN). It reads no customers row, so it
    can stand in `customers.id IN (...)` without being correlated away."""
    return select(TagHistory.customer_id).where(
        TagHistory.tag_id.in_(tag_ids), TagHistory.at == now
    )
