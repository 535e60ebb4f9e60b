"""Events partitioned by month on PostgreSQL (migration c14_partitions, store.partitions):
months are made ahead, rows a new month covers leave the default partition for it, the
idempotency key stays unique across months (a table of keys kept by statement triggers, c15),
and an event window reads only its months.
SQLite keeps one table: the same answers, nothing to make."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError

from domain.conditions.sql import compile_condition
from service.periodic import keep_event_partitions_every
from service.settings import Settings
from store import partitions
from store.db import Database
from store.models import Customer, Event
from tests.integration.condition_helpers import add_customer, add_events

NOW = datetime.now(UTC)


async def _partition_of(db: Database, event_id: int) -> str:
    async with db.read() as session:
        found = await session.scalar(
            text("SELECT tableoid::regclass::text FROM events WHERE id = :id"), {"id": event_id}
        )
        return str(found)


async def test_months_are_made_ahead_and_take_their_rows_from_the_default_partition(
    db: Database,
) -> None:
    far = partitions.next_month(NOW + timedelta(days=200))  # beyond the months made ahead
    async with db.write() as session:
        customer = await add_customer(session)
        event_id = await session.scalar(
            insert(Event)
            .values(customer_id=customer, type="page_view", occurred_at=far)
            .returning(Event.id)
        )
    assert event_id is not None
    async with db.write() as session:
        changes = await partitions.ensure_ahead(session, far, 0)
    if db.dialect != "postgresql":
        assert changes == partitions.PartitionChanges()
        return
    assert await _partition_of(db, event_id) == partitions.partition_name(far)
    assert changes.created == (partitions.partition_name(far),)
    async with db.write() as session:
        again = await partitions.ensure_ahead(session, NOW, 3)
        made = await partitions.months(session)
    assert again.created == ()  # the migration made this month and three ahead
    month = partitions.month_of(NOW)
    for _ in range(4):
        assert month in made
        month = partitions.next_month(month)


async def test_an_idempotency_key_is_unique_across_months(db: Database) -> None:
    async with db.write() as session:
        customer = await add_customer(session)
        row = {"customer_id": customer, "type": "page_view", "idempotency_key": "k-1"}
        await session.execute(insert(Event).values(**row, occurred_at=NOW))
    with pytest.raises(IntegrityError):
        async with db.write() as session:  # a retry that names another month
            await session.execute(insert(Event).values(**row, occurred_at=NOW - timedelta(days=90)))
    async with db.write() as session:
        other = await session.scalar(
            insert(Event)
            .values(**{**row, "idempotency_key": "k-2"}, occurred_at=NOW)
            .returning(Event.id)
        )
    with pytest.raises(IntegrityError):
        async with db.write() as session:
            await session.execute(
                text("UPDATE events SET idempotency_key = 'k-1' WHERE id = :id"), {"id": other}
            )
    async with db.read() as session:
        keys = await session.scalars(select(Event.idempotency_key).order_by(Event.idempotency_key))
        assert keys.all() == ["k-1", "k-2"]


async def test_keys_follow_their_events_through_renames_deletes_and_bulk_inserts(
    db: Database,
) -> None:
    async with db.write() as session:
        customer = await add_customer(session)
        rows = [
            {"customer_id": customer, "type": "t", "idempotency_key": f"b-{i}", "occurred_at": at}
            for i, at in enumerate((NOW, NOW - timedelta(days=40), NOW - timedelta(days=80)))
        ]
        await session.execute(insert(Event), rows)  # one statement, three months
    with pytest.raises(IntegrityError):
        async with db.write() as session:  # a duplicate inside one statement
            dup = {**rows[0], "idempotency_key": "b-9"}
            await session.execute(
                insert(Event), [dup, {**dup, "occurred_at": rows[2]["occurred_at"]}]
            )
    async with db.write() as session:  # a key renamed frees the old one
        await session.execute(
            text("UPDATE events SET idempotency_key = 'b-5' WHERE idempotency_key = 'b-0'")
        )
        await session.execute(
            text("UPDATE events SET idempotency_key = 'b-0' WHERE idempotency_key = 'b-1'")
        )
        await session.execute(text("DELETE FROM events WHERE idempotency_key = 'b-2'"))
    async with db.write() as session:  # a deleted event's key is free again
        await session.execute(insert(Event).values(**{**rows[2], "occurred_at": NOW}))
    async with db.read() as session:
        keys = await session.scalars(select(Event.idempotency_key).order_by(Event.idempotency_key))
        assert keys.all() == ["b-0", "b-2", "b-5"]
        if db.dialect == "postgresql":
            kept = await session.execute(
                text(f"SELECT idempotency_key, occurred_at FROM {partitions.EVENT_KEYS} ORDER BY 1")
            )
            moments = {key: at for key, at in kept}
            assert moments == {
                "b-0": rows[1]["occurred_at"],
                "b-2": NOW,
                "b-5": rows[0]["occurred_at"],
            }
    if db.dialect == "postgresql":
        async with db.write() as session:
            await session.execute(text("TRUNCATE events"))
            left = await session.scalar(text(f"SELECT count(*) FROM {partitions.EVENT_KEYS}"))
        assert left == 0


async def test_an_event_window_reads_only_its_months(db: Database) -> None:
    async with db.write() as session:
        await partitions.ensure_ahead(session, NOW - timedelta(days=150), 5)  # older months
        recent, old = await add_customer(session), await add_customer(session)
        await add_events(session, recent, "page_view", NOW - timedelta(days=3))
        await add_events(session, old, "page_view", NOW - timedelta(days=120))
        condition = {"event": {"type": "page_view", "withinDays": 30}}
        matching = (await compile_condition(session, condition, NOW)).apply(select(Customer.id))
        assert set((await session.scalars(matching)).all()) == {recent}
        if db.dialect != "postgresql":
            return
        compiled = matching.compile(session.bind, compile_kwargs={"literal_binds": True})
        plan = "\n".join(
            (await session.execute(text(f"EXPLAIN (COSTS OFF) {compiled}"))).scalars().all()
        )
    window = {
        partitions.partition_name(partitions.month_of(NOW - timedelta(days=d))) for d in (0, 30)
    }
    oldest = partitions.partition_name(partitions.month_of(NOW - timedelta(days=120)))
    assert all(name in plan for name in window), plan
    assert oldest not in plan, plan


async def test_serve_makes_the_months_ahead_on_its_interval(
    db: Database, settings: Settings
) -> None:
    if db.dialect != "postgresql":
        pytest.skip("SQLite keeps one events table: no months to make")
    wanted = partitions.month_of(NOW)
    for _ in range(9):
        wanted = partitions.next_month(wanted)
    ahead = settings.model_copy(
        update={"event_partitions_ahead_months": 9, "event_partition_interval_seconds": 0.05}
    )
    task = asyncio.create_task(keep_event_partitions_every(db, ahead))
    try:
        for _ in range(500):  # polls the task's effect; it sleeps 0.05 s between runs
            await asyncio.sleep(0.01)
            if task.done():
                break
            async with db.read() as session:
                if wanted in await partitions.months(session):
                    break
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    async with db.read() as session:
        assert wanted in await partitions.months(session)
