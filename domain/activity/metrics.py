"""Activity and value metrics of a profile, derived from its events and orders.

Everything here is recomputable from events and orders, and computed in SQL, so that one code
path serves both the update after a write (`recompute` for the profiles it touched) and the
full rebuild (`recompute` for all, then `refresh_rfm`), without loading the population.

Definitions (documented, monotone, deliberately simple):
- order_count: completed orders. total_spent: completed orders minus refunds, in the base
  currency. AOV = total_spent / order_count. last_activity_at: the later of the last event
  and the last order.
- recencyDays: whole days since last activity, at read time.
- churn_risk in [0, 1): r / (r + 2), where r = days since the last completed order divided by
  the customer's own average interval between orders (DEFAULT_INTERVAL_DAYS with fewer than two
  orders). At twice the usual gap the risk is 0.5; it only rises with recency.
- clv: total_spent + yearly value x CLV_HORIZON_YEARS x (1 - churn_risk), yearly value being
  total_spent spread over the customer's tenure (at least a year).
- RFM: each of R (days since last order, fewer is better), F (order_count), M (total_spent)
  scored 1..5 against the quintile boundaries (nearest-rank 20/40/60/80th percentiles) of the
  customers with at least one completed order; equal values always get equal scores. Refreshed by
  `c360 recompute-metrics` and the periodic job; the named segment follows RFM_SEGMENTS.
churn_risk and clv depend on the date: the derived-state worker (domain.derived) keeps them
current for the profiles writes touch, as of the latest write's clock, and the periodic job
for everyone else.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    case,
    cast,
    func,
    insert,
    literal,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import Database
from store.models import Customer, CustomerMetrics, Event, EventRollup, Order
from store.sqlfuncs import days_since
from store.types import utcnow

DEFAULT_INTERVAL_DAYS = 90.0
CLV_HORIZON_YEARS = 3
QUANTILES = (0.2, 0.4, 0.6, 0.8)

# (segment, rule) checked in order; the first that holds names the customer. Every (R, F, M)
# falls in exactly one: the table is total by construction (see test_rfm_segments_cover_all).
RFM_SEGMENTS: tuple[tuple[str, Any], ...] = (
    ("Champions", lambda r, f, m: r >= 4 and f >= 4 and m >= 4),
    ("Loyal", lambda r, f, m: r >= 3 and f >= 4),
    ("Potential Loyalist", lambda r, f, m: r >= 4 and 2 <= f <= 3),
    ("New", lambda r, f, m: r == 5 and f == 1),
    ("Promising", lambda r, f, m: r == 4 and f == 1),
    ("Need Attention", lambda r, f, m: r == 3 and 2 <= f <= 3),
    ("About to Sleep", lambda r, f, m: r == 3 and f == 1),
    ("Cannot Lose Them", lambda r, f, m: r <= 2 and f >= 4 and m >= 4),
    ("At Risk", lambda r, f, m: r <= 2 and f >= 3),
    ("Hibernating", lambda r, f, m: r == 2 and f <= 2),
    ("Lost", lambda r, f, m: r == 1 and f <= 2),
)


def rfm_segment(r: int, f: int, m: int) -> str:
    return next(name for name, rule in RFM_SEGMENTS if rule(r, f, m))


@dataclass(frozen=True, slots=True)
class RfmRecord:
    recency: int
    frequency: int
    monetary: int
    segment: str

    @property
    def code(self) -> str:
        return f"{self.recency}{self.frequency}{self.monetary}"


@dataclass(frozen=True, slots=True)
class MetricsRecord:
    order_count: int = 0
    total_spent: Decimal = Decimal("0.00")
    first_order_at: datetime | None = None
    last_order_at: datetime | None = None
    last_activity_at: datetime | None = None
    rfm: RfmRecord | None = None
    clv: Decimal | None = None
    churn_risk: float | None = None

    @property
    def average_order_value(self) -> Decimal | None:
        if not self.order_count:
            return None
        return (self.total_spent / self.order_count).quantize(Decimal("0.01"))

    def recency_days(self, now: datetime | None = None) -> int | None:
        if self.last_activity_at is None:
            return None
        return max(0, ((now or utcnow()) - self.last_activity_at).days)


EMPTY = MetricsRecord()


def _record(row: CustomerMetrics) -> MetricsRecord:
    rfm = None
    if row.rfm_recency and row.rfm_frequency and row.rfm_monetary and row.rfm_segment:
        rfm = RfmRecord(row.rfm_recency, row.rfm_frequency, row.rfm_monetary, row.rfm_segment)
    return MetricsRecord(
        order_count=row.order_count,
        total_spent=row.total_spent,
        first_order_at=row.first_order_at,
        last_order_at=row.last_order_at,
        last_activity_at=row.last_activity_at,
        rfm=rfm,
        clv=row.clv,
        churn_risk=row.churn_risk,
    )


async def metrics_of(
    db: Database, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, MetricsRecord]:
    async with db.read() as session:
        rows = await session.scalars(
            select(CustomerMetrics).where(CustomerMetrics.customer_id.in_(customer_ids))
        )
        return {row.customer_id: _record(row) for row in rows}


def counted_order() -> ColumnElement[bool]:
    """An order that counts as one: a completed one (order_count, FREQUENCY, COUNT)."""
    return Order.status == "completed"


def order_value() -> ColumnElement[Decimal]:
    """What an order row adds to what a customer spent, in the base currency: a completed
    order its amount, a refund minus its amount (whatever its sign), anything else nothing.
    The one definition of order value: total_spent, MONETARY, RFM's M, CLV and the condition
    language's order SUM and AVERAGE all add these up."""
    return case(
        (counted_order(), Order.base_amount),
        (Order.status == "refunded", -func.abs(Order.base_amount)),
        else_=literal(Decimal(0)),
    )


