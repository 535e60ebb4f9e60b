"""Events and orders: the types, their connections, and the ingest inputs and payloads."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry
from strawberry.scalars import JSON

from api.ids import to_global_id
from api.schema.common import PageInfo, UserError
from api.schema.identity import IdentityInput
from domain.activity.channels import ChannelRecord
from domain.activity.ingest import EventRecord, OrderRecord
from domain.pagination import Page


@strawberry.type
class Event:
    id: strawberry.ID
    type: str
    channel: str | None
    occurred_at: datetime
    properties: JSON

    @classmethod
    def of(cls, record: EventRecord) -> Event:
        return cls(
            id=strawberry.ID(to_global_id("Event", record.id)),
            type=record.type,
            channel=record.channel,
            occurred_at=record.occurred_at,
            properties=JSON(record.properties),
        )


@strawberry.type
class Order:
    id: strawberry.ID
    external_id: str | None
    amount: Decimal
    currency: str
    status: str
    placed_at: datetime

    @classmethod
    def of(cls, record: OrderRecord) -> Order:
        return cls(
            id=strawberry.ID(to_global_id("Order", record.id)),
            external_id=record.external_id,
            amount=record.amount,
            currency=record.currency,
            status=record.status,
            placed_at=record.placed_at,
        )


@strawberry.type(
    description="One channel a customer reached us through: an event's channel or an order's "
    "source. `orders` counts completed orders."
)
class CustomerChannel:
    channel: str
    first_seen_at: datetime
    last_seen_at: datetime
    events: int
    orders: int

    @classmethod
    def of(cls, record: ChannelRecord) -> CustomerChannel:
        return cls(
            channel=record.channel,
            first_seen_at=record.first_seen_at,
            last_seen_at=record.last_seen_at,
            events=record.events,
            orders=record.orders,
        )


@strawberry.type
class EventEdge:
    node: Event
    cursor: str


@strawberry.type
class EventConnection:
    edges: list[EventEdge]
    page_info: PageInfo

    @classmethod
    def of(cls, page: Page[EventRecord]) -> EventConnection:
        edges = [
            EventEdge(node=Event.of(r), cursor=c)
            for r, c in zip(page.items, page.cursors, strict=True)
        ]
        return cls(edges=edges, page_info=PageInfo.of(page))  # type: ignore[arg-type]


@strawberry.type
class OrderEdge:
    node: Order
    cursor: str


@strawberry.type
class OrderConnection:
    edges: list[OrderEdge]
    page_info: PageInfo

    @classmethod
    def of(cls, page: Page[OrderRecord]) -> OrderConnection:
        edges = [
            OrderEdge(node=Order.of(r), cursor=c)
            for r, c in zip(page.items, page.cursors, strict=True)
        ]
        return cls(edges=edges, page_info=PageInfo.of(page))  # type: ignore[arg-type]


@strawberry.input
class EventInput:
    customer: IdentityInput
    type: str
    channel: str | None = None
    occurred_at: datetime | None = None
    properties: JSON | None = None
    idempotency_key: str | None = None


@strawberry.input
class OrderInput:
    customer: IdentityInput
    external_id: str
    amount: Decimal
    currency: str
    status: str | None = "completed"  # null: the default
    placed_at: datetime | None = None
    source: str | None = strawberry.field(
        default=None, description="Where the order comes from; externalId is unique per source."
    )


@strawberry.type
class TrackEventsPayload:
    accepted: int
    duplicates: int
    errors: list[UserError]


@strawberry.type
class RecordOrdersPayload:
    accepted: int
    duplicates: int
    errors: list[UserError]
