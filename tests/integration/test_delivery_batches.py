"""Webhook deliveries claimed and recorded in batches: batches in flight side by side (lanes of
one dispatcher, and several dispatchers) never send a delivery twice nor a customer's events
out of order; a batch's outcomes are recorded set-based; a claim waits its turn."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from typing import Any

import pytest
from sqlalchemy import event, select, text

from domain.delivery.webhooks import DeliveryStatus, define_webhook
from service.dispatcher import Dispatcher
from service.settings import Settings
from store.db import Database
from store.locking import hold_delivery_queue
from store.models import OutboxEvent, WebhookDelivery
from store.pubsub import InProcessBroker
from tests.integration.change_helpers import SECRET, created, emit, outstanding, updated
from tests.servers import Received, receiver

KINDS = ["customer.created", "customer.updated"]


def in_order_once(received: list[Received], event_ids: set[str]) -> None:
    """Every event exactly once, and each customer's in outbox order."""
    assert sorted(r.event_id for r in received) == sorted(event_ids), "lost or duplicated"
    per_customer: dict[str, list[int]] = defaultdict(list)
    for r in received:
        per_customer[r.json["customerId"]].append(r.json["sequence"])
    for sequences in per_customer.values():
        assert sequences == sorted(sequences)


async def all_event_ids(db: Database) -> set[str]:
    async with db.read() as session:
        return {str(e) for e in (await session.scalars(select(OutboxEvent.event_id))).all()}


async def test_batches_in_flight_side_by_side_send_each_delivery_once_in_order(
    db: Database, settings: Settings, backend: str
) -> None:
    customers = [uuid.uuid4() for _ in range(6)]
    small = settings.model_copy(update={"dispatch_batch_size": 4})
    second = Database.from_url(settings.database_url) if backend == "postgresql" else db
    async with receiver() as endpoint:
        await define_webhook(db, endpoint.url, KINDS, SECRET, "t")
        await emit(db, *(created(c) for c in customers))
        for round_ in range(4):
            await emit(db, *(updated(c, round_) for c in customers))
        try:
            async with (
                Dispatcher(db, InProcessBroker(), small) as one,
                Dispatcher(second, InProcessBroker(), small) as two,
            ):
                while await one.dispatch_once():
                    pass

                async def lane(dispatcher: Dispatcher) -> None:
                    while await outstanding(db):
                        if not await dispatcher.deliver_once():
                            await asyncio.sleep(0.005)

                # Three lanes of one dispatcher and one of another, all claiming at once.
                await asyncio.wait_for(
                    asyncio.gather(lane(one), lane(one), lane(one), lane(two)), 20
                )
        finally:
            if second is not db:
                await second.dispose()
    in_order_once(endpoint.at("/"), await all_event_ids(db))


async def test_a_batchs_outcomes_are_recorded_set_based_each_as_it_came_out(
    db: Database, settings: Settings
) -> None:
    """Twelve successes and one failure: the lease and the outcomes are three UPDATEs (one
    per distinct outcome), never one statement per delivery."""
    customers = [uuid.uuid4() for _ in range(13)]
    failing = str(customers[0])
    statements: list[tuple[str, bool]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, _params: Any, _ctx: Any, many: bool) -> None:
        if statement.startswith("UPDATE webhook_deliveries"):
            statements.append((statement, many))

    async with receiver() as endpoint:
        endpoint.answer = lambda r: 500 if r.json["customerId"] == failing else 204
        await define_webhook(db, endpoint.url, KINDS, SECRET, "t")
        await emit(db, *(created(c) for c in customers))
        async with Dispatcher(db, InProcessBroker(), settings) as dispatcher:
            await dispatcher.dispatch_once()
            event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
            try:
                assert await dispatcher.deliver_once() == 13
            finally:
                event.remove(db.engine.sync_engine, "before_cursor_execute", seen)

    assert len(statements) == 3
    assert not any(many for _, many in statements)
    async with db.read() as session:
        rows = (
            await session.execute(
                select(
                    WebhookDelivery.customer_id,
                    WebhookDelivery.status,
                    WebhookDelivery.attempts,
                    WebhookDelivery.last_status_code,
                    WebhookDelivery.delivered_at,
                    WebhookDelivery.last_error,
                )
            )
        ).all()
    by_customer = {str(row.customer_id): row for row in rows}
    stuck = by_customer.pop(failing)
    assert (stuck.status, stuck.attempts, stuck.last_status_code, stuck.last_error) == (
        DeliveryStatus.PENDING.value,
        1,
        500,
        "HTTP 500",
    )
    assert stuck.delivered_at is None
    assert {(r.status, r.attempts, r.last_status_code) for r in by_customer.values()} == {
        (DeliveryStatus.DELIVERED.value, 1, 204)
    }
    assert all(r.delivered_at is not None for r in by_customer.values())


async def test_a_claim_waits_for_another_claim_in_progress(
    db: Database, settings: Settings, backend: str
) -> None:
    """PostgreSQL: a claim under way elsewhere (the queue's lock held, a customer's first
    delivery locked) keeps this one waiting, where SKIP LOCKED alone would pass over that
    first delivery and send the customer's second one before it."""
    if backend != "postgresql":
        pytest.skip("SQLite serializes whole write transactions: claims cannot overlap")
    a = uuid.uuid4()
    holder = Database.from_url(settings.database_url)
    try:
        async with receiver() as endpoint:
            await define_webhook(db, endpoint.url, KINDS, SECRET, "t")
            await emit(db, created(a))
            await emit(db, updated(a))
            async with Dispatcher(db, InProcessBroker(), settings) as dispatcher:
                assert await dispatcher.dispatch_once() == 2
                async with holder.write() as session:
                    await hold_delivery_queue(session)
                    await session.execute(
                        text("SELECT id FROM webhook_deliveries ORDER BY id LIMIT 1 FOR UPDATE")
                    )
                    claiming = asyncio.create_task(dispatcher.deliver_once())
                    await asyncio.sleep(0.3)
                    assert not claiming.done()
                    assert endpoint.requests == []
                assert await claiming == 2
        kinds = [r.json["kind"] for r in endpoint.at("/")]
        assert kinds == ["customer.created", "customer.updated"]
    finally:
        await holder.dispose()
