"""Per-customer histories (events, orders, tag changes, segment entries and exits) read newest
first, many customers at once: one windowed statement per distinct (kind, page size, cursor), so
a page of profiles costs one statement per history, not one per profile. A segment's history is
read the same way, its rows owned by the segment."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, tuple_

from domain.pagination import Page, encode_cursor, parse_cursor
from store.db import Database


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """One owner's page of a history (a customer's, or a segment's), newest first; `type`:
    what the history's `kind` column must equal (an event type, a customer), None for any."""

    owner_id: uuid.UUID
    first: int
    after: str | None = None
    type: Any = None


async def newest_first_pages(
    db: Database,
    record: Any,
    time: Any,
    queries: Sequence[HistoryQuery],
    kind: Any = None,
    owner: str = "customer_id",
) -> list[Page[Any]]:
    """`record` rows of `time`'s table for each query; `kind` is the column `type` filters,
    `owner` the column that names whose history a row is."""
    groups: dict[tuple[Any, int, str | None], list[uuid.UUID]] = defaultdict(list)
    for q in queries:
        groups[(q.type, q.first, q.after)].append(q.owner_id)
    found: dict[tuple[uuid.UUID, Any, int, str | None], list[Any]] = {}
    model = time.class_
    owned_by = getattr(model, owner)
    columns = [getattr(model, name) for name in record.__slots__]
    async with db.read() as session:
        for (type_, first, after), ids in groups.items():
            rank = func.row_number().over(
                partition_by=owned_by, order_by=(time.desc(), model.id.desc())
            )
            inner = select(*columns, rank.label("rank")).where(owned_by.in_(ids))
            if type_ is not None:
                inner = inner.where(kind == type_)
            if after is not None:
                at, row_id = parse_cursor(after, (datetime.fromisoformat, int), "after")
                bound = (at, row_id)
                inner = inner.where(tuple_(time, model.id) < bound)
            ranked = inner.subquery()
            statement = (
                select(*(ranked.c[name] for name in record.__slots__))
                .where(ranked.c.rank <= first + 1)
                .order_by(ranked.c[owner], ranked.c.rank)
            )
            by_owner: dict[uuid.UUID, list[Any]] = defaultdict(list)
            for row in await session.execute(statement):
                by_owner[getattr(row, owner)].append(record(*row))
            for owner_id in ids:
                found[(owner_id, type_, first, after)] = by_owner.get(owner_id, [])
    pages = []
    for q in queries:
        rows = found[(q.owner_id, q.type, q.first, q.after)]
        more, rows = len(rows) > q.first, rows[: q.first]
        cursors = [encode_cursor([getattr(r, time.key).isoformat(), r.id]) for r in rows]
        pages.append(Page(rows, cursors, has_next=more, has_previous=q.after is not None))
    return pages
