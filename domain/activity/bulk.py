"""Events and orders in bulk, for `c360 import`: the rules of domain.activity.ingest at a cost
per row that a file of millions can afford.

What a batch does is what `track_events` / `record_orders` do for the API, in one transaction:
every item is checked by ingest's own checks (a refused item is reported with its index, the
rest still land), the items land on profiles through identity resolution (created when nobody
holds the identity), replays are duplicates (events by idempotency key, orders by
(source, externalId), within the batch as against what is stored), the rows are written with
COPY on PostgreSQL, the channel summaries take the new rows, and the touched profiles are
marked for the derived-state worker. Only raw facts are written here.

What differs is the cost. A batch of N items names far fewer people, so identity resolution
runs once per distinct identity, not once per item: each distinct identity goes through
ingest's own landing (`_land`: the holder of a held identifier, else `resolve_batch`; in the
batch's transaction, so locks and merges behave as for the API) with the earliest and the
latest time its items carry, which is all a profile's and an identity's first and last seen
take from them; the items are then mapped to their profile in Python. The statements of a
batch do not grow with its rows: one lookup of the stored keys, one COPY, one upsert of the
channel summaries, one mark, and identity resolution's own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

import domain.activity.channels as channels
from domain.access.erasure import ErasurePolicy
from domain.activity.ingest import (
    EVENTS,
    ORDERS,
    EventItem,
    IngestOutcome,
    OrderItem,
    _check_event,
    _check_order,
    _checked,
    _Kind,
    _land,
)
from domain.activity.retention import refuse_retired
from domain.activity.seen import spans
from domain.derived.batches import transact
from domain.derived.marks import mark
from domain.errors import DomainError
from store.bulk_rows import copy_rows
from store.db import Database
from store.types import utcnow

__all__ = ["import_events", "import_orders"]

Identity = tuple[str, str]
Row = dict[str, Any]


def _spans(
    identities: Sequence[Identity], checked: Sequence[Row | DomainError], time: str
) -> list[tuple[int, Identity, datetime]]:
    """Identity resolution's inputs for a batch: each distinct identity once with the earliest
    time its items carry, and once more with the latest when that differs. Resolving these
    lands every item where resolving the items one by one would (an input of one identity
    lands wherever its identity does) and leaves the same first and last seen times behind."""
    earliest: dict[Identity, datetime] = {}
    latest: dict[Identity, datetime] = {}
    for identity, row in zip(identities, checked, strict=True):
        if isinstance(row, DomainError):
            continue
        at = row[time]
        first = earliest.get(identity)
        if first is None:
            earliest[identity] = latest[identity] = at
        elif at < first:
            earliest[identity] = at
        elif at > latest[identity]:
            latest[identity] = at
    wanted = [(identity, at) for identity, at in earliest.items()]
    wanted += [(i, at) for i, at in latest.items() if at != earliest[i]]
    return [(n, identity, at) for n, (identity, at) in enumerate(wanted)]


async def _import(
    db: Database,
    kind: _Kind,
    identities: Sequence[Identity],
    checked: Sequence[Row | DomainError],
    region: str,
    actor: str | None,
    now: datetime,
    erased: ErasurePolicy | None,
) -> IngestOutcome:
    wanted = _spans(identities, checked, kind.time)

    async def work(session: AsyncSession) -> IngestOutcome:
        landed = await _land(session, wanted, region, actor, erased)
        profile_of = {identity: landed[n] for n, identity, _ in wanted}
        keys = {kind.key(row) for row in checked if not isinstance(row, DomainError)}
        keys.discard(None)  # an event without a key is never a duplicate
        seen = await kind.existing(session, list(keys)) if keys else set()
        refused: list[DomainError] = []
        fresh: list[Row] = []
        duplicates = 0
        for index, (identity, row) in enumerate(zip(identities, checked, strict=True)):
            if isinstance(row, DomainError):
                refused.append(row.at(kind.name, index))
                continue
            target = profile_of[identity]
            if isinstance(target, DomainError):
                refused.append(target.at(kind.name, index))
                continue
            key = kind.key(row)
            if key is not None:
                if key in seen:
                    duplicates += 1
                    continue
                seen.add(key)
            row["customer_id"] = target  # the row is this batch's own: no copy of it
            fresh.append(row)
        if fresh:  # COPY on PostgreSQL: the id is the table's own
            await copy_rows(session, kind.model.__table__, fresh, columns=list(fresh[0]))
            await channels.count_new(session, **{kind.name: fresh})
        landed_on = {t for t in profile_of.values() if not isinstance(t, DomainError)}
        # Metrics, RULE tags, stage, segments and the seen window follow in the worker.
        stored = spans((row["customer_id"], row[kind.time]) for row in fresh)
        await mark(session, landed_on, actor, now, seen=stored)
        touched = sorted({row["customer_id"] for row in fresh})
        return IngestOutcome(len(fresh), duplicates, tuple(refused), tuple(touched))

    return await transact(db, work)


async def import_events(
    db: Database,
    items: Sequence[EventItem],
    *,
    region: str,
    actor: str | None,
    now: datetime | None = None,
    erased: ErasurePolicy | None = None,
    retained_months: int | None = None,
) -> IngestOutcome:
    """`track_events` for a batch of an import: the same outcome, one resolution per person."""
    now = now or utcnow()
    checked = refuse_retired(_checked(_check_event, items, now), now, retained_months)
    identities = [item.identity for item in items]
    return await _import(db, EVENTS, identities, checked, region, actor, now, erased)


async def import_orders(
    db: Database,
    items: Sequence[OrderItem],
    *,
    region: str,
    actor: str | None,
    rates: Mapping[str, Decimal],
    now: datetime | None = None,
    erased: ErasurePolicy | None = None,
) -> IngestOutcome:
    """`record_orders` for a batch of an import: the same outcome, one resolution per person."""
    now = now or utcnow()
    checked = _checked(_check_order, items, now, rates)
    identities = [item.identity for item in items]
    return await _import(db, ORDERS, identities, checked, region, actor, now, erased)
