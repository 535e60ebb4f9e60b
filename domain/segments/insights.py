"""Insights: what a group of customers looks like before a campaign. For a segment or a
condition, how many customers, what they spent, and how they spread over lifecycle stages, RFM
segments, channels and cities, each bucket with its own count, spend and average order value.

One statement, whatever the group's size: the members (the segment's stored members, or the
condition compiled as for `customers(where:)`) joined to their metrics, grouped every way at
once (store.sqlfuncs.totals_by: GROUPING SETS on PostgreSQL), and the channel buckets from the
per-customer channel summary (domain.activity.channels), never from the events table. A
customer reached through several channels counts in each of their channels, with their whole
spend: channel buckets add up to more than the group.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, literal, select

from domain.conditions.sql import EVERYONE, CustomerFilter
from domain.segments.definitions import customer_filter
from store.db import Database
from store.models import Customer, CustomerChannel, CustomerMetrics
from store.sqlfuncs import totals_by

__all__ = ["Bucket", "Insights", "insights"]

DIMENSIONS = ("stage", "rfm_segment", "city")
CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Bucket:
    value: str | None  # None: customers without one (no stage, not RFM-scored, no city)
    members: int
    total_spent: Decimal
    orders: int

    @property
    def average_order_value(self) -> Decimal | None:
        return (self.total_spent / self.orders).quantize(CENT) if self.orders else None


@dataclass(frozen=True, slots=True)
class Insights:
    everyone: Bucket
    stages: list[Bucket]
    rfm_segments: list[Bucket]
    channels: list[Bucket]
    cities: list[Bucket]


def _members(matches: CustomerFilter) -> Any:
    statement = select(
        Customer.id.label("customer_id"),
        Customer.stage.label("stage"),
        Customer.city.label("city"),
        CustomerMetrics.rfm_segment.label("rfm_segment"),
        func.coalesce(CustomerMetrics.total_spent, 0).label("spent"),
        func.coalesce(CustomerMetrics.order_count, 0).label("orders"),
    ).outerjoin(CustomerMetrics, CustomerMetrics.customer_id == Customer.id)
    return matches.apply(statement, metrics_joined=True).cte("members")


async def insights(
    db: Database,
    where: dict[str, Any] | None = None,
    segment_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> Insights:
    """The insights of a segment's members, of the customers a condition matches (both: those
    in the segment who match), or of every live customer. Errors name the argument, as
    `customers(where:, segment:)` does."""
    matches = await customer_filter(db, where, segment_id, now)
    members = _members(matches or EVERYONE)
    measures = [
        func.count(members.c.customer_id),
        func.coalesce(func.sum(members.c.spent), 0),
        func.coalesce(func.sum(members.c.orders), 0),
    ]
    by_channel = (
        select(literal("channel"), CustomerChannel.channel, *measures)
        .select_from(members)
        .join(CustomerChannel, CustomerChannel.customer_id == members.c.customer_id)
        .group_by(CustomerChannel.channel)
    )
    buckets: dict[str | None, list[Bucket]] = defaultdict(list)
    async with db.read() as session:
        rows = await session.execute(
            totals_by(session, members, DIMENSIONS, measures, also=[by_channel])
        )
        for dimension, value, count, spent, orders in rows:
            buckets[dimension].append(
                Bucket(value, int(count), Decimal(spent).quantize(CENT), int(orders))
            )
    for found in buckets.values():
        found.sort(key=lambda b: (-b.members, b.value is None, b.value or ""))
    (everyone,) = buckets[None]
    return Insights(
        everyone=everyone,
        stages=buckets["stage"],
        rfm_segments=buckets["rfm_segment"],
        channels=buckets["channel"],
        cities=buckets["city"],
    )
