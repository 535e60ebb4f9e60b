"""Stage KPIs as data: each stage of a lifecycle model declares the indicators the funnel report
shows for it, as measures over events, orders and metrics. The presets carry seed 000's
indicators for every stage; a custom model declares its own (`LifecycleStageInput.kpis`).

A KPI is {key, name, measure} plus what its measure reads. All but METRIC_AVERAGE are counted
over the report's window and population (everyone, or a segment's members):
- EVENTS: events of `eventType` (of `channel`, when given);
- EVENT_CUSTOMERS: customers with such an event;
- CONVERSION_RATE: of the customers active in the window (with an event of `eventType` when
  given, else with any event or order), the share with a completed order in it;
- AVERAGE_ORDER_VALUE: completed revenue over completed orders (base currency);
- REPEAT_RATE: customers with two or more completed orders over those with one or more;
- NPS: survey answers, events of `eventType` (default `survey`) whose `property` (default
  `nps`) is a number from 0 to 10: the share of promoters (9, 10) minus that of detractors
  (0 to 6), times 100;
- SATISFACTION: the average of `property` (default `satisfaction`, a score from 1 to 5) on
  such survey events;
- CHURN_RATE, WIN_BACK_RATE: journeys that entered the churned stage over those at risk, and
  journeys that left it over those churned (domain.lifecycle.funnel counts the journeys);
- METRIC_AVERAGE: the average of `metric` (CLV, CHURN_RISK, TOTAL_SPENT, ORDER_COUNT) over the
  live customers in the stage now.
A value is null when there is nothing to count it over.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import ColumnElement, case, func, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from domain.errors import DomainError, InvalidInput
from store.condition_funcs import json_number
from store.models import Customer, CustomerMetrics, Event, Order

__all__ = ["PRESET_KPIS", "KpiSpec", "Scope", "check_kpis", "kpi_of", "measure_kpis"]

KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]{0,63}$")  # event types and properties
MAX_KPIS = 20
SURVEY, NPS_PROPERTY, SATISFACTION_PROPERTY = "survey", "nps", "satisfaction"
METRICS = {
    "CLV": CustomerMetrics.clv,
    "CHURN_RISK": CustomerMetrics.churn_risk,
    "TOTAL_SPENT": CustomerMetrics.total_spent,
    "ORDER_COUNT": CustomerMetrics.order_count,
}
NEEDS_EVENT_TYPE = {"EVENTS", "EVENT_CUSTOMERS"}
SURVEYS = {"NPS": NPS_PROPERTY, "SATISFACTION": SATISFACTION_PROPERTY}
JOURNEYS = {"CHURN_RATE", "WIN_BACK_RATE"}
MEASURES = (
    NEEDS_EVENT_TYPE
    | set(SURVEYS)
    | JOURNEYS
    | {"CONVERSION_RATE", "AVERAGE_ORDER_VALUE", "REPEAT_RATE", "METRIC_AVERAGE"}
)


@dataclass(frozen=True, slots=True)
class KpiSpec:
    key: str
    name: str
    measure: str
    event_type: str | None = None
    channel: str | None = None
    property: str | None = None
    metric: str | None = None

    def to_json(self) -> dict[str, Any]:
        found = {"key": self.key, "name": self.name, "measure": self.measure}
        extras = {
            "eventType": self.event_type,
            "channel": self.channel,
            "property": self.property,
            "metric": self.metric,
        }
        return found | {k: v for k, v in extras.items() if v is not None}


def _kpi(key: str, name: str, measure: str, **what: str) -> KpiSpec:
    return KpiSpec(key, name, measure, **what)


_CHURN = (
    _kpi("churn_rate", "Churn rate 客户流失率", "CHURN_RATE"),
    _kpi("win_back_rate", "Win-back rate 流失客户召回率", "WIN_BACK_RATE"),
)
_CONVERSION = _kpi("conversion_rate", "Conversion rate 成交率", "CONVERSION_RATE")
_AOV = _kpi("average_order_value", "Average order value 平均订单价值", "AVERAGE_ORDER_VALUE")
_REPEAT = _kpi("repeat_rate", "Repeat rate 复购率", "REPEAT_RATE")
_NPS = _kpi("nps", "NPS 净推荐值", "NPS")
# Seed 000's indicators, by the preset stage keys (funnel, then clm).
PRESET_KPIS: dict[str, tuple[KpiSpec, ...]] = {
    "awareness": (
        _kpi("visits", "Visits 网站访问量", "EVENTS", event_type="page_view"),
        _kpi("exposure", "Exposure 品牌曝光", "EVENTS", event_type="impression"),
    ),
    "consideration": (
        _kpi("inquiries", "Inquiries 询盘数量", "EVENTS", event_type="inquiry"),
        _kpi(
            "inquiry_conversion", "Conversion 询盘成交率", "CONVERSION_RATE", event_type="inquiry"
        ),
    ),
    "purchase": (_CONVERSION, _AOV),
    "loyalty": (_REPEAT, _NPS),
    "churned": _CHURN,
    "acquisition": (
        _kpi("visits", "Visits 网站访问量", "EVENTS", event_type="page_view"),
        _CONVERSION,
    ),
    "growth": (_AOV, _REPEAT),
    "maturity": (_REPEAT, _NPS, _kpi("satisfaction", "Satisfaction 客户满意度", "SATISFACTION")),
    "decline": (
        _kpi("churn_risk", "Average churn risk 流失风险", "METRIC_AVERAGE", metric="CHURN_RISK"),
    ),
}


def _problems(spec: KpiSpec) -> list[tuple[str, str]]:
    """(field, message) for each problem of one declaration."""
    found = []
    if not KEY.match(spec.key):
        found.append(("key", "a KPI key is a lowercase slug: a-z first, then a-z, 0-9 or _"))
    if not spec.name.strip() or len(spec.name) > 200:
        found.append(("name", "a KPI name is 1 to 200 characters"))
    if spec.measure not in MEASURES:
        found.append(("measure", f"measure is one of {', '.join(sorted(MEASURES))}"))
    for label, value in (("eventType", spec.event_type), ("property", spec.property)):
        if value is not None and not NAME.match(value):
            found.append((label, f"{label} is a short name: letters, digits, _ . : -"))
    if spec.channel is not None and not 0 < len(spec.channel) <= 64:
        found.append(("channel", "a channel is 1 to 64 characters"))
    if spec.measure in NEEDS_EVENT_TYPE and spec.event_type is None:
        found.append(("eventType", f"{spec.measure} counts events of an eventType"))
    if spec.measure == "METRIC_AVERAGE" and spec.metric not in METRICS:
        found.append(("metric", f"metric is one of {', '.join(METRICS)}"))
    if spec.measure != "METRIC_AVERAGE" and spec.metric is not None:
        found.append(("metric", "only METRIC_AVERAGE reads a metric"))
    return found


def check_kpis(specs: Sequence[KpiSpec], where: tuple[str | int, ...]) -> list[DomainError]:
    """Every problem of one stage's KPI declarations (INVALID_KPI), at paths under `where`."""
    if len(specs) > MAX_KPIS:
        message = f"a stage has at most {MAX_KPIS} KPIs"
        return [InvalidInput(message, field=where, code="INVALID_KPI")]
    errors: list[DomainError] = []
    seen: set[str] = set()
    for index, spec in enumerate(specs):
        problems = _problems(spec)
        if spec.key in seen:
            problems.append(("key", f"KPI {spec.key} is declared twice"))
        seen.add(spec.key)
        errors += [
            InvalidInput(message, field=(*where, index, name), code="INVALID_KPI")
            for name, message in problems
        ]
    return errors


