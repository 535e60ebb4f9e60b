"""On PostgreSQL a committed change wakes the dispatcher (LISTEN/NOTIFY): with a poll interval
of a minute, events still reach subscribers long before the next poll would have found them."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text

from domain.delivery.dispatch import ChangeRecord
from service.dispatcher import LISTENING_POLL_SECONDS, Dispatcher
from service.settings import Settings
from store.db import Database
from store.pubsub import InProcessBroker
from tests.integration.change_helpers import created, emit

POLL_SECONDS = 60.0
WAIT_SECONDS = 20.0  # a third of the poll interval: only a notification can be this quick
TERMINATE_LISTENER = text(
    """SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
       WHERE datname = current_database() AND query LIKE 'LISTEN%c360_outbox%'"""
)


@pytest.fixture
def postgresql(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite polls")


async def test_a_commit_wakes_the_dispatcher_before_its_poll_interval(
    postgresql: None, db: Database, settings: Settings
) -> None:
    broker = InProcessBroker()
    slow = settings.model_copy(
        update={"dispatch_interval_seconds": POLL_SECONDS, "trigger_interval_seconds": 3600}
    )
    dispatcher = Dispatcher(db, broker, slow)
    async with broker.subscribe() as feed:
        running = asyncio.create_task(dispatcher.run())
        try:
            await asyncio.wait_for(dispatcher.listening.wait(), WAIT_SECONDS)
            for _ in range(2):  # the second arrives while the outbox loop sleeps its minute
                customer = uuid.uuid4()
                await emit(db, created(customer))
                got = ChangeRecord.from_json(await asyncio.wait_for(anext(feed), WAIT_SECONDS))
                assert got.customer_id == customer
                await asyncio.sleep(0.2)
        finally:
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running


async def test_a_lost_listening_connection_is_replaced(
    postgresql: None, db: Database, settings: Settings
) -> None:
    broker = InProcessBroker()
    slow = settings.model_copy(
        update={"dispatch_interval_seconds": POLL_SECONDS, "trigger_interval_seconds": 3600}
    )
    dispatcher = Dispatcher(db, broker, slow)
    async with broker.subscribe() as feed:
        running = asyncio.create_task(dispatcher.run())
        try:
            await asyncio.wait_for(dispatcher.listening.wait(), WAIT_SECONDS)
            async with db.write() as session:  # only this test database's listener
                ended = await session.scalar(TERMINATE_LISTENER)
            assert ended == 1
            customer = uuid.uuid4()
            await emit(db, created(customer))
            got = ChangeRecord.from_json(await asyncio.wait_for(anext(feed), WAIT_SECONDS))
            assert got.customer_id == customer
        finally:
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running


async def test_the_outbox_trigger_exists_only_on_postgresql(db: Database, backend: str) -> None:
    async with db.read() as session:
        if backend == "postgresql":
            found = await session.scalar(
                text("SELECT count(*) FROM pg_trigger WHERE tgname = 'outbox_notify'")
            )
            assert found == 1
        else:
            found = await session.scalar(
                text("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'")
            )
            assert found == 0


async def test_the_outbox_polls_less_often_while_notifications_are_heard(
    db: Database, settings: Settings
) -> None:
    fast = settings.model_copy(update={"dispatch_interval_seconds": 0.1})
    dispatcher = Dispatcher(db, InProcessBroker(), fast)
    assert dispatcher.outbox_poll_seconds() == 0.1  # nothing heard (SQLite, or not yet)
    dispatcher.listening.set()
    assert dispatcher.outbox_poll_seconds() == LISTENING_POLL_SECONDS
    dispatcher.listening.clear()  # the connection was lost: the configured interval again
    assert dispatcher.outbox_poll_seconds() == 0.1
