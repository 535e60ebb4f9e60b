"""Segment insights: the distributions an admin looks at before a campaign."""

from __future__ import annotations

from decimal import Decimal

import strawberry

from domain.segments.insights import Bucket, Insights


@strawberry.type(description="Customers who share one value (a stage, an RFM segment, ...).")
class InsightBucket:
    value: str | None = strawberry.field(description="Null: customers without one.")
    member_count: int
    share: float = strawberry.field(description="Of the whole group, 0..1.")
    total_spent: Decimal = strawberry.field(description="Net of refunds, in the base currency.")
    average_order_value: Decimal | None

    @classmethod
    def of(cls, bucket: Bucket, group: int) -> InsightBucket:
        return cls(
            value=bucket.value,
            member_count=bucket.members,
            share=bucket.members / group if group else 0.0,
            total_spent=bucket.total_spent,
            average_order_value=bucket.average_order_value,
        )


@strawberry.type(
    description="A group of customers at a glance. A customer counts in every channel they "
    "reached us through (with their whole spend): channel buckets add up to more than the group."
)
class SegmentInsights:
    member_count: int
    total_spent: Decimal
    average_order_value: Decimal | None
    stages: list[InsightBucket]
    rfm_segments: list[InsightBucket]
    channels: list[InsightBucket]
    cities: list[InsightBucket]

    @classmethod
    def of(cls, found: Insights) -> SegmentInsights:
        group = found.everyone.members
        return cls(
            member_count=group,
            total_spent=found.everyone.total_spent,
            average_order_value=found.everyone.average_order_value,
            stages=[InsightBucket.of(b, group) for b in found.stages],
            rfm_segments=[InsightBucket.of(b, group) for b in found.rfm_segments],
            channels=[InsightBucket.of(b, group) for b in found.channels],
            cities=[InsightBucket.of(b, group) for b in found.cities],
        )
