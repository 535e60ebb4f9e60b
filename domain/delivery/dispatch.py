"""Moving committed change events out of the outbox: to live subscribers and into webhook
deliveries, in order per customer, each event once.

A dispatcher claims the oldest undispatched rows (PostgreSQL: FOR UPDATE SKIP LOCKED, so
several dispatchers split the work), queues a delivery for every webhook that wants each
event, publishes the events to the broker and marks them dispatched — all before its
transaction commits. A dispatcher that dies mid-batch rolls back and the rows are claimed
again: subscribers may then see an event twice (the event id tells). Webhook deliveries are
durable rows from then on (`domain.delivery.sending`); the live feed is only as reliable as
the broker (`store.pubsub`).

Order per customer holds across dispatchers: a claimed event goes out only when no earlier
undispatched event of its customer is held by another dispatcher (`ready_in_order`). That
earlier event is published before it is marked dispatched, so whoever sends the later one
sends it after. "Earlier" is outbox id order, which is commit order for one customer as long as
writers to a profile serialize on it (identify and merges lock its row): a later id committed
first would go out first.

This module never talks HTTP; webhook requests are `domain.delivery.sending`'s.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import orjson
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.delivery.webhooks import enqueue_deliveries
from store.db import Database
from store.locking import skip_locked
from store.models import OutboxEvent
from store.pubsub import Broker, PublishError
from store.types import utcnow

log = logging.getLogger("c360.dispatch")
K = TypeVar("K", bound=Hashable)

EVENT_COLUMNS: tuple[Any, ...] = (
    OutboxEvent.id,
    OutboxEvent.event_id,
    OutboxEvent.kind,
    OutboxEvent.customer_id,
    OutboxEvent.created_at,
    OutboxEvent.payload,
)


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    """A change event as its consumers see it; `sequence` is its place in the outbox."""

    sequence: int
    event_id: uuid.UUID
    kind: str
    customer_id: uuid.UUID | None
    at: datetime
    data: dict[str, Any]

    @classmethod
    def of(cls, row: Any) -> ChangeRecord:
        """From a row of `EVENT_COLUMNS`."""
        return cls(*row)

    def to_json(self) -> bytes:
        """The one wire form: published to subscribers and posted to webhooks as is."""
        return orjson.dumps(
            {
                "id": str(self.event_id),
                "sequence": self.sequence,
                "kind": self.kind,
                "customerId": str(self.customer_id) if self.customer_id else None,
                "at": self.at.isoformat(),
                "data": self.data,
            }
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> ChangeRecord:
        body = orjson.loads(raw)
        return cls(
            sequence=body["sequence"],
            event_id=uuid.UUID(body["id"]),
            kind=body["kind"],
            customer_id=uuid.UUID(body["customerId"]) if body["customerId"] else None,
            at=datetime.fromisoformat(body["at"]),
            data=body["data"],
        )


def ready_in_order(claimed: Sequence[tuple[int, K | None]], held: Mapping[K, int]) -> list[int]:
    """The claimed ids that may go out now, given for each key the first id of that key that
    is still pending but not ours: per key, only what comes before it (keyless ids always)."""
    return [
        item_id for item_id, key in claimed if key is None or key not in held or item_id < held[key]
    ]


async def dispatch_outbox(
    db: Database, broker: Broker, *, batch_size: int, now: datetime | None = None
) -> int:
    """Dispatch one batch of the oldest undispatched events; returns how many went out."""

    async def work(session: AsyncSession) -> int:
        claim = (
            select(*EVENT_COLUMNS)
            .where(OutboxEvent.dispatched_at.is_(None))
            .order_by(OutboxEvent.id)
            .limit(batch_size)
        )
        rows = (await session.execute(skip_locked(session, claim))).all()
        if not rows:
            return 0
        held = await _held_elsewhere(session, rows)
        ready_ids = set(ready_in_order([(row.id, row.customer_id) for row in rows], held))
        events = [ChangeRecord.of(row) for row in rows if row.id in ready_ids]
        if not events:
            return 0
        at = now or utcnow()
        await enqueue_deliveries(session, [(e.sequence, e.kind, e.customer_id) for e in events], at)
        await session.execute(
            update(OutboxEvent).where(OutboxEvent.id.in_(ready_ids)).values(dispatched_at=at)
        )
        await _publish(broker, events)
        return len(events)

    return await db.transact(work)


async def _held_elsewhere(session: AsyncSession, rows: Sequence[Any]) -> dict[uuid.UUID, int]:
    """Per customer of the batch, the first undispatched event that is not in the batch."""
    customers = {row.customer_id for row in rows if row.customer_id is not None}
    if not customers:
        return {}
    statement = (
        select(OutboxEvent.customer_id, func.min(OutboxEvent.id))
        .where(
            OutboxEvent.dispatched_at.is_(None),
            OutboxEvent.customer_id.in_(customers),
            # Only an earlier event holds one of ours back: bounded so, the scan of the
            # undispatched index stops at the batch's last id.
            OutboxEvent.id < max(row.id for row in rows),
            OutboxEvent.id.not_in([row.id for row in rows]),
        )
        .group_by(OutboxEvent.customer_id)
    )
    return {customer: first for customer, first in await session.execute(statement) if customer}


async def _publish(broker: Broker, events: Sequence[ChangeRecord]) -> None:
    """Live subscribers get the batch now; if the broker is down they miss it (their feed is
    down too), but webhooks must not wait for it: their deliveries are already queued."""
    try:
        await broker.publish([event.to_json().decode() for event in events])
    except PublishError as error:
        log.warning("dispatch: %d events not published to subscribers: %s", len(events), error)
