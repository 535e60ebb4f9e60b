"""Which of many de-duplication keys are already stored, in one statement per batch however
many keys it brings: events' idempotency keys and orders' (source, externalId).

PostgreSQL: the keys travel as arrays (one parameter each, so a statement is compiled once
and no list meets the driver's limit on parameters); events' keys are looked up in
`event_keys` (migration c15_event_keys: one primary key), not in `events` (one index probe per
month and key). SQLite: IN lists, in parts of at most SQLITE_LIST parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import any_, bindparam, column, select, table
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import Event, Order
from store.sqlfuncs import on_postgresql, pair_in

__all__ = ["stored_event_keys", "stored_order_keys"]

# SQLite takes at most 32,766 parameters in one statement.
SQLITE_LIST = 10_000
# PostgreSQL only, kept by triggers on events (c15_event_keys); no model: SQLite has none.
EVENT_KEYS = table("event_keys", column("idempotency_key", Event.idempotency_key.type))


def _parts(values: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [values[start : start + size] for start in range(0, len(values), size)]


async def stored_event_keys(session: AsyncSession, keys: Sequence[str]) -> set[str]:
    """Those of `keys` that a stored event holds."""
    if not keys:
        return set()
    if on_postgresql(session):
        key = EVENT_KEYS.c.idempotency_key
        given = bindparam("keys", list(keys), type_=ARRAY(key.type))
        return set((await session.scalars(select(key).where(key == any_(given)))).all())
    found: set[str] = set()
    for part in _parts(keys, SQLITE_LIST):
        stored = select(Event.idempotency_key).where(Event.idempotency_key.in_(part))
        found.update(key for key in await session.scalars(stored) if key is not None)
    return found


async def stored_order_keys(
    session: AsyncSession, keys: Sequence[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Those of `keys` (source, externalId) that a stored order holds."""
    if not keys:
        return set()
    size = len(keys) if on_postgresql(session) else SQLITE_LIST // 2
    found: set[tuple[str, str]] = set()
    for part in _parts(keys, size):
        pair = pair_in(session, Order.source, Order.external_id, part)
        rows = await session.execute(select(Order.source, Order.external_id).where(pair))
        found.update((source, external_id) for source, external_id in rows)
    return found
