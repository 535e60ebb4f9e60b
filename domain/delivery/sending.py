"""Sending queued webhook deliveries: signed POSTs, retried with exponential backoff, dead
after the last attempt; at-least-once, in order per customer and webhook.

Each request carries the event as JSON (`domain.delivery.dispatch.ChangeRecord.to_json`) and:

    X-C360-Event-Id:   the event's id; the same on every retry and replay (de-duplicate on it)
    X-C360-Event-Kind: e.g. customer.merged
    X-C360-Signature:  sha256=<hex HMAC-SHA256 of the raw body, keyed with the webhook secret>

Any 2xx answer is a delivery; anything else, or no answer within the timeout, is a failed
attempt. A claim leases the deliveries (their `next_attempt_at` moves past the time the
requests may take) in a short transaction; no transaction stays open across a request. A
dispatcher that dies mid-batch leaves leases that run out, and another sends them again.

Order: for one webhook and one customer, a delivery is claimed only when no earlier one is
still pending, and a batch sends its deliveries of that pair one after the other, stopping
at the first failure. A failing delivery holds back the later ones until it is delivered or
dead.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx
from sqlalchemy import Exists, Select, exists, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from domain.delivery.dispatch import EVENT_COLUMNS, ChangeRecord, ready_in_order
from domain.delivery.webhooks import DeliveryStatus
from store.db import Database
from store.locking import skip_locked
from store.models import OutboxEvent, Webhook, WebhookDelivery
from store.types import utcnow

SIGNATURE_HEADER = "X-C360-Signature"
EVENT_ID_HEADER = "X-C360-Event-Id"
EVENT_KIND_HEADER = "X-C360-Event-Kind"
PENDING = DeliveryStatus.PENDING.value


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: receivers compute it over the raw body and compare."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class DeliverySettings(Protocol):
    """What the policy reads of the service's settings (service.settings.Settings has it)."""

    webhook_timeout_seconds: float
    webhook_max_attempts: int
    webhook_backoff_seconds: float
    webhook_backoff_max_seconds: float
    webhook_concurrency: int


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    timeout_seconds: float
    max_attempts: int
    backoff_seconds: float
    backoff_max_seconds: float
    concurrency: int = 16

    @classmethod
    def of(cls, settings: DeliverySettings) -> DeliveryPolicy:
        return cls(
            settings.webhook_timeout_seconds,
            settings.webhook_max_attempts,
            settings.webhook_backoff_seconds,
            settings.webhook_backoff_max_seconds,
            settings.webhook_concurrency,
        )

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failure: base, 2 x base, 4 x base, ... capped."""
        seconds = self.backoff_seconds * 2 ** (attempts - 1)
        return timedelta(seconds=min(seconds, self.backoff_max_seconds))

    def lease(self, requests: int) -> timedelta:
        """Long enough for `requests` sent one after the other to time out, and one more."""
        return timedelta(seconds=self.timeout_seconds * (requests + 1))


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: int
    webhook_id: uuid.UUID
    attempts: int
    url: str
    secret: str
    event: ChangeRecord

    @property
    def key(self) -> tuple[uuid.UUID, uuid.UUID | int]:
        """Deliveries with one key go out in order; an event of no customer is its own key."""
        return self.webhook_id, self.event.customer_id or self.id


@dataclass(frozen=True, slots=True)
class _Outcome:
    ok: bool
    status_code: int | None
    error: str | None


async def deliver_due(
    db: Database,
    client: httpx.AsyncClient,
    policy: DeliveryPolicy,
    *,
    batch_size: int,
    now: datetime | None = None,
) -> int:
    """Send one batch of due deliveries; returns how many requests were made."""
    claimed = await _claim(db, policy, batch_size, now or utcnow())
    if not claimed:
        return 0
    groups: dict[Any, list[_Claimed]] = defaultdict(list)
    for item in claimed:
        groups[item.key].append(item)
    outcomes: dict[int, _Outcome] = {}
    limit = asyncio.Semaphore(policy.concurrency)
    await asyncio.gather(
        *(_send_in_order(client, policy, group, outcomes, limit) for group in groups.values())
    )
    await _record(db, policy, claimed, outcomes, now or utcnow())
    return len(outcomes)


async def _claim(
    db: Database, policy: DeliveryPolicy, batch_size: int, now: datetime
) -> list[_Claimed]:
    async def work(session: AsyncSession) -> list[_Claimed]:
        due: Select[*tuple[Any, ...]] = (
            select(WebhookDelivery.id, WebhookDelivery.webhook_id, WebhookDelivery.customer_id)
            .where(
                WebhookDelivery.status == PENDING,
                WebhookDelivery.next_attempt_at <= now,
                ~_waiting_behind(now),
            )
            .order_by(WebhookDelivery.id)
            .limit(batch_size)
        )
        rows = (await session.execute(skip_locked(session, due))).all()
        if not rows:
            return []
        held = await _held_elsewhere(session, rows)
        keyed = [
            (row.id, (row.webhook_id, row.customer_id) if row.customer_id else None) for row in rows
        ]
        ready = ready_in_order(keyed, held)
        if not ready:
            return []
        chosen = set(ready)
        longest = max(Counter(key or i for i, key in keyed if i in chosen).values())
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(ready))
            .values(next_attempt_at=now + policy.lease(longest))
        )
        return await _load(session, ready)

    return await db.transact(work)


def _waiting_behind(now: datetime) -> Exists:
    """An earlier delivery to the same webhook of the same customer is backing off or in
    flight. Such deliveries are never claimed, so that a customer stuck on a failing delivery
    cannot fill the batches and starve everyone else."""
    earlier = aliased(WebhookDelivery)
    return exists().where(
        earlier.webhook_id == WebhookDelivery.webhook_id,
        earlier.customer_id == WebhookDelivery.customer_id,
        earlier.status == PENDING,
        earlier.id < WebhookDelivery.id,
        earlier.next_attempt_at > now,
    )


async def _held_elsewhere(
    session: AsyncSession, rows: Sequence[Any]
) -> dict[tuple[uuid.UUID, uuid.UUID], int]:
    """Per (webhook, customer) of the batch, the first pending delivery not in the batch:
    claimed by another dispatcher at this moment, or past the batch's limit."""
    pairs = {(row.webhook_id, row.customer_id) for row in rows if row.customer_id is not None}
    if not pairs:
        return {}
    statement = (
        select(
            WebhookDelivery.webhook_id, WebhookDelivery.customer_id, func.min(WebhookDelivery.id)
        )
        .where(
            WebhookDelivery.status == PENDING,
            tuple_(WebhookDelivery.webhook_id, WebhookDelivery.customer_id).in_(pairs),
            WebhookDelivery.id.not_in([row.id for row in rows]),
        )
        .group_by(WebhookDelivery.webhook_id, WebhookDelivery.customer_id)
    )
    return {(w, c): first for w, c, first in await session.execute(statement) if c}


