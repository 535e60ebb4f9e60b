"""Root fields for ingesting activity: trackEvents and recordOrders."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from api.context import Context
from api.permissions import WRITERS_OF_IDENTITY, allow
from api.resolvers import activity as activity_resolvers
from api.schema.activity import EventInput, OrderInput, RecordOrdersPayload, TrackEventsPayload


@strawberry.type
class ActivityMutations:
    @strawberry.mutation(extensions=allow(*WRITERS_OF_IDENTITY))
    async def track_events(
        self, info: Info[Context, None], events: list[EventInput]
    ) -> TrackEventsPayload:
        return await activity_resolvers.track_events(info.context, events)

    @strawberry.mutation(extensions=allow(*WRITERS_OF_IDENTITY))
    async def record_orders(
        self, info: Info[Context, None], orders: list[OrderInput]
    ) -> RecordOrdersPayload:
        return await activity_resolvers.record_orders(info.context, orders)
