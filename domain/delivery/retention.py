"""Pruning the outbox: change events that went out longer ago than the retention are deleted,
a bounded batch per transaction, so the table holds recent history and the work in hand.

An event is done with when it was dispatched before the cutoff and every webhook delivery made
of it was delivered before the cutoff (or cancelled with its webhook): those deliveries go with
it (they name it). A pending, failing or DEAD delivery keeps its event, since sending or
replaying it needs the payload; an undispatched event is never pruned.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import Database
from store.models import OutboxEvent, WebhookDelivery
from store.types import utcnow

PRUNE_BATCH_SIZE = 1000
KEPT = ("PENDING", "DEAD")  # deliveries that still need their event (CANCELLED ones do not)


async def prune_outbox(
    db: Database,
    *,
    retention: timedelta,
    batch_size: int = PRUNE_BATCH_SIZE,
    now: datetime | None = None,
) -> int:
    """Delete one batch of the oldest events done with before `now - retention`; how many."""
    cutoff = (now or utcnow()) - retention

    async def work(session: AsyncSession) -> int:
        unfinished = exists().where(
            WebhookDelivery.outbox_id == OutboxEvent.id,
            or_(WebhookDelivery.status.in_(KEPT), WebhookDelivery.delivered_at >= cutoff),
        )
        done = (
            select(OutboxEvent.id)
            .where(OutboxEvent.dispatched_at < cutoff, ~unfinished)
            .order_by(OutboxEvent.id)
            .limit(batch_size)
        )
        ids = list((await session.scalars(done)).all())
        if ids:
            await session.execute(delete(WebhookDelivery).where(WebhookDelivery.outbox_id.in_(ids)))
            await session.execute(delete(OutboxEvent).where(OutboxEvent.id.in_(ids)))
        return len(ids)

    return await db.transact(work)
