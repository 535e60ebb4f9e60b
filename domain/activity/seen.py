"""When a profile was first and last seen, as its events and orders say: derived state, moved
by the derived-state worker (domain.derived) before metrics and rules read it.

Ingest used to move `customers.first_seen_at`/`last_seen_at` in the write itself: an UPDATE of
every profile a batch touched, on a table with eleven indexes (last_seen_at is in four), about
as costly as the rows the batch stored. Now the write adds the span of what it stored to the
profile's mark (`customer_dirty.seen_first`/`seen_last`, domain.derived.marks), and the
worker widens the window by it, once per batch however many writes marked the profile, and
only where it moves. Identify still moves it in its own write (an identification is not an
event); a merge gives the survivor the span of both.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import Customer, CustomerDirty
from store.sqlfuncs import greatest, least


def spans(
    activity: Iterable[tuple[uuid.UUID, datetime]],
) -> dict[uuid.UUID, tuple[datetime, datetime]]:
    """(customer, time) pairs of stored activity -> each customer's (first, last)."""
    found: dict[uuid.UUID, tuple[datetime, datetime]] = {}
    for customer_id, at in activity:
        first, last = found.get(customer_id, (at, at))
        found[customer_id] = (min(first, at), max(last, at))
    return found


async def widen_seen(
    session: AsyncSession, customers: Collection[uuid.UUID] | Select[Any], now: datetime
) -> None:
    """Widen these profiles' seen window by the spans their marks carry."""
    first = least(session, Customer.first_seen_at, CustomerDirty.seen_first)
    last = greatest(session, Customer.last_seen_at, CustomerDirty.seen_last)
    ids = customers if isinstance(customers, Select) else list(customers)
    await session.execute(
        update(Customer)
        .where(
            and_(
                CustomerDirty.customer_id == Customer.id,
                CustomerDirty.seen_first.is_not(None),
                Customer.id.in_(ids),
            ),
            or_(
                Customer.first_seen_at.is_distinct_from(first),
                Customer.last_seen_at.is_distinct_from(last),
            ),
        )
        .values(first_seen_at=first, last_seen_at=last, updated_at=now)
        .execution_options(synchronize_session=False)
    )
