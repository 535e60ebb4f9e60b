"""Webhooks: admin-defined endpoints for change events, and the record of each delivery.

Defining, deleting and listing webhooks, reading deliveries and replaying one live here;
queueing deliveries is the dispatcher's (`enqueue_deliveries`), sending them is
`domain.delivery.sending`'s. A refused definition writes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.changes import KINDS
from domain.errors import InvalidInput, NotFound
from domain.pagination import Page, PageRequest, SortKey, apply_keyset, build_page
from domain.values import text_for
from store.db import Database
from store.models import OutboxEvent, Webhook, WebhookDelivery
from store.types import utcnow

SECRET_MIN_LENGTH = 16


class DeliveryStatus(Enum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    DEAD = "DEAD"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True, slots=True)
class WebhookRecord:
    """A webhook as it may be shown: never its secret."""

    id: uuid.UUID
    url: str
    kinds: tuple[str, ...]
    created_at: datetime
    created_by: str | None


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    id: int
    webhook_id: uuid.UUID
    event_id: uuid.UUID
    kind: str
    customer_id: uuid.UUID | None
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime


WEBHOOK_COLUMNS = (
    Webhook.id,
    Webhook.url,
    Webhook.kinds,
    Webhook.created_at,
    Webhook.created_by,
)
DELIVERY_COLUMNS: tuple[Any, ...] = (
    WebhookDelivery.id,
    WebhookDelivery.webhook_id,
    OutboxEvent.event_id,
    OutboxEvent.kind,
    WebhookDelivery.customer_id,
    WebhookDelivery.status,
    WebhookDelivery.attempts,
    WebhookDelivery.next_attempt_at,
    WebhookDelivery.last_attempt_at,
    WebhookDelivery.last_status_code,
    WebhookDelivery.last_error,
    WebhookDelivery.delivered_at,
    WebhookDelivery.created_at,
)


def _webhook(row: Any) -> WebhookRecord:
    return WebhookRecord(row.id, row.url, tuple(row.kinds), row.created_at, row.created_by)


def _delivery(row: Any) -> DeliveryRecord:
    status = DeliveryStatus(row.status)
    return DeliveryRecord(
        id=row.id,
        webhook_id=row.webhook_id,
        event_id=row.event_id,
        kind=row.kind,
        customer_id=row.customer_id,
        status=status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if status is DeliveryStatus.PENDING else None,
        last_attempt_at=row.last_attempt_at,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        delivered_at=row.delivered_at,
        created_at=row.created_at,
    )


def validate_url(url: str) -> str:
    """An absolute http(s) URL with a host; other schemes are never requested."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("the URL must be an absolute http:// or https:// URL", field=["url"])
    if any(c.isspace() for c in url):
        raise InvalidInput("the URL must be written without spaces", field=["url"])
    return text_for(Webhook.url, url, ["url"], code="INVALID_INPUT", what="the URL")


def validate_kinds(kinds: Sequence[str], field: str = "kinds") -> tuple[str, ...]:
    """Known kinds, each once, in the order given; an empty list is refused."""
    if not kinds:
        raise InvalidInput("name at least one kind of change", field=[field])
    for position, kind in enumerate(kinds):
        if kind not in KINDS:
            known = ", ".join(sorted(KINDS))
            raise InvalidInput(
                f"unknown kind {kind!r}; known kinds: {known}", field=[field, position]
            )
    return tuple(dict.fromkeys(kinds))


def _validate_secret(secret: str) -> str:
    if len(secret) < SECRET_MIN_LENGTH:
        raise InvalidInput(
            f"the secret must be at least {SECRET_MIN_LENGTH} characters", field=["secret"]
        )
    return text_for(Webhook.secret, secret, ["secret"], what="the secret")


async def define_webhook(
    db: Database, url: str, kinds: Sequence[str], secret: str, actor: str | None
) -> WebhookRecord:
    row = Webhook(
        id=uuid.uuid4(),
        url=validate_url(url),
        kinds=list(validate_kinds(kinds)),
        secret=_validate_secret(secret),
        created_at=utcnow(),
        created_by=actor,
    )

    async def work(session: AsyncSession) -> WebhookRecord:
        session.add(row)
        await session.flush()
        return _webhook(row)

    return await db.transact(work)


