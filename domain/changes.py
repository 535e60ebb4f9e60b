"""Change events: written to the outbox in the same transaction as the change they describe,
so a rolled-back change leaves no event and a committed one is never lost.

Payloads carry ids, kinds and keys, never PII: consumers that may not see PII read them too.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.bulk_rows import copy_rows
from store.db import Database
from store.models import OutboxEvent
from store.types import utcnow

# Every kind of change event; webhooks and subscriptions may only ask for these.
OUTBOX = cast(Table, OutboxEvent.__table__)
KINDS = frozenset(
    {
        "customer.created",
        "customer.updated",
        "identity.linked",
        "customer.merged",
        "customer.unmerged",
        "customer.erased",
        "tag.assigned",
        "tag.removed",
        "stage.changed",
        "segment.entered",
        "segment.exited",
        # time-based triggers (domain.delivery.triggers)
        "customer.birthday",
        "customer.inactive",
        "cart.abandoned",
    }
)


@dataclass(frozen=True, slots=True)
class Change:
    kind: str
    customer_id: uuid.UUID | None
    data: dict[str, Any] = field(default_factory=dict)
    at: datetime | None = None


async def record_changes(session: AsyncSession, changes: Iterable[Change]) -> None:
    rows = [
        {
            "event_id": uuid.uuid4(),
            "kind": change.kind,
            "customer_id": change.customer_id,
            "payload": change.data,
            "created_at": change.at or utcnow(),
        }
        for change in changes
    ]
    if rows:  # COPY on PostgreSQL (its trigger still wakes the dispatchers)
        await copy_rows(session, OUTBOX, rows, columns=list(rows[0]))


@dataclass(frozen=True, slots=True)
class Backlog:
    """The change events not yet dispatched: how many, and when the oldest was written."""

    events: int
    oldest_at: datetime | None


async def outbox_backlog(db: Database) -> Backlog:
    """Read through the undispatched index: what the metrics endpoint shows as outbox lag."""
    waiting = OutboxEvent.dispatched_at.is_(None)
    async with db.read() as session:
        count = await session.scalar(select(func.count()).where(waiting))
        oldest = await session.scalar(
            select(OutboxEvent.created_at).where(waiting).order_by(OutboxEvent.id).limit(1)
        )
    return Backlog(int(count or 0), oldest)
