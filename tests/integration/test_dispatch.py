"""The outbox: written with the change or not at all, dispatched once, in order per customer,
also with two dispatchers at once."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict

import pytest
from sqlalchemy import func, select, text

from domain.delivery.dispatch import ChangeRecord, dispatch_outbox
from domain.delivery.webhooks import define_webhook
from domain.identity import linking as identity
from domain.identity.linking import IdentifyInput
from service.dispatcher import Dispatcher
from service.settings import Settings
from store.db import Database
from store.models import Customer, OutboxEvent
from store.pubsub import InProcessBroker
from tests.integration.change_helpers import SECRET, created, drain, emit, updated
from tests.servers import receiver


async def count(db: Database, model: type) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_committed_change_is_published_once_in_order_and_marked_dispatched(
    db: Database,
) -> None:
    broker = InProcessBroker()
    a, b = uuid.uuid4(), uuid.uuid4()
    await emit(db, created(a), updated(a, 1))
    await emit(db, created(b), updated(a, 2))
    async with broker.subscribe() as feed:
        assert await dispatch_outbox(db, broker, batch_size=10) == 4
        assert await dispatch_outbox(db, broker, batch_size=10) == 0
        got = [ChangeRecord.from_json(await anext(feed)) for _ in range(4)]
    assert [(e.kind, e.customer_id) for e in got] == [
        ("customer.created", a),
        ("customer.updated", a),
        ("customer.created", b),
        ("customer.updated", a),
    ]
    assert [e.sequence for e in got] == sorted(e.sequence for e in got)
    assert got[3].data == {"customerId": str(a), "n": 2}


async def test_a_rolled_back_identify_leaves_neither_profile_nor_event(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = identity.record_changes

    async def record_then_fail(session, changes):  # type: ignore[no-untyped-def]
        await real(session, changes)
        raise RuntimeError("the transaction fails after its events were written")

    monkeypatch.setattr(identity, "record_changes", record_then_fail)
    with pytest.raises(RuntimeError):
        await identity.identify(
            db, IdentifyInput([("email", "gone@example.com")]), region="CN", actor="test"
        )
    assert await count(db, Customer) == 0
    assert await count(db, OutboxEvent) == 0


async def test_a_refused_identify_emits_nothing(db: Database) -> None:
    result = await identity.identify(
        db, IdentifyInput([("no_such_type", "x")]), region="CN", actor="test"
    )
    assert result.errors and result.customer_id is None
    assert await count(db, OutboxEvent) == 0


async def test_identify_emits_a_created_event_without_pii(db: Database) -> None:
    result = await identity.identify(
        db, IdentifyInput([("email", "Ann@Example.com")]), region="CN", actor="test"
    )
    async with db.read() as session:
        rows = (await session.execute(select(OutboxEvent.kind, OutboxEvent.payload))).all()
    [created_payload] = [payload for kind, payload in rows if kind == "customer.created"]
    assert created_payload["customerId"] == str(result.customer_id)
    assert "ann@example.com" not in str([payload for _, payload in rows])


async def test_two_dispatchers_deliver_each_event_once_per_webhook_in_order_per_customer(
    db: Database, settings: Settings
) -> None:
    customers = [uuid.uuid4() for _ in range(8)]
    async with receiver() as endpoint:
        for path in ("/a", "/b"):
            await define_webhook(
                db, endpoint.url + path, ["customer.created", "customer.updated"], SECRET, "t"
            )
        for round_ in range(5):
            await emit(db, *(updated(c, round_) for c in customers))
        await emit(db, *(created(c) for c in customers))
        second = Database.from_url(settings.database_url)
        small = settings.model_copy(update={"dispatch_batch_size": 7})
        try:
            async with (
                Dispatcher(db, InProcessBroker(), small) as one,
                Dispatcher(second, InProcessBroker(), small) as two,
            ):
                await drain(db, one, two)
        finally:
            await second.dispose()

    async with db.read() as session:
        events = (await session.execute(select(OutboxEvent.event_id))).scalars().all()
    for path in ("/a", "/b"):
        received = endpoint.at(path)
        ids = [r.event_id for r in received]
        assert sorted(ids) == sorted(str(e) for e in events), f"{path}: lost or duplicated"
        per_customer: dict[str, list[int]] = defaultdict(list)
        for r in received:
            per_customer[r.json["customerId"]].append(r.json["sequence"])
        for sequences in per_customer.values():
            assert sequences == sorted(sequences)


async def test_a_customers_later_events_wait_while_another_dispatcher_holds_an_earlier_one(
    db: Database, settings: Settings, backend: str
) -> None:
    """PostgreSQL: another transaction holding an event's row (a dispatcher mid-batch) keeps
    that customer's later events back; other customers' events go out. SQLite serializes
    whole claims instead, so there the first claim simply gets all of them."""
    a, b = uuid.uuid4(), uuid.uuid4()
    await emit(db, created(a))
    await emit(db, updated(a), created(b))
    broker = InProcessBroker()
    if backend != "postgresql":
        assert await dispatch_outbox(db, broker, batch_size=10) == 3
        return
    holder = Database.from_url(settings.database_url)
    try:
        async with holder.write() as session:
            await session.execute(
                text(
                    "SELECT id FROM outbox WHERE kind = 'customer.created' AND customer_id = :a FOR UPDATE"
                ),
                {"a": a},
            )
            async with broker.subscribe() as feed:
                assert await dispatch_outbox(db, broker, batch_size=10) == 1
                only = ChangeRecord.from_json(await asyncio.wait_for(anext(feed), 1))
            assert only.customer_id == b
    finally:
        await holder.dispose()
    assert await dispatch_outbox(db, broker, batch_size=10) == 2
