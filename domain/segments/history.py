"""Who entered and left materialized segments, and when: read newest first, by segment (its
history, optionally of one customer) or by customer (every segment they entered or left).

Rows are written by domain.segments.refresh; dynamic segments have no history (nobody enters
or leaves a condition that is only evaluated when read).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from domain.history import HistoryQuery, newest_first_pages
from domain.pagination import Page
from store.db import Database
from store.models import SegmentMembershipHistory

__all__ = ["SegmentHistoryRecord", "customer_pages", "segment_pages"]


@dataclass(frozen=True, slots=True)
class SegmentHistoryRecord:
    id: int
    segment_id: uuid.UUID
    customer_id: uuid.UUID
    action: str  # ENTERED or EXITED
    at: datetime


async def segment_pages(
    db: Database, queries: Sequence[HistoryQuery]
) -> list[Page[SegmentHistoryRecord]]:
    """Each segment's page (`owner_id` the segment, `type` a customer to keep to, or None)."""
    history = SegmentMembershipHistory
    return await newest_first_pages(
        db, SegmentHistoryRecord, history.at, queries, history.customer_id, owner="segment_id"
    )


async def customer_pages(
    db: Database, queries: Sequence[HistoryQuery]
) -> list[Page[SegmentHistoryRecord]]:
    """Each customer's page, every segment together."""
    return await newest_first_pages(db, SegmentHistoryRecord, SegmentMembershipHistory.at, queries)
