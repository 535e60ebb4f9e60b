"""Arranging change events and running dispatchers until the work is done."""

from __future__ import annotations

import asyncio
import time
import uuid

from sqlalchemy import func, select

from domain.changes import Change, record_changes
from service.dispatcher import Dispatcher
from store.db import Database
from store.models import OutboxEvent, WebhookDelivery

SECRET = "s3cret-for-webhook-tests"


async def emit(db: Database, *changes: Change) -> None:
    """Commit `changes` to the outbox in one transaction, as a domain write would."""
    async with db.write() as session:
        await record_changes(session, changes)


def created(customer_id: uuid.UUID) -> Change:
    return Change("customer.created", customer_id, {"customerId": str(customer_id)})


def updated(customer_id: uuid.UUID, n: int = 0) -> Change:
    return Change("customer.updated", customer_id, {"customerId": str(customer_id), "n": n})


async def outstanding(db: Database) -> int:
    """Undispatched events plus pending deliveries."""
    async with db.read() as session:
        events = await session.scalar(
            select(func.count()).where(OutboxEvent.dispatched_at.is_(None))
        )
        deliveries = await session.scalar(
            select(func.count()).where(WebhookDelivery.status == "PENDING")
        )
    return (events or 0) + (deliveries or 0)


async def drain(db: Database, *dispatchers: Dispatcher, timeout: float = 8.0) -> None:
    """Run the dispatchers side by side until nothing is left to dispatch or deliver."""
    deadline = time.monotonic() + timeout

    async def work(dispatcher: Dispatcher) -> None:
        while time.monotonic() < deadline:
            busy = await dispatcher.dispatch_once() + await dispatcher.deliver_once()
            if not busy:
                if not await outstanding(db):
                    return
                await asyncio.sleep(0.01)
        raise AssertionError("dispatchers did not finish in time")

    await asyncio.gather(*(work(d) for d in dispatchers))
