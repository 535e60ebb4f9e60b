"""Delivered change events leave the outbox after the retention, a bounded batch at a time;
what is still pending, failing, dead or recent stays."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select

from domain.delivery.retention import prune_outbox
from service.dispatcher import Dispatcher
from service.settings import Settings
from store.db import Database
from store.models import OutboxEvent, Webhook, WebhookDelivery
from store.pubsub import InProcessBroker

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
WEEK = timedelta(days=7)


async def add_event(
    db: Database, dispatched_days_ago: float | None, *deliveries: tuple[str, float | None]
) -> int:
    """An outbox event, dispatched so long ago (None: not yet), with deliveries (status,
    delivered so many days ago) to one webhook each."""
    at = None if dispatched_days_ago is None else NOW - timedelta(days=dispatched_days_ago)
    async with db.write() as session:
        event_id = await session.scalar(
            insert(OutboxEvent)
            .values(
                event_id=uuid.uuid4(),
                kind="customer.created",
                payload={},
                created_at=NOW - WEEK * 3,
                dispatched_at=at,
            )
            .returning(OutboxEvent.id)
        )
        for status, delivered_days_ago in deliveries:
            webhook = uuid.uuid4()
            await session.execute(
                insert(Webhook).values(
                    id=webhook, url="https://example.com/h", kinds=[], secret="x" * 20
                )
            )
            delivered = (
                None if delivered_days_ago is None else NOW - timedelta(days=delivered_days_ago)
            )
            await session.execute(
                insert(WebhookDelivery).values(
                    webhook_id=webhook, outbox_id=event_id, status=status, delivered_at=delivered
                )
            )
    assert event_id is not None
    return event_id


async def remaining(db: Database) -> tuple[list[int], int]:
    async with db.read() as session:
        events = list(
            (await session.scalars(select(OutboxEvent.id).order_by(OutboxEvent.id))).all()
        )
        deliveries = len((await session.scalars(select(WebhookDelivery.id))).all())
    return events, deliveries


async def test_events_done_with_before_the_retention_are_pruned_in_bounded_batches(
    db: Database,
) -> None:
    for _ in range(3):
        await add_event(db, 10)
    await add_event(db, 9, ("DELIVERED", 9), ("CANCELLED", None))
    recent = await add_event(db, 2)
    delivered_recently = await add_event(db, 9, ("DELIVERED", 1))
    undispatched = await add_event(db, None)
    dead = await add_event(db, 9, ("DELIVERED", 9), ("DEAD", None))
    pending = await add_event(db, 9, ("PENDING", None))

    prune = lambda: prune_outbox(db, retention=WEEK, batch_size=2, now=NOW)  # noqa: E731
    assert [await prune(), await prune(), await prune()] == [2, 2, 0]
    events, deliveries = await remaining(db)
    assert events == [recent, delivered_recently, undispatched, dead, pending]
    assert deliveries == 4  # delivered_recently's, dead's two, pending's


async def test_the_dispatcher_prunes_by_the_retention_setting(
    db: Database, settings: Settings
) -> None:
    kept = await add_event(db, 0.5)
    await add_event(db, 2)
    dispatcher = Dispatcher(
        db, InProcessBroker(), settings.model_copy(update={"outbox_retention_days": 1.0})
    )
    assert await dispatcher.prune_once(now=NOW) == 1
    assert await dispatcher.prune_once(now=NOW) == 0
    assert (await remaining(db))[0] == [kept]
