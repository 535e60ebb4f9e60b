"""When a profile was first and last seen, as its events and orders say: derived state, moved
by the derived-state worker (domain.derived) before metrics and rules read it.

Ingest used to move `customers.first_seen_at`/`last_seen_at` in the write itself: an UPDATE of
every profile a batch touched, on a table with eleven indexes (last_seen_at is in four), about
as costly as the rows the batch stored. The worker now widens the window from the profile's
activity instead, once per batch however many writes marked it, and only where it moves.
Identify still moves it in its own write (an identification is not an event).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import Customer, Event, Order
from store.sqlfuncs import greatest, least


def _bound(column: Any, owner: Any, pick: Any) -> Any:
    return select(pick(column)).where(owner == Customer.id).scalar_subquery()


async def widen_seen(
    session: AsyncSession, customers: Collection[uuid.UUID] | Select[Any], now: datetime
) -> None:
    """Widen these profiles' seen window to cover their events and orders."""
    first = least(
        session,
        Customer.first_seen_at,
        _bound(Event.occurred_at, Event.customer_id, func.min),
        _bound(Order.placed_at, Order.customer_id, func.min),
    )
    last = greatest(
        session,
        Customer.last_seen_at,
        _bound(Event.occurred_at, Event.customer_id, func.max),
        _bound(Order.placed_at, Order.customer_id, func.max),
    )
    ids = customers if isinstance(customers, Select) else list(customers)
    await session.execute(
        update(Customer)
        .where(
            Customer.id.in_(ids),
            or_(
                Customer.first_seen_at.is_distinct_from(first),
                Customer.last_seen_at.is_distinct_from(last),
            ),
        )
        .values(first_seen_at=first, last_seen_at=last, updated_at=now)
        .execution_options(synchronize_session=False)
    )