def kpi_of(raw: dict[str, Any]) -> KpiSpec:
    """A declaration as stored (KpiSpec.to_json)."""
    return KpiSpec(
        raw["key"],
        raw["name"],
        raw["measure"],
        raw.get("eventType"),
        raw.get("channel"),
        raw.get("property"),
        raw.get("metric"),
    )


class Scope(Protocol):
    """The report's window and population (domain.lifecycle.funnel.Window)."""

    def holds(self, moment: Any) -> ColumnElement[bool]: ...

    def members(self, column: Any) -> list[ColumnElement[bool]]: ...


def _share(part: Any, whole: Any) -> float | None:
    return round(int(part) / int(whole), 4) if whole else None


async def _events(session: AsyncSession, scope: Scope, spec: KpiSpec) -> float | None:
    wanted = [Event.type == spec.event_type, scope.holds(Event.occurred_at)]
    if spec.channel is not None:
        wanted.append(Event.channel == spec.channel)
    counted = func.count() if spec.measure == "EVENTS" else func.count(Event.customer_id.distinct())
    statement = select(counted).where(*wanted, *scope.members(Event.customer_id))
    return float(await session.scalar(statement) or 0)


async def _conversion(session: AsyncSession, scope: Scope, spec: KpiSpec) -> float | None:
    placed = scope.holds(Order.placed_at)
    by_events = select(Event.customer_id).where(
        scope.holds(Event.occurred_at), *scope.members(Event.customer_id)
    )
    if spec.event_type is not None:
        active = by_events.where(Event.type == spec.event_type).distinct().subquery()
    else:
        by_orders = select(Order.customer_id).where(placed, *scope.members(Order.customer_id))
        active = union(by_events, by_orders).subquery()
    bought = select(Order.customer_id).where(Order.status == "completed", placed)
    visitors, buyers = (
        await session.execute(
            select(func.count(), func.count(case((active.c.customer_id.in_(bought), 1))))
        )
    ).one()
    return _share(buyers, visitors)


