"""Time-based triggers as change events: the right customers, on the right day, once."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from domain.delivery.triggers import abandoned_carts, birthdays, inactive_customers
from store.db import Database
from store.models import Customer, Event, Order, OutboxEvent
from tests.builders import make_customer

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def emitted(db: Database, kind: str) -> list[tuple[uuid.UUID, dict[str, Any]]]:
    async with db.read() as session:
        rows = await session.execute(
            select(OutboxEvent.customer_id, OutboxEvent.payload)
            .where(OutboxEvent.kind == kind)
            .order_by(OutboxEvent.id)
        )
        return [(row.customer_id, row.payload) for row in rows]


async def test_birthdays_fall_on_the_date_of_the_customers_own_time_zone(db: Database) -> None:
    # 20:00 in London on 15 March is already 04:00 on 16 March in Shanghai.
    now = datetime(2026, 3, 15, 20, 0, tzinfo=UTC)
    shanghai_today = await make_customer(db, birthday=date(1990, 3, 16), locale="zh-CN")
    london_tomorrow = await make_customer(db, birthday=date(1985, 3, 16), locale="en-GB")
    london_today = await make_customer(db, birthday=date(1985, 3, 15), locale="en_GB")
    default_zone = await make_customer(db, birthday=date(1970, 3, 15))
    await make_customer(db, birthday=date(1970, 3, 16), status="MERGED")

    assert await birthdays(db, now, SHANGHAI) == 2
    assert await birthdays(db, now + timedelta(hours=1), SHANGHAI) == 0  # once a day

    fired = dict(await emitted(db, "customer.birthday"))
    assert fired == {
        shanghai_today: {"customerId": str(shanghai_today), "date": "2026-03-16"},
        london_today: {"customerId": str(london_today), "date": "2026-03-15"},
    }
    assert london_tomorrow not in fired and default_zone not in fired


async def test_a_leap_day_birthday_is_celebrated_on_28_february_in_other_years(
    db: Database,
) -> None:
    leapling = await make_customer(db, birthday=date(2000, 2, 29), locale="zh-CN")
    assert await birthdays(db, datetime(2027, 2, 28, 4, tzinfo=UTC), SHANGHAI) == 1
    assert [c for c, _ in await emitted(db, "customer.birthday")] == [leapling]


async def test_inactivity_fires_once_per_spell_of_inactivity(db: Database) -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    dormant = await make_customer(db, last_seen_at=now - timedelta(days=100))
    recent = await make_customer(db, last_seen_at=now - timedelta(days=10))
    never_seen = await make_customer(db, created_at=now - timedelta(days=95))

    assert await inactive_customers(db, now, 90) == 2
    assert await inactive_customers(db, now + timedelta(days=1), 90) == 0
    visit = now + timedelta(days=1)
    async with db.write() as session:  # back for a visit, then gone again
        await session.execute(
            update(Customer).where(Customer.id == dormant).values(last_seen_at=visit)
        )
    assert await inactive_customers(db, now + timedelta(days=30), 90) == 0
    assert await inactive_customers(db, visit + timedelta(days=91), 90) == 2

    fired = dict(await emitted(db, "customer.inactive"))
    assert set(fired) == {dormant, never_seen, recent}
    assert fired[dormant] == {
        "customerId": str(dormant),
        "inactiveDays": 90,
        "lastActivityAt": visit.isoformat(),
    }


async def add_to_cart(db: Database, customer: uuid.UUID, at: datetime) -> None:
    async with db.write() as session:
        session.add(Event(customer_id=customer, type="add_to_cart", occurred_at=at))


async def place_order(db: Database, customer: uuid.UUID, at: datetime) -> None:
    async with db.write() as session:
        session.add(
            Order(
                customer_id=customer,
                external_id=uuid.uuid4().hex,
                amount=Decimal("10.00"),
                currency="CNY",
                base_amount=Decimal("10.00"),
                placed_at=at,
            )
        )


async def test_a_cart_with_no_order_for_n_hours_is_abandoned_once(db: Database) -> None:
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    abandoned, bought, browsing, ancient = [await make_customer(db) for _ in range(4)]
    await add_to_cart(db, abandoned, now - timedelta(hours=30))
    await add_to_cart(db, abandoned, now - timedelta(hours=26))
    await add_to_cart(db, bought, now - timedelta(hours=30))
    await place_order(db, bought, now - timedelta(hours=29))
    await add_to_cart(db, browsing, now - timedelta(hours=2))
    await add_to_cart(db, ancient, now - timedelta(days=10))

    assert await abandoned_carts(db, now, 24) == 1
    assert await abandoned_carts(db, now + timedelta(hours=1), 24) == 0
    [(customer, data)] = await emitted(db, "cart.abandoned")
    assert customer == abandoned
    assert data == {
        "customerId": str(abandoned),
        "addedAt": (now - timedelta(hours=26)).isoformat(),
        "hours": 24,
    }
    # A new cart later is a new occasion; the one browsing then has abandoned theirs too.
    await add_to_cart(db, abandoned, now + timedelta(hours=2))
    assert await abandoned_carts(db, now + timedelta(hours=27), 24) == 2
    later = [customer for customer, _ in await emitted(db, "cart.abandoned")][1:]
    assert sorted(later, key=str) == sorted([abandoned, browsing], key=str)