def _figures(customer_ids: Sequence[uuid.UUID] | Select[Any] | None) -> Select[Any]:
    """Per live-or-not customer: order and activity figures from the raw rows."""
    completed = counted_order()
    signed = order_value()
    orders = select(
        Order.customer_id.label("customer_id"),
        func.count(case((completed, 1))).label("order_count"),
        func.coalesce(func.sum(signed), 0).label("total_spent"),
        func.min(case((completed, Order.placed_at))).label("first_order_at"),
        func.max(case((completed, Order.placed_at))).label("last_order_at"),
        func.max(Order.placed_at).label("last_any_order_at"),
    ).group_by(Order.customer_id)
    events = select(
        Event.customer_id.label("customer_id"), func.max(Event.occurred_at).label("last_at")
    ).group_by(Event.customer_id)
    # Retired months count too (domain.activity.retention): their rollups keep the last.
    rolled_up = select(EventRollup.customer_id, func.max(EventRollup.last_at)).group_by(
        EventRollup.customer_id
    )
    if customer_ids is not None:
        orders = orders.where(Order.customer_id.in_(customer_ids))
        events = events.where(Event.customer_id.in_(customer_ids))
        rolled_up = rolled_up.where(EventRollup.customer_id.in_(customer_ids))
    both = union_all(events, rolled_up).subquery()
    events = select(both.c.customer_id, func.max(both.c.last_at).label("last_event_at")).group_by(
        both.c.customer_id
    )
    o, e = orders.subquery("o"), events.subquery("e")
    return (
        select(
            CustomerMetrics.customer_id,
            func.coalesce(o.c.order_count, 0).label("order_count"),
            func.coalesce(o.c.total_spent, 0).label("total_spent"),
            o.c.first_order_at,
            o.c.last_order_at,
            case(
                (o.c.last_any_order_at.is_(None), e.c.last_event_at),
                (e.c.last_event_at.is_(None), o.c.last_any_order_at),
                (e.c.last_event_at > o.c.last_any_order_at, e.c.last_event_at),
                else_=o.c.last_any_order_at,
            ).label("last_activity_at"),
        )
        .outerjoin(o, o.c.customer_id == CustomerMetrics.customer_id)
        .outerjoin(e, e.c.customer_id == CustomerMetrics.customer_id)
    )


