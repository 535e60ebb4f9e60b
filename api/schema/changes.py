"""Change events and webhooks: the types of subscriptions and webhook administration."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from api.ids import to_global_id
from api.schema.common import PageInfo, UserError
from domain.delivery.dispatch import ChangeRecord
from domain.delivery.webhooks import DeliveryRecord, DeliveryStatus, WebhookRecord

WebhookDeliveryStatus = strawberry.enum(DeliveryStatus, name="WebhookDeliveryStatus")


@strawberry.type(
    description="A change to a profile. `id` is the event id (webhooks send it as "
    "X-C360-Event-Id): the same event delivered twice has the same id."
)
class ChangeEvent:
    id: strawberry.ID
    kind: str
    customer_id: strawberry.ID | None
    at: datetime
    data: JSON

    @classmethod
    def of(cls, event: ChangeRecord) -> ChangeEvent:
        return cls(
            id=strawberry.ID(str(event.event_id)),
            kind=event.kind,
            customer_id=(
                strawberry.ID(to_global_id("Customer", event.customer_id))
                if event.customer_id
                else None
            ),
            at=event.at,
            data=JSON(event.data),
        )


@strawberry.type(
    description="An endpoint that receives signed change events; never shows its secret."
)
class Webhook:
    id: strawberry.ID
    url: str
    kinds: list[str]
    created_at: datetime
    created_by: str | None

    @classmethod
    def of(cls, record: WebhookRecord) -> Webhook:
        return cls(
            id=strawberry.ID(to_global_id("Webhook", record.id)),
            url=record.url,
            kinds=list(record.kinds),
            created_at=record.created_at,
            created_by=record.created_by,
        )


@strawberry.type(description="One event sent (or to be sent) to one webhook.")
class WebhookDelivery:
    id: strawberry.ID
    webhook: Webhook
    event_id: strawberry.ID
    kind: str
    customer_id: strawberry.ID | None
    status: WebhookDeliveryStatus  # type: ignore[valid-type]
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, record: DeliveryRecord, webhook: Webhook) -> WebhookDelivery:
        return cls(
            id=strawberry.ID(to_global_id("WebhookDelivery", record.id)),
            webhook=webhook,
            event_id=strawberry.ID(str(record.event_id)),
            kind=record.kind,
            customer_id=(
                strawberry.ID(to_global_id("Customer", record.customer_id))
                if record.customer_id
                else None
            ),
            status=record.status,
            attempts=record.attempts,
            next_attempt_at=record.next_attempt_at,
            last_attempt_at=record.last_attempt_at,
            last_status_code=record.last_status_code,
            last_error=record.last_error,
            delivered_at=record.delivered_at,
            created_at=record.created_at,
        )


@strawberry.type
class WebhookDeliveryEdge:
    node: WebhookDelivery
    cursor: str


@strawberry.type
class WebhookDeliveryConnection:
    edges: list[WebhookDeliveryEdge]
    page_info: PageInfo


@strawberry.type
class WebhookPayload:
    webhook: Webhook | None
    errors: list[UserError]


@strawberry.type
class DeleteWebhookPayload:
    deleted_id: strawberry.ID | None
    errors: list[UserError]


@strawberry.type
class WebhookDeliveryPayload:
    delivery: WebhookDelivery | None
    errors: list[UserError]
