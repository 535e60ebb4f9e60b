"""Resolvers of change events and webhooks: parse ids, call the domain, map the outcome."""

from __future__ import annotations

from collections.abc import AsyncIterator

from api.context import Context
from api.ids import from_global_id, parse_uuid_id
from api.pii import change_masker, refuse_pii_segment, sees_pii
from api.schema.changes import (
    ChangeEvent,
    DeleteWebhookPayload,
    Webhook,
    WebhookDelivery,
    WebhookDeliveryConnection,
    WebhookDeliveryEdge,
    WebhookDeliveryPayload,
    WebhookPayload,
)
from api.schema.common import PageInfo
from domain.delivery import webhooks
from domain.delivery.feed import FeedFilter, watch
from domain.delivery.webhooks import DeliveryRecord, DeliveryStatus
from domain.errors import InvalidInput
from domain.pagination import PageRequest


def _delivery_id(global_id: str, field: str = "id") -> int:
    type_name, key = from_global_id(global_id, field)
    if type_name != "WebhookDelivery" or not (key.isascii() and key.isdigit() and len(key) < 19):
        raise InvalidInput(
            f"expected a WebhookDelivery id, got {global_id!r}", field=[field], code="INVALID_ID"
        )
    return int(key)


async def _with_webhooks(context: Context, records: list[DeliveryRecord]) -> list[WebhookDelivery]:
    """Each delivery with its webhook, the webhooks read once for all."""
    found = await webhooks.webhooks_by_id(context.db, list({r.webhook_id for r in records}))
    mapped = {webhook_id: Webhook.of(record) for webhook_id, record in found.items()}
    return [WebhookDelivery.of(r, mapped[r.webhook_id]) for r in records]


async def list_webhooks(context: Context) -> list[Webhook]:
    return [Webhook.of(record) for record in await webhooks.list_webhooks(context.db)]


async def list_deliveries(
    context: Context,
    webhook: str | None,
    status: DeliveryStatus | None,
    page: PageRequest,
) -> WebhookDeliveryConnection:
    settings = context.settings
    found = await webhooks.list_deliveries(
        context.db,
        page.validated(settings.page_size_default, settings.page_size_max),
        webhook_id=parse_uuid_id(webhook, "Webhook", "webhook") if webhook else None,
        status=status,
    )
    nodes = await _with_webhooks(context, found.items)
    return WebhookDeliveryConnection(
        edges=[
            WebhookDeliveryEdge(node=node, cursor=cursor)
            for node, cursor in zip(nodes, found.cursors, strict=True)
        ],
        page_info=PageInfo.of(found),  # type: ignore[arg-type]
    )


async def define_webhook(
    context: Context, url: str, kinds: list[str], secret: str
) -> WebhookPayload:
    record = await webhooks.define_webhook(context.db, url, kinds, secret, context.actor)
    return WebhookPayload(webhook=Webhook.of(record), errors=[])


async def delete_webhook(context: Context, id: str) -> DeleteWebhookPayload:
    await webhooks.delete_webhook(context.db, parse_uuid_id(id, "Webhook"))
    return DeleteWebhookPayload(deleted_id=id, errors=[])  # type: ignore[arg-type]


async def replay_delivery(context: Context, id: str) -> WebhookDeliveryPayload:
    record = await webhooks.replay_delivery(context.db, _delivery_id(id))
    [delivery] = await _with_webhooks(context, [record])
    return WebhookDeliveryPayload(delivery=delivery, errors=[])


async def changes(
    context: Context, kinds: list[str] | None, customer: str | None, segment: str | None
) -> AsyncIterator[ChangeEvent]:
    segment_id = parse_uuid_id(segment, "Segment", "segment") if segment else None
    feed = FeedFilter.of(
        kinds,
        parse_uuid_id(customer, "Customer", "customer") if customer else None,
        segment_id,
        sees_pii=sees_pii(context.principal),
    )
    await refuse_pii_segment(context, segment_id)
    shown = await change_masker(context)
    async for event in watch(context.db, context.state.broker, feed):
        yield ChangeEvent.of(shown(event))