async def recompute(
    session: AsyncSession,
    customer_ids: Sequence[uuid.UUID] | Select[Any] | None,
    now: datetime | None = None,
) -> None:
    """Rebuild the figures, churn risk and CLV of these profiles (ids, a select of ids, or
    None: everyone) from their orders and events, in SQL. RFM scores are population-wide:
    see `refresh_rfm`."""
    now = now or utcnow()
    wanted = select(Customer.id).where(
        ~select(CustomerMetrics.customer_id)
        .where(CustomerMetrics.customer_id == Customer.id)
        .exists()
    )
    if customer_ids is not None:
        if not isinstance(customer_ids, Select) and not customer_ids:
            return
        wanted = wanted.where(Customer.id.in_(customer_ids))
    await session.execute(
        insert(CustomerMetrics).from_select(
            ["customer_id", "order_count", "total_spent", "updated_at"],
            wanted.add_columns(
                literal(0), literal(Decimal(0)), literal(now, CustomerMetrics.updated_at.type)
            ),
        )
    )
    figures = _figures(customer_ids)
    if customer_ids is not None:
        figures = figures.where(CustomerMetrics.customer_id.in_(customer_ids))
    f = figures.subquery("f")
    since_last = days_since(session, f.c.last_order_at, now)
    span = days_since(session, f.c.first_order_at, now)
    interval = case(
        (f.c.order_count >= 2, (span - since_last) / (f.c.order_count - 1)),
        else_=literal(DEFAULT_INTERVAL_DAYS),
    )
    ratio = since_last / case((interval > 1.0, interval), else_=literal(1.0))
    churn = case((f.c.last_order_at.is_(None), None), else_=ratio / (ratio + 2.0))
    tenure_years = case((span > 365.0, span / 365.0), else_=literal(1.0))
    total = cast(f.c.total_spent, Float)
    clv = case(
        (f.c.last_order_at.is_(None), None),
        else_=total + total / tenure_years * CLV_HORIZON_YEARS * (1.0 - churn),
    )
    await session.execute(
        update(CustomerMetrics)
        .where(CustomerMetrics.customer_id == f.c.customer_id)
        .values(
            order_count=f.c.order_count,
            total_spent=f.c.total_spent,
            first_order_at=f.c.first_order_at,
            last_order_at=f.c.last_order_at,
            last_activity_at=f.c.last_activity_at,
            churn_risk=churn,
            clv=func.round(cast(clv, CustomerMetrics.clv.type), 2),
            updated_at=now,
        )
    )


async def _boundaries(session: AsyncSession, measure: Any, population: int) -> list[Any]:
    """Nearest-rank quintile boundaries of `measure` over customers with orders."""
    values = []
    for q in QUANTILES:
        offset = max(0, math.ceil(q * population) - 1)
        statement = (
            select(measure)
            .where(CustomerMetrics.order_count > 0)
            .order_by(measure)
            .limit(1)
            .offset(offset)
        )
        values.append((await session.execute(statement)).scalar_one())
    return values


def _score(measure: Any, bounds: list[Any], higher_is_better: bool) -> Any:
    """1 + the number of boundaries the value is above (reversed when lower is better)."""
    above = sum((case((measure > b, 1), else_=0) for b in bounds), literal(0))
    return 1 + above if higher_is_better else 5 - above


async def refresh_rfm(session: AsyncSession, now: datetime | None = None) -> int:
    """Score every customer with orders by population quintiles; returns how many were scored."""
    now = now or utcnow()
    population = (
        await session.execute(select(func.count()).where(CustomerMetrics.order_count > 0))
    ).scalar_one()
    await session.execute(
        update(CustomerMetrics)
        .where(CustomerMetrics.order_count == 0)
        .values(rfm_recency=None, rfm_frequency=None, rfm_monetary=None, rfm_segment=None)
    )
    if not population:
        return 0
    recency = days_since(session, CustomerMetrics.last_order_at, now)
    r = _score(recency, await _boundaries(session, recency, population), higher_is_better=False)
    f = _score(
        CustomerMetrics.order_count,
        await _boundaries(session, CustomerMetrics.order_count, population),
        higher_is_better=True,
    )
    m = _score(
        CustomerMetrics.total_spent,
        await _boundaries(session, CustomerMetrics.total_spent, population),
        higher_is_better=True,
    )
    await session.execute(
        update(CustomerMetrics)
        .where(CustomerMetrics.order_count > 0)
        .values(rfm_recency=r, rfm_frequency=f, rfm_monetary=m)
    )
    await session.execute(
        update(CustomerMetrics)
        .where(CustomerMetrics.order_count > 0)
        .values(rfm_segment=_segment_case())
    )
    return int(population)


def _segment_case() -> Any:
    """RFM_SEGMENTS as one CASE over the stored scores, generated from the same table."""
    code = (
        CustomerMetrics.rfm_recency * 100
        + CustomerMetrics.rfm_frequency * 10
        + CustomerMetrics.rfm_monetary
    )
    names = {
        r * 100 + f * 10 + m: rfm_segment(r, f, m)
        for r in range(1, 6)
        for f in range(1, 6)
        for m in range(1, 6)
    }
    return case(names, value=code, else_=None)


async def recompute_all(
    db: Database,
    now: datetime | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> int:
    """`c360 recompute-metrics`: every profile's figures, then RFM; returns customers scored.
    `progress(done, total)` hears of each of the two steps."""
    now = now or utcnow()
    report = progress or (lambda _done, _total: None)

    async def work(session: AsyncSession) -> int:
        report(0, 2)
        await recompute(session, None, now)
        report(1, 2)
        scored = await refresh_rfm(session, now)
        report(2, 2)
        return scored

    return await db.transact(work)
