"""Time-based triggers the automation seeds name, emitted as change events:

- customer.birthday: today is the customer's birthday in their locale's time zone (the
  configured one when the locale names no single zone); 29 February falls on 28 February in
  other years.
- customer.inactive: no activity for `inactive_days` (last activity, else last seen, else
  created); once per spell of inactivity.
- cart.abandoned: the customer's latest add_to_cart event is `cart_abandoned_hours` old and
  no order was placed since; once per cart, and never for carts older than a week.

Each run is idempotent: a firing is recorded with the events it emits, in one transaction,
keyed by (trigger, customer, occasion), so a rerun — or another worker running at the same
time — emits nothing twice. `now` is a parameter so that tests need not wait for days.
"""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import and_, exists, extract, func, insert, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from domain.changes import Change, record_changes
from store.db import Database
from store.models import Customer, CustomerMetrics, Event, Order, TriggerFiring

BIRTHDAY, INACTIVE, CART_ABANDONED = "customer.birthday", "customer.inactive", "cart.abandoned"
ADD_TO_CART = "add_to_cart"
CART_LOOKBACK = timedelta(days=7)
BATCH = 1000

# Regions whose whole territory keeps one clock; a locale naming another region (US, RU, BR,
# AU, ...) or none at all gets the configured zone.
REGION_ZONES = {
    "CN": "Asia/Shanghai",
    "HK": "Asia/Hong_Kong",
    "MO": "Asia/Macau",
    "TW": "Asia/Taipei",
    "JP": "Asia/Tokyo",
    "KR": "Asia/Seoul",
    "SG": "Asia/Singapore",
    "MY": "Asia/Kuala_Lumpur",
    "TH": "Asia/Bangkok",
    "VN": "Asia/Ho_Chi_Minh",
    "PH": "Asia/Manila",
    "IN": "Asia/Kolkata",
    "AE": "Asia/Dubai",
    "GB": "Europe/London",
    "IE": "Europe/Dublin",
    "FR": "Europe/Paris",
    "DE": "Europe/Berlin",
    "IT": "Europe/Rome",
    "ES": "Europe/Madrid",
    "NL": "Europe/Amsterdam",
    "CH": "Europe/Zurich",
    "NZ": "Pacific/Auckland",
}


@dataclass(frozen=True, slots=True)
class _Firing:
    customer_id: uuid.UUID
    key: str
    data: dict[str, Any]


def zone_of(locale: str | None, default: ZoneInfo) -> ZoneInfo:
    """The zone of a locale's region subtag (zh-CN, en_GB, zh-Hant-TW), else `default`."""
    for part in (locale or "").replace("_", "-").split("-")[1:]:
        if len(part) == 2 and part.isalpha():
            zone = REGION_ZONES.get(part.upper())
            return ZoneInfo(zone) if zone else default
    return default


def is_birthday(birthday: date, today: date) -> bool:
    if (birthday.month, birthday.day) == (today.month, today.day):
        return True
    leap_day_moved = (birthday.month, birthday.day) == (2, 29) and not calendar.isleap(today.year)
    return leap_day_moved and (today.month, today.day) == (2, 28)


class TriggerSettings(Protocol):
    """What the triggers read of the service's settings (service.settings.Settings has it)."""

    trigger_timezone: str
    inactive_days: int
    cart_abandoned_hours: int


async def run_triggers(db: Database, settings: TriggerSettings, now: datetime) -> int:
    """Every trigger until it has nothing left to fire; returns how many events it emitted.
    Inactivity and carts go in transactions of at most `BATCH` firings."""
    emitted = await birthdays(db, now, ZoneInfo(settings.trigger_timezone))
    for trigger, argument in (
        (inactive_customers, settings.inactive_days),
        (abandoned_carts, settings.cart_abandoned_hours),
    ):
        while (fired := await trigger(db, now, argument)) > 0:
            emitted += fired
            if fired < BATCH:
                break
    return emitted