async def delete_webhook(db: Database, webhook_id: uuid.UUID) -> None:
    """Stop sending to it: its pending deliveries are cancelled, its history kept."""

    async def work(session: AsyncSession) -> None:
        now = utcnow()
        deleted = await session.execute(
            update(Webhook)
            .where(Webhook.id == webhook_id, Webhook.deleted_at.is_(None))
            .values(deleted_at=now)
        )
        if deleted.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFound("no such webhook", field=["id"])
        await session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.webhook_id == webhook_id,
                WebhookDelivery.status == DeliveryStatus.PENDING.value,
            )
            .values(status=DeliveryStatus.CANCELLED.value)
        )

    await db.transact(work)


async def list_webhooks(db: Database) -> list[WebhookRecord]:
    statement = (
        select(*WEBHOOK_COLUMNS).where(Webhook.deleted_at.is_(None)).order_by(Webhook.created_at)
    )
    async with db.read() as session:
        return [_webhook(row) for row in await session.execute(statement)]


async def webhooks_by_id(db: Database, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, WebhookRecord]:
    """Deleted ones included: their deliveries still name them."""
    async with db.read() as session:
        rows = await session.execute(select(*WEBHOOK_COLUMNS).where(Webhook.id.in_(ids)))
        return {row.id: _webhook(row) for row in rows}


async def list_deliveries(
    db: Database,
    page: PageRequest,
    *,
    webhook_id: uuid.UUID | None = None,
    status: DeliveryStatus | None = None,
) -> Page[DeliveryRecord]:
    """Newest first."""
    statement = select(*DELIVERY_COLUMNS).join(
        OutboxEvent, OutboxEvent.id == WebhookDelivery.outbox_id
    )
    if webhook_id is not None:
        statement = statement.where(WebhookDelivery.webhook_id == webhook_id)
    if status is not None:
        statement = statement.where(WebhookDelivery.status == status.value)
    keys = [SortKey(WebhookDelivery.id, descending=True, parse=int)]
    async with db.read() as session:
        rows = (await session.execute(apply_keyset(statement, keys, page))).all()
    return build_page([_delivery(row) for row in rows], lambda d: [d.id], page)


async def replay_delivery(
    db: Database, delivery_id: int, now: datetime | None = None
) -> DeliveryRecord:
    """Send a dead (or delivered) delivery again, from its first attempt, as soon as the
    dispatcher gets to it. It goes out with its original event id, so a receiver that
    already has it can tell; it may arrive after later events of the same customer."""

    async def work(session: AsyncSession) -> DeliveryRecord:
        found = (
            await session.execute(
                select(WebhookDelivery.status, Webhook.deleted_at)
                .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                .where(WebhookDelivery.id == delivery_id)
            )
        ).first()
        if found is None:
            raise NotFound("no such webhook delivery", field=["id"])
        if found.deleted_at is not None:
            raise InvalidInput("its webhook was deleted", field=["id"])
        if found.status == DeliveryStatus.PENDING.value:
            raise InvalidInput("this delivery is still pending", field=["id"])
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(
                status=DeliveryStatus.PENDING.value,
                attempts=0,
                next_attempt_at=now or utcnow(),
                delivered_at=None,
            )
        )
        row = (
            await session.execute(
                select(*DELIVERY_COLUMNS)
                .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.outbox_id)
                .where(WebhookDelivery.id == delivery_id)
            )
        ).one()
        return _delivery(row)

    return await db.transact(work)


async def enqueue_deliveries(
    session: AsyncSession,
    events: Sequence[tuple[int, str, uuid.UUID | None]],
    now: datetime,
) -> int:
    """Queue each (outbox id, kind, customer) for every live webhook that wants its kind."""
    webhooks = (
        await session.execute(select(Webhook.id, Webhook.kinds).where(Webhook.deleted_at.is_(None)))
    ).all()
    rows = [
        {
            "webhook_id": webhook.id,
            "outbox_id": outbox_id,
            "customer_id": customer_id,
            "status": DeliveryStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for outbox_id, kind, customer_id in events
        for webhook in webhooks
        if kind in webhook.kinds
    ]
    if rows:
        await session.execute(insert(WebhookDelivery), rows)
    return len(rows)


async def deliveries_waiting(db: Database) -> dict[DeliveryStatus, int]:
    """PENDING and DEAD deliveries, counted through the status index (DELIVERED and CANCELLED
    are history, which only grows: not counted on every scrape of the metrics)."""
    waiting = (DeliveryStatus.PENDING, DeliveryStatus.DEAD)
    async with db.read() as session:
        rows = await session.execute(
            select(WebhookDelivery.status, func.count())
            .where(WebhookDelivery.status.in_([status.value for status in waiting]))
            .group_by(WebhookDelivery.status)
        )
        found = {DeliveryStatus(status): int(count) for status, count in rows}
    return {status: found.get(status, 0) for status in waiting}
