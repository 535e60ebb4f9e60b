"""A scripted customer for lifecycle tests: activity at chosen times, stages read back.

Every write passes its own `now`, so a journey of a year runs in milliseconds and the rules see
exactly the clock the test chose (no sleeping, no wall clock).
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from domain.activity import ingest as activity
from domain.activity.ingest import EventItem, OrderItem
from domain.profile import find_by_identity
from store.db import Database
from store.models import OutboxEvent, StageTransition

T0 = datetime(2024, 3, 1, 9, tzinfo=UTC)
RATES = {"CNY": Decimal(1)}
_orders = itertools.count(1)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


class Shopper:
    """One person, known by an email, doing things on day n of the script."""

    def __init__(self, db: Database, email: str) -> None:
        self.db, self.email = db, email

    async def views(self, n: float, kind: str = "product_view") -> None:
        item = EventItem(("email", self.email), kind, "web", day(n))
        await activity.track_events(self.db, [item], region="CN", actor="test", now=day(n))

    async def buys(self, *days: float, amount: str = "100.00") -> None:
        for n in days:
            item = OrderItem(
                ("email", self.email), f"o-{next(_orders)}", Decimal(amount), "CNY",
                placed_at=day(n),
            )  # fmt: skip
            await activity.record_orders(
                self.db, [item], region="CN", actor="test", rates=RATES, now=day(n)
            )

    async def id(self) -> uuid.UUID:
        record = await find_by_identity(self.db, "email", self.email, "CN")
        assert record is not None
        return record.id

    async def stage(self) -> str | None:
        record = await find_by_identity(self.db, "email", self.email, "CN")
        assert record is not None
        return record.stage

    async def path(self) -> list[tuple[str | None, str, str | None]]:
        """(from, to, rule) of every transition, oldest first."""
        customer_id = await self.id()
        async with self.db.read() as session:
            rows = await session.execute(
                select(StageTransition.from_stage, StageTransition.to_stage, StageTransition.rule_key)
                .where(StageTransition.customer_id == customer_id)
                .order_by(StageTransition.at, StageTransition.id)
            )  # fmt: skip
            return [tuple(row) for row in rows]  # type: ignore[misc]


async def stage_events(db: Database) -> int:
    async with db.read() as session:
        count = select(func.count()).where(OutboxEvent.kind == "stage.changed")
        return int((await session.execute(count)).scalar_one())


async def transition_count(db: Database) -> int:
    async with db.read() as session:
        count = select(func.count()).select_from(StageTransition)
        return int((await session.execute(count)).scalar_one())
