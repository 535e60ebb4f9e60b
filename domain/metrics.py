"""Activity and value metrics of a profile, derived from its events and orders."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import Database
from store.models import CustomerMetrics, Event, Order
from store.types import utcnow


@dataclass(frozen=True, slots=True)
class RfmRecord:
    recency: int
    frequency: int
    monetary: int
    segment: str

    @property
    def code(self) -> str:
        return f"{self.recency}{self.frequency}{self.monetary}"


@dataclass(frozen=True, slots=True)
class MetricsRecord:
    order_count: int = 0
    total_spent: Decimal = Decimal("0.00")
    first_order_at: datetime | None = None
    last_order_at: datetime | None = None
    last_activity_at: datetime | None = None
    rfm: RfmRecord | None = None
    clv: Decimal | None = None
    churn_risk: float | None = None

    @property
    def average_order_value(self) -> Decimal | None:
        if not self.order_count:
            return None
        return (self.total_spent / self.order_count).quantize(Decimal("0.01"))

    def recency_days(self, now: datetime | None = None) -> int | None:
        if self.last_activity_at is None:
            return None
        return max(0, ((now or utcnow()) - self.last_activity_at).days)


EMPTY = MetricsRecord()


def _record(row: CustomerMetrics) -> MetricsRecord:
    rfm = None
    if row.rfm_recency and row.rfm_frequency and row.rfm_monetary and row.rfm_segment:
        rfm = RfmRecord(row.rfm_recency, row.rfm_frequency, row.rfm_monetary, row.rfm_segment)
    return MetricsRecord(
        order_count=row.order_count,
        total_spent=row.total_spent,
        first_order_at=row.first_order_at,
        last_order_at=row.last_order_at,
        last_activity_at=row.last_activity_at,
        rfm=rfm,
        clv=row.clv,
        churn_risk=row.churn_risk,
    )


async def metrics_of(
    db: Database, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, MetricsRecord]:
    async with db.read() as session:
        rows = await session.scalars(
            select(CustomerMetrics).where(CustomerMetrics.customer_id.in_(customer_ids))
        )
        return {row.customer_id: _record(row) for row in rows}


async def recompute(session: AsyncSession, customer_ids: Sequence[uuid.UUID]) -> None:
    """Rebuild the order and activity figures of these profiles from their orders and events
    (after a merge or an unmerge moved rows between them). RFM scores are population-wide and
    are left to their periodic refresh."""
    if not customer_ids:
        return
    completed = Order.status == "completed"
    orders = (
        select(
            Order.customer_id,
            func.count().label("order_count"),
            func.coalesce(func.sum(Order.base_amount), 0).label("total_spent"),
            func.min(Order.placed_at).label("first_order_at"),
            func.max(Order.placed_at).label("last_order_at"),
        )
        .where(Order.customer_id.in_(customer_ids), completed)
        .group_by(Order.customer_id)
    )
    events = (
        select(Event.customer_id, func.max(Event.occurred_at).label("last_event_at"))
        .where(Event.customer_id.in_(customer_ids))
        .group_by(Event.customer_id)
    )
    by_orders = {row.customer_id: row for row in await session.execute(orders)}
    by_events = {row.customer_id: row.last_event_at for row in await session.execute(events)}
    existing = set(
        (
            await session.scalars(
                select(CustomerMetrics.customer_id).where(
                    CustomerMetrics.customer_id.in_(customer_ids)
                )
            )
        ).all()
    )
    now = utcnow()
    rows = []
    for customer_id in customer_ids:
        order_row = by_orders.get(customer_id)
        last_order = order_row.last_order_at if order_row else None
        last_event = by_events.get(customer_id)
        rows.append(
            {
                "customer_id": customer_id,
                "order_count": order_row.order_count if order_row else 0,
                "total_spent": Decimal(order_row.total_spent) if order_row else Decimal(0),
                "first_order_at": order_row.first_order_at if order_row else None,
                "last_order_at": last_order,
                "last_activity_at": max((t for t in (last_order, last_event) if t), default=None),
                "updated_at": now,
            }
        )
    updates = [row for row in rows if row["customer_id"] in existing]
    inserts = [row for row in rows if row["customer_id"] not in existing]
    if updates:
        await session.execute(update(CustomerMetrics), updates)
    if inserts:
        await session.execute(insert(CustomerMetrics), inserts)