async def _load(session: AsyncSession, ids: Sequence[int]) -> list[_Claimed]:
    statement = (
        select(
            WebhookDelivery.id.label("delivery_id"),
            WebhookDelivery.webhook_id,
            WebhookDelivery.attempts,
            Webhook.url,
            Webhook.secret,
            *EVENT_COLUMNS,
        )
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.outbox_id)
        .where(WebhookDelivery.id.in_(ids))
        .order_by(WebhookDelivery.id)
    )
    return [
        _Claimed(
            row.delivery_id,
            row.webhook_id,
            row.attempts,
            row.url,
            row.secret,
            ChangeRecord.of(row[5:]),
        )
        for row in await session.execute(statement)
    ]


async def _send_in_order(
    client: httpx.AsyncClient,
    policy: DeliveryPolicy,
    group: list[_Claimed],
    outcomes: dict[int, _Outcome],
    limit: asyncio.Semaphore,
) -> None:
    """One customer's deliveries to one webhook, oldest first, until one fails."""
    for item in group:
        async with limit:
            outcome = await _post(client, policy, item)
        outcomes[item.id] = outcome
        if not outcome.ok:
            return


async def _post(client: httpx.AsyncClient, policy: DeliveryPolicy, item: _Claimed) -> _Outcome:
    body = item.event.to_json()
    headers = {
        "Content-Type": "application/json",
        EVENT_ID_HEADER: str(item.event.event_id),
        EVENT_KIND_HEADER: item.event.kind,
        SIGNATURE_HEADER: sign(item.secret, body),
    }
    try:
        response = await client.post(
            item.url, content=body, headers=headers, timeout=policy.timeout_seconds
        )
    except httpx.HTTPError as error:
        return _Outcome(False, None, f"{type(error).__name__}: {error}"[:500])
    if response.is_success:
        return _Outcome(True, response.status_code, None)
    return _Outcome(False, response.status_code, f"HTTP {response.status_code}")


async def _record(
    db: Database,
    policy: DeliveryPolicy,
    claimed: Sequence[_Claimed],
    outcomes: dict[int, _Outcome],
    now: datetime,
) -> None:
    """Delivered, retried later or dead; the unsent rest of a stopped group is released."""
    rows = []
    for item in claimed:
        outcome = outcomes.get(item.id)
        if outcome is None:
            rows.append({"id": item.id, "next_attempt_at": now})
            continue
        attempts = item.attempts + 1
        row: dict[str, Any] = {
            "id": item.id,
            "attempts": attempts,
            "last_attempt_at": now,
            "last_status_code": outcome.status_code,
            "last_error": outcome.error,
        }
        if outcome.ok:
            row |= {"status": DeliveryStatus.DELIVERED.value, "delivered_at": now}
        elif attempts >= policy.max_attempts:
            row |= {"status": DeliveryStatus.DEAD.value}
        else:
            row |= {"next_attempt_at": now + policy.backoff(attempts)}
        rows.append(row)

    by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_shape[tuple(sorted(row))].append(row)

    async def work(session: AsyncSession) -> None:
        for same in by_shape.values():
            await session.execute(update(WebhookDelivery), same)

    await db.transact(work)
