"""Segments: saved conditions over profiles."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from api.ids import to_global_id
from api.schema.common import Node
from domain.segments import SegmentRecord


@strawberry.type
class Segment(Node):
    id: strawberry.ID
    key: str
    name: str
    description: str | None
    condition: JSON
    materialized: bool
    member_count: int
    last_refreshed_at: datetime | None

    @classmethod
    def of(cls, record: SegmentRecord) -> Segment:
        return cls(
            id=strawberry.ID(to_global_id("Segment", record.id)),
            key=record.key,
            name=record.name,
            description=record.description,
            condition=JSON(record.condition),
            materialized=record.materialized,
            member_count=record.member_count,
            last_refreshed_at=record.last_refreshed_at,
        )
