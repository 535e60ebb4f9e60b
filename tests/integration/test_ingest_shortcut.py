"""Ingest's write holds identity resolution and raw facts only (issue 19): items addressed by
an identifier a profile holds land on it without the working set (domain.identity.known) in
a fixed number of statements, no profile row is written, an identity's last_seen_at only moves
forward, and the profile's seen window follows in the derived-state worker
(domain.activity.seen)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import event, select

from domain.activity.ingest import EventItem, OrderItem, record_orders, track_events
from domain.derived import batches
from domain.identity.linking import IdentifyInput, identify_batch
from store.db import Database
from store.models import Customer, Event, Identity
from store.types import utcnow
from tests.conftest import StatementCounter

NOW = utcnow().replace(microsecond=0)
RATES = {"CNY": Decimal(1)}


async def _people(db: Database, n: int) -> list[uuid.UUID]:
    inputs = [IdentifyInput([("email", f"p{i}@x.com")], occurred_at=NOW) for i in range(n)]
    results = await identify_batch(db, inputs, region="CN", actor="t")
    return [r.customer_id for r in results if r.customer_id]


def _events(n: int, people: int, tag: str) -> list[EventItem]:
    return [
        EventItem(("email", f"P{i % people}@X.com "), "page_view", "web", NOW, {}, f"{tag}-{i}")
        for i in range(n)
    ]


async def _counted(db: Database, items: list[EventItem]) -> list[str]:
    counter = StatementCounter()
    event.listen(db.engine.sync_engine, "before_cursor_execute", counter)
    try:
        outcome = await track_events(db, items, region="CN", actor="t")
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", counter)
    assert outcome.accepted == len(items) and not outcome.errors
    return counter.statements


async def test_known_identities_land_in_statements_that_do_not_grow_with_the_batch(
    db: Database,
) -> None:
    db.settle_writes = False
    people = await _people(db, 40)
    one = await _counted(db, _events(1, 40, "a"))
    many = await _counted(db, _events(120, 40, "b"))
    assert len(one) == len(many)
    assert not [s for s in many if s.lstrip().upper().startswith("UPDATE CUSTOMERS")]
    async with db.read() as session:
        landed = await session.scalars(select(Event.customer_id).distinct())
        assert set(landed) == set(people)  # normalized ("P1@X.com " is p1@x.com): no new profile
        assert await session.scalar(select(Customer.id).where(Customer.id.not_in(people))) is None


async def test_new_identities_still_go_through_resolution(db: Database) -> None:
    await _people(db, 2)
    items = [
        EventItem(("email", "p0@x.com"), "login", occurred_at=NOW),
        EventItem(("email", "fresh@x.com"), "login", occurred_at=NOW),
        EventItem(("email", "not-an-email"), "login", occurred_at=NOW),
    ]
    outcome = await track_events(db, items, region="CN", actor="t")
    assert outcome.accepted == 2
    assert [(e.code, e.field) for e in outcome.errors] == [
        ("INVALID_IDENTITY", ("events", "2", "customer", "value"))
    ]
    async with db.read() as session:
        fresh = await session.scalar(select(Identity).where(Identity.value == "fresh@x.com"))
        assert fresh is not None and fresh.first_seen_at == NOW


async def test_an_identity_is_never_seen_earlier_than_it_was(db: Database) -> None:
    await _people(db, 1)
    old, later = NOW - timedelta(days=7), NOW + timedelta(hours=1)
    await track_events(db, [EventItem(("email", "p0@x.com"), "login", occurred_at=old)],
                       region="CN", actor="t")  # fmt: skip
    async with db.read() as session:
        seen = select(Identity.last_seen_at).where(Identity.value == "p0@x.com")
        assert await session.scalar(seen) == NOW
    await track_events(db, [EventItem(("email", "p0@x.com"), "login", occurred_at=later)],
                       region="CN", actor="t")  # fmt: skip
    async with db.read() as session:
        assert await session.scalar(seen) == later


async def test_the_seen_window_follows_events_and_orders_in_the_worker(db: Database) -> None:
    db.settle_writes = False
    (person,) = await _people(db, 1)
    old, later = NOW - timedelta(days=30), NOW + timedelta(hours=2)
    await track_events(db, [EventItem(("email", "p0@x.com"), "login", occurred_at=old)],
                       region="CN", actor="t")  # fmt: skip
    order = OrderItem(("email", "p0@x.com"), "o-1", Decimal(10), "CNY", placed_at=later)
    await record_orders(db, [order], region="CN", actor="t", rates=RATES)

    async def window() -> tuple[object, object, object]:
        async with db.read() as session:
            row = (
                await session.execute(
                    select(
                        Customer.first_seen_at, Customer.last_seen_at, Customer.updated_at
                    ).where(Customer.id == person)
                )
            ).one()
            return tuple(row)

    before = await window()
    assert before[:2] == (NOW, NOW)  # the writes left the profile row alone
    assert await batches.drain(db) == 1
    first, last, updated = await window()
    assert (first, last) == (old, later)
    assert updated != before[2]
    await batches.drain(db)
    await track_events(db, [EventItem(("email", "p0@x.com"), "login", occurred_at=NOW)],
                       region="CN", actor="t")  # fmt: skip
    assert await batches.drain(db) == 1
    assert await window() == (first, last, updated)  # inside the window: the row is not touched


async def test_a_shared_device_is_judged_by_resolution_not_by_its_holder(db: Database) -> None:
    kiosk = ("device_id", "kiosk-1")
    first = await identify_batch(
        db, [IdentifyInput([("email", "a@x.com"), kiosk])], region="CN", actor="t"
    )
    await identify_batch(db, [IdentifyInput([("email", "b@x.com"), kiosk])], region="CN", actor="t")
    outcome = await track_events(db, [EventItem(kiosk, "login")], region="CN", actor="t")
    assert outcome.accepted == 0  # the holder (a@x.com) is not who used the kiosk
    assert [e.code for e in outcome.errors] == ["SHARED_IDENTIFIER"]
    assert first[0].customer_id is not None
