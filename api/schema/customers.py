"""Unified profiles: Customer, its identities and merges, and the customer list connection."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Collection
from datetime import date, datetime
from enum import Enum

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from api.context import Context
from api.ids import to_global_id
from api.pii import (
    MASKED_TEXT,
    free_text,
    pii,
    pii_attributes,
    pii_field_sources,
    pii_identities,
    without_pii_memberships,
    without_pii_segment_history,
)
from api.schema.activity import CustomerChannel, EventConnection, OrderConnection
from api.schema.common import Node, PageInfo
from api.schema.lifecycle import LifecycleStage, StageTransition
from api.schema.metrics import CustomerMetrics
from api.schema.segments import Segment, SegmentHistoryConnection
from api.schema.tags import (
    TagAssignment,
    TagDefinition,
    TagHistoryConnection,
    TagHistoryEdge,
    TagHistoryEntry,
)
from domain.activity import metrics as domain_metrics
from domain.history import HistoryQuery
from domain.identity.shared import SharedIdentifier as SharedIdentifierRecord
from domain.identity.survivorship import FieldProvenance
from domain.pagination import Page, PageRequest
from domain.profile import CustomerRecord, IdentityRecord, MergeView
from domain.tags import in_category


@strawberry.enum
class CustomerStatus(Enum):
    ACTIVE = "ACTIVE"
    MERGED = "MERGED"
    ERASED = "ERASED"


@strawberry.type
class Identity:
    type: str
    value: str
    source: str | None
    verified: bool
    first_seen_at: datetime
    last_seen_at: datetime

    @classmethod
    def of(cls, record: IdentityRecord) -> Identity:
        return cls(
            type=record.type,
            value=record.value,
            source=record.source,
            verified=record.verified,
            first_seen_at=record.first_seen_at,
            last_seen_at=record.last_seen_at,
        )


def page_size(context: Context, first: int | None) -> int:
    """A nested connection's page size, within the same limits as top-level ones."""
    settings = context.settings
    page = PageRequest(first=first).validated(settings.page_size_default, settings.page_size_max)
    return page.size


@strawberry.type(description="Where a profile field's value came from.")
class FieldSource:
    field: str = strawberry.field(description="firstName, city, ... or attributes.<key>.")
    source: str | None = strawberry.field(description="The source (channel) that set it.")
    at: datetime = strawberry.field(description="When it was set.")

    @classmethod
    def of(cls, record: FieldProvenance) -> FieldSource:
        return cls(field=record.field, source=record.source, at=record.at)


