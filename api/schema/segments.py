"""Segments: saved conditions over profiles, their members and previews."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from api.context import Context
from api.ids import to_global_id
from api.lookahead import selected_below
from api.pii import no_pii_members, pii_condition
from api.schema.common import Node, PageInfo
from domain.pagination import Page, PageRequest
from domain.segments.definitions import SegmentRecord

if TYPE_CHECKING:
    from api.schema.customers import Customer, CustomerConnection


@strawberry.type
class Segment(Node):
    id: strawberry.ID
    key: str
    name: str
    description: str | None
    condition: JSON = strawberry.field(
        description="In ConditionInput's shape (for partners, literals that compare PII are null).",
        extensions=pii_condition(),
    )
    materialized: bool
    last_refreshed_at: datetime | None
    uuid: strawberry.Private[uuid.UUID]

    @classmethod
    def of(cls, record: SegmentRecord) -> Segment:
        return cls(
            id=strawberry.ID(to_global_id("Segment", record.id)),
            uuid=record.id,
            key=record.key,
            name=record.name,
            description=record.description,
            condition=JSON(record.condition),
            materialized=record.materialized,
            last_refreshed_at=record.last_refreshed_at,
        )

    @strawberry.field(
        description="Materialized: its stored members (as refreshed). Dynamic: counted when "
        "asked. Refused to partners (FORBIDDEN) when the condition reads PII.",
        extensions=no_pii_members(),
    )
    async def member_count(self, info: Info[Context, None]) -> int:
        return await info.context.loaders.segment_member_counts.load(self.uuid) or 0

    @strawberry.field(
        description="Oldest customer first. Refused to partners (FORBIDDEN) when the condition "
        "reads PII.",
        extensions=no_pii_members(),
    )
    async def members(
        self, info: Info[Context, None], first: int | None = None, after: str | None = None
    ) -> Annotated[CustomerConnection, strawberry.lazy("api.schema.customers")]:
        # Imported here: Customer.segments returns Segment, so the two modules refer to each
        # other and only one of them can import the other at load time.
        from api.resolvers.segments import members

        page = PageRequest(first=first, after=after)
        return await members(info.context, self.uuid, page, selected_below(info, "edges", "node"))


@strawberry.type
class SegmentEdge:
    node: Segment
    cursor: str


@strawberry.type
class SegmentConnection:
    edges: list[SegmentEdge]
    page_info: PageInfo
    total_count: int

    @classmethod
    def of(cls, page: Page[SegmentRecord], total: int) -> SegmentConnection:
        return cls(
            edges=[
                SegmentEdge(node=Segment.of(record), cursor=cursor)
                for record, cursor in zip(page.items, page.cursors, strict=True)
            ],
            page_info=PageInfo.of(page),  # type: ignore[arg-type]
            total_count=total,
        )


@strawberry.type
class SegmentPreview:
    count: int
    sample: list[Annotated[Customer, strawberry.lazy("api.schema.customers")]]