async def _orders(session: AsyncSession, scope: Scope, spec: KpiSpec) -> float | None:
    completed = (
        select(Order.customer_id, func.count().label("n"), func.sum(Order.base_amount).label("v"))
        .where(
            Order.status == "completed",
            scope.holds(Order.placed_at),
            *scope.members(Order.customer_id),
        )
        .group_by(Order.customer_id)
        .subquery()
    )
    buyers, repeaters, orders, revenue = (
        await session.execute(
            select(
                func.count(),
                func.count(case((completed.c.n >= 2, 1))),
                func.sum(completed.c.n),
                func.sum(completed.c.v),
            ).select_from(completed)
        )
    ).one()
    if spec.measure == "REPEAT_RATE":
        return _share(repeaters, buyers)
    return round(float(revenue) / int(orders), 2) if orders else None


async def _survey(session: AsyncSession, scope: Scope, spec: KpiSpec) -> float | None:
    score = json_number(Event.properties, spec.property or SURVEYS[spec.measure])
    answered = [
        Event.type == (spec.event_type or SURVEY),
        scope.holds(Event.occurred_at),
        *scope.members(Event.customer_id),
    ]
    if spec.channel is not None:
        answered.append(Event.channel == spec.channel)
    if spec.measure == "SATISFACTION":
        average = await session.scalar(select(func.avg(score)).where(*answered))
        return None if average is None else round(float(average), 2)
    answered.append(score.between(0, 10))
    answers, promoters, detractors = (
        await session.execute(
            select(
                func.count(), func.count(case((score >= 9, 1))), func.count(case((score < 7, 1)))
            ).where(*answered)
        )
    ).one()
    return round(100 * (int(promoters) - int(detractors)) / int(answers), 1) if answers else None


async def _metric(session: AsyncSession, scope: Scope, spec: KpiSpec, stage: str) -> float | None:
    assert spec.metric is not None
    statement = (
        select(func.avg(METRICS[spec.metric]))
        .select_from(Customer)
        .join(CustomerMetrics, CustomerMetrics.customer_id == Customer.id)
        .where(Customer.status == "ACTIVE", Customer.stage == stage, *scope.members(Customer.id))
    )
    average = await session.scalar(statement)
    return None if average is None else round(float(average), 4)


async def measure_kpis(
    session: AsyncSession,
    scope: Scope,
    declared: dict[str, tuple[KpiSpec, ...]],
    journeys: dict[str, float | None],
) -> dict[tuple[str, str], float | None]:
    """The value of every stage's KPIs, by (stage, KPI key); `journeys` holds CHURN_RATE and
    WIN_BACK_RATE as the funnel counted them. A measure declared twice is counted once."""
    found: dict[tuple[str, str], float | None] = {}
    known: dict[tuple[Any, ...], float | None] = {}
    for stage, specs in declared.items():
        for spec in specs:
            what: tuple[Any, ...] = (
                spec.measure,
                spec.event_type,
                spec.channel,
                spec.property,
                spec.metric,
            )
            if spec.measure == "METRIC_AVERAGE":
                what += (stage,)
            if what not in known:
                known[what] = await _measure(session, scope, spec, stage, journeys)
            found[(stage, spec.key)] = known[what]
    return found


async def _measure(
    session: AsyncSession,
    scope: Scope,
    spec: KpiSpec,
    stage: str,
    journeys: dict[str, float | None],
) -> float | None:
    if spec.measure in JOURNEYS:
        return journeys[spec.measure]
    if spec.measure in NEEDS_EVENT_TYPE:
        return await _events(session, scope, spec)
    if spec.measure == "CONVERSION_RATE":
        return await _conversion(session, scope, spec)
    if spec.measure in SURVEYS:
        return await _survey(session, scope, spec)
    if spec.measure == "METRIC_AVERAGE":
        return await _metric(session, scope, spec, stage)
    return await _orders(session, scope, spec)
