"""Marking profiles dirty inside a write, and what the marks say: which profiles wait for the
worker, since when (the contract: domain.derived)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, Uuid, bindparam, case, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import Database
from store.models import CustomerDirty
from store.sqlfuncs import greatest, least, on_postgresql
from store.types import utcnow

# session.info key: the profiles this transaction marked (writers settle them on request).
MARKED = "c360_marked_dirty"


async def mark(
    session: AsyncSession,
    customers: Collection[uuid.UUID] | Select[Any],
    actor: str | None,
    now: datetime | None = None,
    seen: Mapping[uuid.UUID, tuple[datetime, datetime]] | None = None,
) -> None:
    """Mark these profiles (ids, or a select of ids) dirty in the caller's write transaction:
    one statement, an upsert whose conflict only counts the write (`version`). `seen`: the
    span (first, last) of the activity the write stored per profile, added to the mark's
    (domain.activity.seen). Call it last in the transaction: the mark's row lock is then held
    for no more than the commit."""
    if isinstance(customers, Select):
        customers = (await session.scalars(customers)).all()
    ids = sorted(set(customers))
    if not ids:
        return
    session.info.setdefault(MARKED, set()).update(ids)
    now = now or utcnow()
    spans = [(seen or {}).get(i, (None, None)) for i in ids]
    table = cast(Table, CustomerDirty.__table__)
    if on_postgresql(session):
        times = postgresql.ARRAY(CustomerDirty.seen_first.type)
        given = (
            func.unnest(
                bindparam("ids", ids, type_=postgresql.ARRAY(Uuid())),
                bindparam("firsts", [first for first, _ in spans], type_=times),
                bindparam("lasts", [last for _, last in spans], type_=times),
            )
            .table_valued("id", "first", "last")
            .render_derived()
        )
        source = select(
            given.c.id,
            literal(now, CustomerDirty.since.type),
            literal(now, CustomerDirty.marked_at.type),
            literal(1),
            literal(actor, CustomerDirty.actor.type),
            given.c.first,
            given.c.last,
        )
        statement: Any = postgresql.insert(table).from_select(
            ["customer_id", "since", "marked_at", "version", "actor", "seen_first", "seen_last"],
            source,
        )
        rows: list[dict[str, Any]] | None = None
    else:
        statement = sqlite.insert(table)
        rows = [
            {"customer_id": i, "since": now, "marked_at": now, "version": 1, "actor": actor,
             "seen_first": first, "seen_last": last}
            for i, (first, last) in zip(ids, spans, strict=True)
        ]  # fmt: skip
    claimed = CustomerDirty.claimed_until.is_not(None)
    new = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=["customer_id"],
        set_={
            "version": CustomerDirty.version + 1,
            "actor": new.actor,
            "marked_at": new.marked_at,
            # Marked again while a worker holds it: the lag of this write starts now.
            "remarked_at": case(
                (claimed, func.coalesce(CustomerDirty.remarked_at, new.since)),
                else_=CustomerDirty.remarked_at,
            ),
            "seen_first": least(session, CustomerDirty.seen_first, new.seen_first),
            "seen_last": greatest(session, CustomerDirty.seen_last, new.seen_last),
        },
    )
    await session.execute(statement, rows)


@dataclass(frozen=True, slots=True)
class Backlog:
    """The profiles waiting for the worker: how many, and since when the oldest waits."""

    profiles: int
    oldest_since: datetime | None

    def lag_seconds(self, now: datetime | None = None) -> float:
        if self.oldest_since is None:
            return 0.0
        return max(0.0, ((now or utcnow()) - self.oldest_since).total_seconds())


async def backlog(db: Database) -> Backlog:
    """Through the primary key and the `since` index: what /metrics and /readyz show."""
    async with db.read() as session:
        count = await session.scalar(select(func.count()).select_from(CustomerDirty))
        oldest = await session.scalar(select(func.min(CustomerDirty.since)))
    return Backlog(int(count or 0), oldest)


async def behind_since(
    db: Database, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, datetime]:
    """The profiles among these whose derived state waits for the worker, and since when."""
    async with db.read() as session:
        rows = await session.execute(
            select(CustomerDirty.customer_id, CustomerDirty.since).where(
                CustomerDirty.customer_id.in_(customer_ids)
            )
        )
        return {customer_id: since for customer_id, since in rows}
