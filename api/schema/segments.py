"""Segments: saved conditions over profiles, their members and previews."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum
from functools import partial
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info
from strawberry.types.base import StrawberryList
from strawberry.types.lazy_type import LazyType

from api.compiled_reads import page_plan, spliced
from api.context import Context
from api.ids import parse_uuid_id, to_global_id
from api.lookahead import selected_below
from api.pii import no_pii_members, pii_condition
from api.schema.common import Node, PageInfo
from api.schema.insights import SegmentInsights
from domain import profile, profile_json
from domain.history import HistoryQuery
from domain.pagination import Page, PageRequest
from domain.segments import definitions as segments
from domain.segments.definitions import SegmentRecord
from domain.segments.history import SegmentHistoryRecord
from domain.segments.insights import insights

# api.schema.customers imports this module (Customer.segments returns Segment); this one
# refers to the profile types above it only lazily: strawberry resolves them when the schema
# is built, and a field looks its class up when it runs. Never by import (api.schema).
CUSTOMERS = "api.schema.customers"
LazyCustomer: Any = LazyType("Customer", CUSTOMERS)
LazyCustomerConnection: Any = LazyType("CustomerConnection", CUSTOMERS)


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
        graphql_type=LazyCustomerConnection,
    )
    async def members(
        self, info: Info[Context, None], first: int | None = None, after: str | None = None
    ) -> object:
        context = info.context
        settings = context.settings
        page = PageRequest(first=first, after=after).validated(
            settings.page_size_default, settings.page_size_max
        )
        filter_ = await segments.members_filter(context.db, self.uuid)
        plan = page_plan(info)
        if plan is not None and profile_json.page_compiles(segments.MEMBER_ORDER):
            found = await profile_json.customers_json(
                context.db, plan, segments.MEMBER_ORDER, page, filter_
            )
            return spliced(found)
        result = await profile.list_customers(context.db, segments.MEMBER_ORDER, page, filter_)
        count = partial(profile.count_customers, context.db, filter_)
        fields = selected_below(info, "edges", "node")
        return await LazyCustomerConnection.resolve_type().of(context, result, count, fields)

    @strawberry.field(
        description="Its members' distributions: stages, RFM segments, channels, cities. "
        "Refused to partners (FORBIDDEN) when the condition reads PII.",
        extensions=no_pii_members(),
    )
    async def insights(self, info: Info[Context, None]) -> SegmentInsights:
        return SegmentInsights.of(await insights(info.context.db, segment_id=self.uuid))

    @strawberry.field(
        description="Who entered and left it, newest first (materialized segments: a dynamic "
        "one has no history); `customer` keeps to one profile. Refused to partners "
        "(FORBIDDEN) when the condition reads PII.",
        extensions=no_pii_members(),
    )
    async def history(
        self,
        info: Info[Context, None],
        first: int | None = None,
        after: str | None = None,
        customer: strawberry.ID | None = None,
    ) -> SegmentHistoryConnection:
        settings = info.context.settings
        page_request = PageRequest(first=first).validated(
            settings.page_size_default, settings.page_size_max
        )
        who = parse_uuid_id(customer, "Customer", "customer") if customer is not None else None
        query = HistoryQuery(self.uuid, page_request.size, after, who)
        page = await info.context.loaders.segment_history.load(query)
        return SegmentHistoryConnection.of(page, [self] * len(page.items))


@strawberry.enum
class SegmentChange(Enum):
    ENTERED = "ENTERED"
    EXITED = "EXITED"


@strawberry.type
class SegmentHistoryEntry:
    change: SegmentChange
    at: datetime
    segment: Segment
    customer_uuid: strawberry.Private[uuid.UUID]

    @strawberry.field(graphql_type=LazyCustomer)
    async def customer(self, info: Info[Context, None]) -> object:
        """The profile as it is now (a merged-away one included): read for the page at once."""
        record = await info.context.loaders.customers.load(self.customer_uuid)
        if record is None:
            raise LookupError(f"segment history names a missing customer {self.customer_uuid}")
        return LazyCustomer.resolve_type().of(record)


@strawberry.type
class SegmentHistoryEdge:
    node: SegmentHistoryEntry
    cursor: str


@strawberry.type
class SegmentHistoryConnection:
    edges: list[SegmentHistoryEdge]
    page_info: PageInfo

    @classmethod
    def of(
        cls, page: Page[SegmentHistoryRecord], segments: list[Segment]
    ) -> SegmentHistoryConnection:
        """`segments`: the segment of each row of the page."""
        return cls(
            edges=[
                SegmentHistoryEdge(
                    node=SegmentHistoryEntry(
                        change=SegmentChange(row.action),
                        at=row.at,
                        segment=segment,
                        customer_uuid=row.customer_id,
                    ),
                    cursor=cursor,
                )
                for row, segment, cursor in zip(page.items, segments, page.cursors, strict=True)
            ],
            page_info=PageInfo.of(page),  # type: ignore[arg-type]
        )


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
    sample: list[object] = strawberry.field(graphql_type=StrawberryList(LazyCustomer))
