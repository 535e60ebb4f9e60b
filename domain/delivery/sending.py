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
dead. Claims and the recording of outcomes take turns across dispatchers (an advisory lock on
PostgreSQL), so each claim sees every lease before it; batches of one dispatcher, and of
several, are in flight side by side without ever holding two deliveries of one pair.

Cost: requests go out concurrently over pooled keep-alive connections (aiohttp), and a
batch's outcomes are recorded with one UPDATE per distinct outcome (for a batch of
successes, one per status code).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import aiohttp
from sqlalchemy import Exists, Select, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from domain.delivery.dispatch import EVENT_COLUMNS, ChangeRecord
from domain.delivery.webhooks import DeliveryStatus
from store.db import Database
from store.locking import hold_delivery_queue, skip_locked
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
    lanes: int = 1  # batches a dispatcher has in flight side by side, sharing `concurrency`

    @classmethod
    def of(cls, settings: DeliverySettings, lanes: int = 1) -> DeliveryPolicy:
        return cls(
            settings.webhook_timeout_seconds,
            settings.webhook_max_attempts,
            settings.webhook_backoff_seconds,
            settings.webhook_backoff_max_seconds,
            settings.webhook_concurrency,
            lanes,
        )

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failure: base, 2 x base, 4 x base, ... capped."""
        seconds = self.backoff_seconds * 2 ** (attempts - 1)
        return timedelta(seconds=min(seconds, self.backoff_max_seconds))

    def lease(self, requests: int, batch: int = 0) -> timedelta:
        """Long enough for `requests` sent one after the other to time out, after waiting
        their turns behind a batch of `batch` deliveries in each lane (at most `concurrency`
        requests in flight, each done within the timeout), and one more: a lease that ran
        out while its deliveries waited would let another claim send them twice, and a
        customer's later one before them."""
        rounds = math.ceil(batch * self.lanes / self.concurrency)
        return timedelta(seconds=self.timeout_seconds * (requests + rounds + 1))


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
    client: aiohttp.ClientSession,
    policy: DeliveryPolicy,
    *,
    batch_size: int,
    in_flight: asyncio.Semaphore | None = None,
    now: datetime | None = None,
) -> int:
    """Send one batch of due deliveries; returns how many requests were made. `in_flight`
    bounds the requests under way, shared by the batches a dispatcher sends side by side
    (default: `policy.concurrency` for this batch alone)."""
    claimed = await _claim(db, policy, batch_size, now or utcnow())
    if not claimed:
        return 0
    groups: dict[Any, list[_Claimed]] = defaultdict(list)
    for item in claimed:
        groups[item.key].append(item)
    outcomes: dict[int, _Outcome] = {}
    limit = in_flight or asyncio.Semaphore(policy.concurrency)
    # For a whole request, waiting for a pooled connection included (`in_flight` keeps that
    # wait away: no more requests are under way than connections pooled).
    timeout = aiohttp.ClientTimeout(total=policy.timeout_seconds)
    await asyncio.gather(
        *(_send_in_order(client, timeout, group, outcomes, limit) for group in groups.values())
    )
    await _record(db, policy, claimed, outcomes, now or utcnow())
    return len(outcomes)


async def _claim(
    db: Database, policy: DeliveryPolicy, batch_size: int, now: datetime
) -> list[_Claimed]:
    """The oldest due deliveries not waiting behind an earlier one of their webhook and
    customer, leased. Claims and records take turns (`hold_delivery_queue`), so an earlier
    delivery is either in this batch, or leased or backing off (this one waits behind it),
    or done."""

    async def work(session: AsyncSession) -> list[_Claimed]:
        await hold_delivery_queue(session)
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
        ids = [row.id for row in rows]
        longest = max(Counter((row.webhook_id, row.customer_id or row.id) for row in rows).values())
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(ids))
            .values(next_attempt_at=now + policy.lease(longest, len(ids)))
        )
        return await _load(session, ids)

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
    client: aiohttp.ClientSession,
    timeout: aiohttp.ClientTimeout,
    group: list[_Claimed],
    outcomes: dict[int, _Outcome],
    limit: asyncio.Semaphore,
) -> None:
    """One customer's deliveries to one webhook, oldest first, until one fails."""
    for item in group:
        async with limit:
            outcome = await _post(client, timeout, item)
        outcomes[item.id] = outcome
        if not outcome.ok:
            return


async def _post(
    client: aiohttp.ClientSession, timeout: aiohttp.ClientTimeout, item: _Claimed
) -> _Outcome:
    body = item.event.to_json()
    headers = {
        "Content-Type": "application/json",
        EVENT_ID_HEADER: str(item.event.event_id),
        EVENT_KIND_HEADER: item.event.kind,
        SIGNATURE_HEADER: sign(item.secret, body),
    }
    try:
        # The answer's body is not read: an unread one only costs its connection's reuse.
        async with client.post(
            item.url, data=body, headers=headers, timeout=timeout, allow_redirects=False
        ) as response:
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as error:
        return _Outcome(False, None, f"{type(error).__name__}: {error}"[:500])
    if 200 <= status < 300:
        return _Outcome(True, status, None)
    return _Outcome(False, status, f"HTTP {status}")


async def _record(
    db: Database,
    policy: DeliveryPolicy,
    claimed: Sequence[_Claimed],
    outcomes: dict[int, _Outcome],
    now: datetime,
) -> None:
    """Delivered, retried later or dead; the unsent rest of a stopped group is released.
    Deliveries given the same values share one UPDATE: a batch of successes is one statement
    per status code, not one per delivery."""
    same: dict[tuple[tuple[str, Any], ...], list[int]] = defaultdict(list)
    for item in claimed:
        same[tuple(_outcome_values(policy, item, outcomes.get(item.id), now).items())].append(
            item.id
        )

    async def work(session: AsyncSession) -> None:
        await hold_delivery_queue(session)
        for values, ids in same.items():
            changes = dict(values)
            if "last_attempt_at" in changes:  # an attempt was made
                changes["attempts"] = WebhookDelivery.attempts + 1
            await session.execute(
                update(WebhookDelivery).where(WebhookDelivery.id.in_(ids)).values(changes)
            )

    await db.transact(work)


def _outcome_values(
    policy: DeliveryPolicy, item: _Claimed, outcome: _Outcome | None, now: datetime
) -> dict[str, Any]:
    """The columns an outcome sets (attempts aside: one more whenever an attempt was made)."""
    if outcome is None:
        return {"next_attempt_at": now}
    values: dict[str, Any] = {
        "last_attempt_at": now,
        "last_status_code": outcome.status_code,
        "last_error": outcome.error,
    }
    attempts = item.attempts + 1
    if outcome.ok:
        return values | {"status": DeliveryStatus.DELIVERED.value, "delivered_at": now}
    if attempts >= policy.max_attempts:
        return values | {"status": DeliveryStatus.DEAD.value}
    return values | {"next_attempt_at": now + policy.backoff(attempts)}
