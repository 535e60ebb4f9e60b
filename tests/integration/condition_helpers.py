"""Rows for condition tests, written straight into the store, and the one question those tests
ask: which customers does a condition match (through the compiled SQL)?"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.conditions.sql import compile_condition
from store.db import Database
from store.models import (
    Customer,
    CustomerMetrics,
    Event,
    Identity,
    Order,
    Segment,
    SegmentMembership,
    TagAssignment,
    TagDefinition,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


async def add_customer(session: AsyncSession, **fields: Any) -> uuid.UUID:
    fields.setdefault("id", uuid.uuid4())
    fields.setdefault("created_at", ago(30))
    fields.setdefault("updated_at", fields["created_at"])
    await session.execute(insert(Customer).values(**fields))
    return fields["id"]  # type: ignore[no-any-return]


async def define_tag(
    session: AsyncSession, key: str, value_type: str = "FLAG", allowed: list[str] | None = None
) -> uuid.UUID:
    tag_id = uuid.uuid4()
    await session.execute(
        insert(TagDefinition).values(
            id=tag_id, key=key, name=key, value_type=value_type, allowed_values=allowed
        )
    )
    return tag_id


async def assign(
    session: AsyncSession,
    customer: uuid.UUID,
    tag: uuid.UUID,
    value: str | None = None,
    expires_at: datetime | None = None,
) -> None:
    await session.execute(
        insert(TagAssignment).values(
            customer_id=customer, tag_id=tag, value=value, expires_at=expires_at, assigned_at=ago(1)
        )
    )


async def add_identity(session: AsyncSession, customer: uuid.UUID, type_key: str) -> None:
    value = f"{type_key}-{uuid.uuid4().hex}"
    await session.execute(insert(Identity).values(customer_id=customer, type=type_key, value=value))


async def add_events(
    session: AsyncSession, customer: uuid.UUID, type_key: str, *times: datetime
) -> None:
    await session.execute(
        insert(Event),
        [{"customer_id": customer, "type": type_key, "occurred_at": t} for t in times],
    )


async def add_order(
    session: AsyncSession,
    customer: uuid.UUID,
    amount: float,
    placed_at: datetime,
    status: str = "completed",
) -> None:
    money = Decimal(str(amount))
    await session.execute(
        insert(Order).values(
            customer_id=customer,
            external_id=uuid.uuid4().hex,
            amount=money,
            base_amount=money,
            currency="CNY",
            status=status,
            placed_at=placed_at,
        )
    )


async def set_metrics(session: AsyncSession, customer: uuid.UUID, **values: Any) -> None:
    await session.execute(insert(CustomerMetrics).values(customer_id=customer, **values))


async def add_segment(
    session: AsyncSession,
    key: str,
    condition: dict[str, Any],
    *,
    materialized: bool = False,
    members: tuple[uuid.UUID, ...] = (),
) -> uuid.UUID:
    segment_id = uuid.uuid4()
    await session.execute(
        insert(Segment).values(
            id=segment_id,
            key=key,
            name=key,
            condition=condition,
            materialized=materialized,
            member_count=len(members),
        )
    )
    if members:
        await session.execute(
            insert(SegmentMembership),
            [{"segment_id": segment_id, "customer_id": m, "entered_at": NOW} for m in members],
        )
    return segment_id


async def matching(db: Database, condition: Any, now: datetime = NOW) -> set[uuid.UUID]:
    """The ids of the customers `condition` matches, by the compiled SQL."""
    async with db.read() as session:
        matches = await compile_condition(session, condition, now)
        return set((await session.scalars(matches.apply(select(Customer.id)))).all())
