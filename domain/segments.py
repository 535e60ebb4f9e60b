"""Segments: saved conditions over profiles, evaluated live or materialized."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from store.db import Database
from store.models import Segment, SegmentMembership


@dataclass(frozen=True, slots=True)
class SegmentRecord:
    id: uuid.UUID
    key: str
    name: str
    description: str | None
    condition: dict[str, Any]
    materialized: bool
    member_count: int
    last_refreshed_at: datetime | None


SEGMENT_COLUMNS = tuple(getattr(Segment, name) for name in SegmentRecord.__slots__)


async def segments_of(
    db: Database, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[SegmentRecord]]:
    """The materialized segments each profile is a member of."""
    statement = (
        select(SegmentMembership.customer_id, *SEGMENT_COLUMNS)
        .join(Segment, Segment.id == SegmentMembership.segment_id)
        .where(SegmentMembership.customer_id.in_(customer_ids))
        .order_by(SegmentMembership.customer_id, Segment.key)
    )
    found: dict[uuid.UUID, list[SegmentRecord]] = defaultdict(list)
    async with db.read() as session:
        for row in await session.execute(statement):
            found[row[0]].append(SegmentRecord(*row[1:]))
    return found
