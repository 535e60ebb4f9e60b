"""Mutation resolvers for ingesting events and orders."""

from __future__ import annotations

from api.context import Context
from api.schema.activity import EventInput, OrderInput, RecordOrdersPayload, TrackEventsPayload
from api.schema.common import UserError
from domain.activity import ingest as activity
from domain.errors import InvalidInput


def _too_large(context: Context, count: int, name: str) -> list[UserError]:
    limit = context.settings.batch_size_max
    if count <= limit:
        return []
    error = InvalidInput(
        f"a batch holds at most {limit} items", field=[name], code="BATCH_TOO_LARGE"
    )
    return [UserError.of(error)]


async def track_events(context: Context, events: list[EventInput]) -> TrackEventsPayload:
    if refused := _too_large(context, len(events), "events"):
        return TrackEventsPayload(accepted=0, duplicates=0, errors=refused)
    items = [
        activity.EventItem(
            identity=(e.customer.type, e.customer.value),
            type=e.type,
            channel=e.channel,
            occurred_at=e.occurred_at,
            properties=e.properties,
            idempotency_key=e.idempotency_key,
        )
        for e in events
    ]
    outcome = await activity.track_events(
        context.db,
        items,
        region=context.settings.default_phone_region,
        actor=context.actor,
        erased=context.erasure,
        retained_months=context.settings.event_retention_months,
    )
    return TrackEventsPayload(
        accepted=outcome.accepted,
        duplicates=outcome.duplicates,
        errors=[UserError.of(e) for e in outcome.errors],
    )


async def record_orders(context: Context, orders: list[OrderInput]) -> RecordOrdersPayload:
    if refused := _too_large(context, len(orders), "orders"):
        return RecordOrdersPayload(accepted=0, duplicates=0, errors=refused)
    items = [
        activity.OrderItem(
            identity=(o.customer.type, o.customer.value),
            external_id=o.external_id,
            amount=o.amount,
            currency=o.currency,
            status="completed" if o.status is None else o.status,
            placed_at=o.placed_at,
            source=o.source,
        )
        for o in orders
    ]
    settings = context.settings
    outcome = await activity.record_orders(
        context.db,
        items,
        region=settings.default_phone_region,
        actor=context.actor,
        rates=settings.currency_rates,
        erased=context.erasure,
    )
    return RecordOrdersPayload(
        accepted=outcome.accepted,
        duplicates=outcome.duplicates,
        errors=[UserError.of(e) for e in outcome.errors],
    )
