"""Activity and value metrics of a profile, derived from its events and orders."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select

from store.db import Database
from store.models import CustomerMetrics
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
