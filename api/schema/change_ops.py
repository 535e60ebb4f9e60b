"""Root fields of change events: the live feed, and webhook administration (admins only)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry.types import Info

from api.context import Context
from api.permissions import ADMIN_ONLY, allow
from api.resolvers import changes as change_resolvers
from api.schema.changes import (
    ChangeEvent,
    DeleteWebhookPayload,
    Webhook,
    WebhookDeliveryConnection,
    WebhookDeliveryPayload,
    WebhookDeliveryStatus,
    WebhookPayload,
)
from domain.access.keys import Role
from domain.pagination import PageRequest


@strawberry.type
class ChangeQueries:
    @strawberry.field(extensions=allow(*ADMIN_ONLY))
    async def webhooks(self, info: Info[Context, None]) -> list[Webhook]:
        return await change_resolvers.list_webhooks(info.context)

    @strawberry.field(
        extensions=allow(*ADMIN_ONLY),
        description="Newest first; DEAD ones are those that ran out of attempts.",
    )
    async def webhook_deliveries(
        self,
        info: Info[Context, None],
        webhook: strawberry.ID | None = None,
        status: WebhookDeliveryStatus | None = None,  # type: ignore[valid-type]
        first: int | None = None,
        after: str | None = None,
    ) -> WebhookDeliveryConnection:
        page = PageRequest(first=first, after=after)
        return await change_resolvers.list_deliveries(info.context, webhook, status, page)


@strawberry.type
class ChangeMutations:
    @strawberry.mutation(
        extensions=allow(*ADMIN_ONLY),
        description="POSTs each event of `kinds` to `url`, signed with `secret` "
        "(X-C360-Signature: sha256=<HMAC-SHA256 of the body>).",
    )
    async def define_webhook(
        self, info: Info[Context, None], url: str, kinds: list[str], secret: str
    ) -> WebhookPayload:
        return await change_resolvers.define_webhook(info.context, url, kinds, secret)

    @strawberry.mutation(extensions=allow(*ADMIN_ONLY))
    async def delete_webhook(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> DeleteWebhookPayload:
        return await change_resolvers.delete_webhook(info.context, id)

    @strawberry.mutation(
        extensions=allow(*ADMIN_ONLY),
        description="Send a dead or delivered delivery again, with its original event id.",
    )
    async def replay_webhook_delivery(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> WebhookDeliveryPayload:
        return await change_resolvers.replay_delivery(info.context, id)


@strawberry.type
class ChangeSubscriptions:
    @strawberry.subscription(
        extensions=allow(*Role),
        description="Change events as they are dispatched. `segment`: events of the "
        "segment's members at the time, and its segment.entered / segment.exited events.",
    )
    async def changes(
        self,
        info: Info[Context, None],
        kinds: list[str] | None = None,
        customer: strawberry.ID | None = None,
        segment: strawberry.ID | None = None,
    ) -> AsyncGenerator[ChangeEvent, None]:
        async for event in change_resolvers.changes(info.context, kinds, customer, segment):
            yield event
