"""Activity and value metrics of a profile."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry

from domain.activity.metrics import MetricsRecord


@strawberry.type
class RfmScore:
    recency: int
    frequency: int
    monetary: int
    code: str
    segment: str


@strawberry.type
class CustomerMetrics:
    order_count: int
    total_spent: Decimal
    average_order_value: Decimal | None
    first_order_at: datetime | None
    last_order_at: datetime | None
    last_activity_at: datetime | None
    recency_days: int | None
    rfm: RfmScore | None
    clv: Decimal | None
    churn_risk: float | None

    @classmethod
    def of(cls, record: MetricsRecord) -> CustomerMetrics:
        rfm = record.rfm
        return cls(
            order_count=record.order_count,
            total_spent=record.total_spent,
            average_order_value=record.average_order_value,
            first_order_at=record.first_order_at,
            last_order_at=record.last_order_at,
            last_activity_at=record.last_activity_at,
            recency_days=record.recency_days(),
            rfm=RfmScore(
                recency=rfm.recency,
                frequency=rfm.frequency,
                monetary=rfm.monetary,
                code=rfm.code,
                segment=rfm.segment,
            )
            if rfm
            else None,
            clv=record.clv,
            churn_risk=record.churn_risk,
        )