@strawberry.type
class Customer(Node):
    id: strawberry.ID
    status: CustomerStatus
    display_name: str | None = strawberry.field(extensions=pii())
    first_name: str | None = strawberry.field(extensions=pii())
    last_name: str | None = strawberry.field(extensions=pii())
    email: str | None = strawberry.field(extensions=pii())
    phone: str | None = strawberry.field(extensions=pii())
    gender: str | None
    birthday: date | None = strawberry.field(extensions=pii())
    locale: str | None
    country: str | None
    region: str | None
    city: str | None
    attributes: JSON = strawberry.field(extensions=pii_attributes())
    created_at: datetime
    updated_at: datetime
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    stage_entered_at: datetime | None
    uuid: strawberry.Private[uuid.UUID]
    stage_key: strawberry.Private[str | None]

    @classmethod
    def of(cls, record: CustomerRecord) -> Customer:
        return cls(
            id=strawberry.ID(to_global_id("Customer", record.id)),
            uuid=record.id,
            status=CustomerStatus(record.status),
            display_name=record.display_name,
            first_name=record.first_name,
            last_name=record.last_name,
            email=record.email,
            phone=record.phone,
            gender=record.gender,
            birthday=record.birthday,
            locale=record.locale,
            country=record.country,
            region=record.region,
            city=record.city,
            attributes=JSON(record.attributes),
            created_at=record.created_at,
            updated_at=record.updated_at,
            first_seen_at=record.first_seen_at,
            last_seen_at=record.last_seen_at,
            stage_key=record.stage,
            stage_entered_at=record.stage_entered_at,
        )

    @strawberry.field(extensions=pii_identities())
    async def identities(
        self, info: Info[Context, None], type: str | None = None
    ) -> list[Identity]:
        found = await info.context.loaders.identities.load(self.uuid)
        return [Identity.of(record) for record in found if type is None or record.type == type]

    @strawberry.field(extensions=without_pii_memberships())
    async def tags(
        self, info: Info[Context, None], category: str | None = None
    ) -> list[TagAssignment]:
        loaders = info.context.loaders
        assignments = await loaders.tag_assignments.load(self.uuid)
        tags = await loaders.tag_definitions.load_many([a.tag_id for a in assignments])
        return [
            TagAssignment.of(assignment, TagDefinition.of(tag))
            for assignment, tag in zip(assignments, tags, strict=True)
            if tag is not None and (category is None or in_category(tag.category, category))
        ]

    @strawberry.field(description="Every assignment, change, expiry and removal, newest first.")
    async def tag_history(
        self, info: Info[Context, None], first: int | None = None, after: str | None = None
    ) -> TagHistoryConnection:
        loaders = info.context.loaders
        page = await loaders.tag_history.load(
            HistoryQuery(self.uuid, page_size(info.context, first), after)
        )
        definitions = await loaders.tag_definitions.load_many([r.tag_id for r in page.items])
        edges = [
            TagHistoryEdge(
                node=TagHistoryEntry(
                    tag=TagDefinition.of(tag),
                    action=r.action,
                    old_value=r.old_value,
                    new_value=r.new_value,
                    source=r.source,
                    actor=r.actor,
                    at=r.at,
                ),
                cursor=cursor,
            )
            for r, tag, cursor in zip(page.items, definitions, page.cursors, strict=True)
            if tag is not None
        ]
        return TagHistoryConnection(edges=edges, page_info=PageInfo.of(page))  # type: ignore[arg-type]

    @strawberry.field
    async def stage(self, info: Info[Context, None]) -> LifecycleStage | None:
        if self.stage_key is None:
            return None
        record = (await info.context.loaders.stages()).get(self.stage_key)
        return LifecycleStage.of(record) if record else None

    @strawberry.field
    async def stage_history(self, info: Info[Context, None]) -> list[StageTransition]:
        loaders = info.context.loaders
        history = await loaders.stage_history.load(self.uuid)
        stages = await loaders.stages()
        return [StageTransition.of(record, stages) for record in history]

    @strawberry.field(
        description="Segments this customer belongs to now.",
        extensions=without_pii_memberships(),
    )
    async def segments(self, info: Info[Context, None]) -> list[Segment]:
        return [Segment.of(s) for s in await info.context.loaders.segments.load(self.uuid)]

    @strawberry.field(
        description="The segments this customer entered and left, newest first.",
        extensions=without_pii_segment_history(),
    )
    async def segment_history(
        self, info: Info[Context, None], first: int | None = None, after: str | None = None
    ) -> SegmentHistoryConnection:
        loaders = info.context.loaders
        query = HistoryQuery(self.uuid, page_size(info.context, first), after)
        page = await loaders.customer_segment_history.load(query)
        found = await loaders.segments_by_id.load_many([r.segment_id for r in page.items])
        shown = {record.id: Segment.of(record) for record in found if record is not None}
        return SegmentHistoryConnection.of(page, [shown[r.segment_id] for r in page.items])

    @strawberry.field
    async def metrics(self, info: Info[Context, None]) -> CustomerMetrics:
        found = await info.context.loaders.metrics.load(self.uuid)
        return CustomerMetrics.of(found or domain_metrics.EMPTY)

    @strawberry.field(
        description="Since when this profile's derived state (metrics, RULE tags, stage, "
        "materialized segments) waits for the worker after a write; null: up to date."
    )
    async def derived_state_behind_since(self, info: Info[Context, None]) -> datetime | None:
        return await info.context.loaders.derived_behind.load(self.uuid)

    @strawberry.field(description="True while derivedStateBehindSince is set.")
    async def derived_state_pending(self, info: Info[Context, None]) -> bool:
        return await info.context.loaders.derived_behind.load(self.uuid) is not None

    @strawberry.field(
        description="The channels this customer reached us through, most recently seen first."
    )
    async def channels(self, info: Info[Context, None]) -> list[CustomerChannel]:
        found = await info.context.loaders.channels.load(self.uuid)
        return [CustomerChannel.of(record) for record in found]

    @strawberry.field(description="Newest first.")
    async def events(
        self,
        info: Info[Context, None],
        type: str | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> EventConnection:
        size = page_size(info.context, first)
        query = HistoryQuery(self.uuid, size, after, type)
        return EventConnection.of(await info.context.loaders.events.load(query))

    @strawberry.field(description="Newest first.")
    async def orders(
        self, info: Info[Context, None], first: int | None = None, after: str | None = None
    ) -> OrderConnection:
        query = HistoryQuery(self.uuid, page_size(info.context, first), after)
        return OrderConnection.of(await info.context.loaders.orders.load(query))

    @strawberry.field(
        description="The source and time of each field's value (survivorship decides by them).",
        extensions=pii_field_sources(),
    )
    async def field_sources(self, info: Info[Context, None]) -> list[FieldSource]:
        found = await info.context.loaders.field_sources.load(self.uuid)
        return [FieldSource.of(record) for record in found]

    @strawberry.field(description="Profiles merged into this one.")
    async def merges(self, info: Info[Context, None]) -> list[MergeRecord]:
        return [MergeRecord.of(m) for m in await info.context.loaders.merges.load(self.uuid)]


@strawberry.type
class MergeRecord(Node):
    id: strawberry.ID
    merged_id: strawberry.ID = strawberry.field(
        description="The global id of the profile that was merged away."
    )
    reason: str = strawberry.field(extensions=free_text(MASKED_TEXT))
    actor: str | None
    merged_at: datetime
    undone_at: datetime | None
    via: str = strawberry.field(
        description="What joined the profiles: identify, manual, duplicate."
    )
    survivor_uuid: strawberry.Private[uuid.UUID]
    linked_by_ids: strawberry.Private[list[int]]

    @classmethod
    def of(cls, record: MergeView) -> MergeRecord:
        return cls(
            id=strawberry.ID(to_global_id("MergeRecord", record.id)),
            merged_id=strawberry.ID(to_global_id("Customer", record.merged_id)),
            reason=record.reason,
            actor=record.actor,
            merged_at=record.merged_at,
            undone_at=record.undone_at,
            via=record.via,
            survivor_uuid=record.survivor_id,
            linked_by_ids=record.linked_by,
        )

    @strawberry.field(
        description="The shared identifiers that joined the two profiles (empty unless via "
        "identify).",
        extensions=pii_identities(),
    )
    async def linked_by(self, info: Info[Context, None]) -> list[Identity]:
        found = await info.context.loaders.identities_by_id.load_many(self.linked_by_ids)
        return [Identity.of(record) for record in found if record is not None]

    @strawberry.field
    async def survivor(self, info: Info[Context, None]) -> Customer:
        record = await info.context.loaders.customers.load(self.survivor_uuid)
        if record is None:
            raise LookupError(f"merge survivor {self.survivor_uuid} is missing")
        return Customer.of(record)


@strawberry.type(description="An identifier found linking more people than its type's sharedLimit.")
class SharedIdentifier:
    type: str
    value: str
    shared_at: datetime = strawberry.field(description="When it was found shared.")
    customer_uuid: strawberry.Private[uuid.UUID]

    @classmethod
    def of(cls, record: SharedIdentifierRecord) -> SharedIdentifier:
        return cls(
            type=record.type,
            value=record.value,
            shared_at=record.shared_at,
            customer_uuid=record.customer_id,
        )

    @strawberry.field(description="The profile that holds it; it links no one else to it.")
    async def customer(self, info: Info[Context, None]) -> Customer | None:
        record = await info.context.loaders.customers.load(self.customer_uuid)
        return Customer.of(record) if record else None


@strawberry.type
class CustomerEdge:
    node: Customer
    cursor: str


@strawberry.type
class CustomerConnection:
    edges: list[CustomerEdge]
    page_info: PageInfo
    count: strawberry.Private[object]

    @classmethod
    async def of(
        cls,
        context: Context,
        result: Page[CustomerRecord],
        count: Callable[[], Awaitable[int]],
        fields: Collection[str],
    ) -> CustomerConnection:
        """A page of profiles, the lists `fields` selects prefetched (Loaders.prefetch);
        `count` runs only if totalCount is asked for."""
        await context.loaders.prefetch([record.id for record in result.items], fields)
        return cls(
            edges=[
                CustomerEdge(node=Customer.of(record), cursor=cursor)
                for record, cursor in zip(result.items, result.cursors, strict=True)
            ],
            page_info=PageInfo.of(result),  # type: ignore[arg-type]
            count=count,
        )

    @strawberry.field
    async def total_count(self) -> int:
        """Counted only when asked for: a count is a scan the page itself does not need."""
        return await self.count()  # type: ignore[operator,no-any-return]


@strawberry.enum
class CustomerSortField(Enum):
    CREATED_AT = "CREATED_AT"
    LAST_SEEN_AT = "LAST_SEEN_AT"
    DISPLAY_NAME = "DISPLAY_NAME"
    TOTAL_SPENT = "TOTAL_SPENT"
    STAGE_ENTERED_AT = "STAGE_ENTERED_AT"


@strawberry.enum
class SortDirection(Enum):
    ASC = "ASC"
    DESC = "DESC"


@strawberry.input
class CustomerOrder:
    field: CustomerSortField
    direction: SortDirection | None = SortDirection.ASC  # null: ascending