async def birthdays(db: Database, now: datetime, default_zone: ZoneInfo) -> int:
    zones = {default_zone, *(ZoneInfo(zone) for zone in REGION_ZONES.values())}
    days = {now.astimezone(zone).date() for zone in zones}
    month_days = {(d.month, d.day) for d in days} | {
        (2, 29) for d in days if (d.month, d.day) == (2, 28) and not calendar.isleap(d.year)
    }
    candidates = (
        select(Customer.id, Customer.birthday, Customer.locale)
        .where(
            Customer.status == "ACTIVE",
            # Birthdays come once a year: one fired in the last days is this one.
            ~_fired_since(BIRTHDAY, Customer.id, now - timedelta(days=3)),
            or_(
                *(
                    and_(
                        extract("month", Customer.birthday) == month,
                        extract("day", Customer.birthday) == day,
                    )
                    for month, day in month_days
                )
            ),
        )
        .order_by(Customer.id)
    )

    async def work(session: AsyncSession) -> int:
        firings = []
        for row in await session.execute(candidates):
            today = now.astimezone(zone_of(row.locale, default_zone)).date()
            if is_birthday(row.birthday, today):
                data = {"customerId": str(row.id), "date": today.isoformat()}
                firings.append(_Firing(row.id, today.isoformat(), data))
        return await _fire(session, BIRTHDAY, firings, now)

    return await db.transact(work)


async def inactive_customers(db: Database, now: datetime, days: int) -> int:
    last_activity = func.coalesce(
        CustomerMetrics.last_activity_at, Customer.last_seen_at, Customer.created_at
    )
    statement = (
        select(Customer.id, last_activity.label("last_activity"))
        .outerjoin(CustomerMetrics, CustomerMetrics.customer_id == Customer.id)
        .where(
            Customer.status == "ACTIVE",
            last_activity < now - timedelta(days=days),
            ~_fired_since(INACTIVE, Customer.id, last_activity),
        )
        .order_by(Customer.id)
        .limit(BATCH)
    )

    async def work(session: AsyncSession) -> int:
        firings = [
            _Firing(
                row.id,
                row.last_activity.isoformat(),
                {
                    "customerId": str(row.id),
                    "inactiveDays": days,
                    "lastActivityAt": row.last_activity.isoformat(),
                },
            )
            for row in await session.execute(statement)
        ]
        return await _fire(session, INACTIVE, firings, now)

    return await db.transact(work)


async def abandoned_carts(db: Database, now: datetime, hours: int) -> int:
    cutoff = now - timedelta(hours=hours)
    latest = (
        select(Event.customer_id, func.max(Event.occurred_at).label("added_at"))
        .where(Event.type == ADD_TO_CART, Event.occurred_at >= cutoff - CART_LOOKBACK)
        .group_by(Event.customer_id)
        .subquery()
    )
    statement = (
        select(latest.c.customer_id, latest.c.added_at)
        .join(Customer, Customer.id == latest.c.customer_id)
        .where(
            Customer.status == "ACTIVE",
            latest.c.added_at <= cutoff,
            ~exists().where(
                Order.customer_id == latest.c.customer_id, Order.placed_at >= latest.c.added_at
            ),
            ~_fired_since(CART_ABANDONED, latest.c.customer_id, latest.c.added_at),
        )
        .order_by(latest.c.customer_id)
        .limit(BATCH)
    )

    async def work(session: AsyncSession) -> int:
        firings = [
            _Firing(
                row.customer_id,
                row.added_at.isoformat(),
                {
                    "customerId": str(row.customer_id),
                    "addedAt": row.added_at.isoformat(),
                    "hours": hours,
                },
            )
            for row in await session.execute(statement)
        ]
        return await _fire(session, CART_ABANDONED, firings, now)

    return await db.transact(work)


def _fired_since(trigger: str, customer_id: Any, moment: Any) -> Any:
    """This trigger already fired for the customer at or after `moment`."""
    return exists().where(
        TriggerFiring.trigger == trigger,
        TriggerFiring.customer_id == customer_id,
        TriggerFiring.fired_at >= moment,
    )


async def _fire(
    session: AsyncSession, trigger: str, firings: Sequence[_Firing], now: datetime
) -> int:
    """Record the firings not yet recorded, with their events. A concurrent run that recorded
    one first makes this insert fail; the transaction reruns and finds it (`Database.transact`)."""
    if not firings:
        return 0
    done = set(
        (
            await session.execute(
                select(TriggerFiring.customer_id, TriggerFiring.key).where(
                    TriggerFiring.trigger == trigger,
                    tuple_(TriggerFiring.customer_id, TriggerFiring.key).in_(
                        [(f.customer_id, f.key) for f in firings]
                    ),
                )
            )
        ).all()
    )
    new = [f for f in firings if (f.customer_id, f.key) not in done]
    if not new:
        return 0
    await session.execute(
        insert(TriggerFiring),
        [
            {"trigger": trigger, "customer_id": f.customer_id, "key": f.key, "fired_at": now}
            for f in new
        ],
    )
    await record_changes(session, [Change(trigger, f.customer_id, f.data, now) for f in new])
    return len(new)
