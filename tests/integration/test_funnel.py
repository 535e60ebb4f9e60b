"""The funnel report of a fixed population against numbers worked out by hand.

Window [Oct 1, Dec 1) 2024, read on Jan 1 2025. Stage histories (day.month):
    c1  awareness 1.9, consideration 5.10, purchase 10.10, loyalty 20.11
    c2  awareness 2.10, consideration 3.10
    c3  awareness 15.10, purchase 20.10, churned 25.11
    c4  awareness 1.6, consideration 1.7, churned 15.9, purchase 1.11 (a win-back)
    c5  awareness 10.12 (after the window)
    c6  awareness 20.10 and consideration 20.10 (one run: same time, later id)
    c7  awareness 1.11, consideration 3.11
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import insert, update

from domain.errors import DomainError
from domain.lifecycle.funnel import FunnelStageRecord, funnel
from store.db import Database
from store.models import Customer, Event, Order, Segment, StageTransition
from tests.builders import make_customer

NOW = datetime(2025, 1, 1, tzinfo=UTC)
START, END = datetime(2024, 10, 1, tzinfo=UTC), datetime(2024, 12, 1, tzinfo=UTC)
HISTORIES = {
    "c1": [("awareness", 9, 1), ("consideration", 10, 5), ("purchase", 10, 10), ("loyalty", 11, 20)],
    "c2": [("awareness", 10, 2), ("consideration", 10, 3)],
    "c3": [("awareness", 10, 15), ("purchase", 10, 20), ("churned", 11, 25)],
    "c4": [("awareness", 6, 1), ("consideration", 7, 1), ("churned", 9, 15), ("purchase", 11, 1)],
    "c5": [("awareness", 12, 10)],
    "c6": [("awareness", 10, 20), ("consideration", 10, 20)],
    "c7": [("awareness", 11, 1), ("consideration", 11, 3)],
}  # fmt: skip
EVENTS = [  # (who, type, month, day)
    ("c2", "product_view", 10, 2), ("c2", "product_view", 10, 3), ("c2", "add_to_cart", 10, 3),
    ("c6", "product_view", 10, 20), ("c5", "product_view", 12, 10),
    ("c1", "product_view", 9, 20), ("c1", "page_view", 10, 6),
    ("c1", "impression", 10, 1), ("c7", "impression", 11, 2), ("c1", "impression", 9, 1),
    ("c2", "inquiry", 10, 4), ("c6", "inquiry", 10, 21),
]  # fmt: skip
SURVEYS = [  # (who, month, day, properties): answers to the NPS question (0-10)
    ("c1", 11, 25, {"nps": 10}), ("c3", 11, 3, {"nps": 9}), ("c4", 11, 5, {"nps": 6}),
    ("c2", 10, 10, {"nps": "ten"}), ("c6", 12, 5, {"nps": 0}),
]  # fmt: skip
ORDERS = [  # (who, amount, status, month, day)
    ("c1", "100", "completed", 10, 10), ("c1", "200", "completed", 10, 25),
    ("c1", "300", "completed", 11, 15), ("c3", "50", "completed", 10, 20),
    ("c3", "-50", "refunded", 11, 2), ("c4", "150", "completed", 11, 1),
    ("c5", "999", "completed", 12, 15), ("c2", "80", "cancelled", 10, 4),
]  # fmt: skip


def on(month: int, day: int) -> datetime:
    return datetime(2024, month, day, tzinfo=UTC)


async def population(db: Database) -> dict[str, uuid.UUID]:
    ids = {}
    for name in HISTORIES:
        ids[name] = await make_customer(
            db, country="CN" if name in ("c1", "c2") else "FR", created_at=on(5, 1)
        )
    numbers = itertools.count(1)
    async with db.write() as session:
        for name, history in HISTORIES.items():
            previous = None
            for stage, month, day in history:
                await session.execute(
                    insert(StageTransition).values(
                        customer_id=ids[name], from_stage=previous, to_stage=stage,
                        at=on(month, day), actor="test",
                    )
                )  # fmt: skip
                previous = stage
        for name, kind, month, day in EVENTS:
            await session.execute(
                insert(Event).values(customer_id=ids[name], type=kind, occurred_at=on(month, day))
            )
        for name, month, day, properties in SURVEYS:
            await session.execute(
                insert(Event).values(
                    customer_id=ids[name], type="survey", occurred_at=on(month, day),
                    properties=properties,
                )
            )  # fmt: skip
        for name, amount, status, month, day in ORDERS:
            await session.execute(
                insert(Order).values(
                    customer_id=ids[name], external_id=f"o{next(numbers)}", amount=Decimal(amount),
                    currency="CNY", base_amount=Decimal(amount), status=status,
                    placed_at=on(month, day),
                )
            )  # fmt: skip
    async with db.write() as session:
        for name, history in HISTORIES.items():
            stage, month, day = history[-1]
            await session.execute(
                update(Customer)
                .where(Customer.id == ids[name])
                .values(stage=stage, stage_entered_at=on(month, day))
            )
    return ids


def table(report: tuple[FunnelStageRecord, ...]) -> dict[str, tuple[object, ...]]:
    return {
        s.stage.key: (s.current, s.entered, s.conversion_to_next, s.median_days_in_stage)
        for s in report
    }


def kpis(report: tuple[FunnelStageRecord, ...]) -> dict[str, float | None]:
    return {k.key: k.value for s in report for k in s.kpis}


async def test_the_funnel_of_a_fixed_population_matches_the_hand_computation(db) -> None:
    await population(db)
    report = await funnel(db, start=START, end=END, now=NOW)
    assert table(report) == {
        # stage:        current, entered, conversion to next, median days in stage
        "awareness": (1, 4, 0.75, 1.5),  # c2, c3, c6, c7; stays 1, 5, 0, 2
        "consideration": (3, 4, 0.25, 66.0),  # c1, c2, c6, c7; stays 5, 90, 73, 59
        "purchase": (1, 3, 0.3333, 41.0),  # c1, c3, c4; stays 41, 36, 61
        "loyalty": (1, 1, None, 42.0),  # the next stage, churned, is terminal
        "churned": (1, 1, None, 37.0),
    }
    assert {s.stage.key: [k.key for k in s.kpis] for s in report} == {
        "awareness": ["visits", "exposure"],
        "consideration": ["inquiries", "inquiry_conversion"],
        "purchase": ["conversion_rate", "average_order_value"],
        "loyalty": ["repeat_rate", "nps"],
        "churned": ["churn_rate", "win_back_rate"],
    }
    assert kpis(report) == {
        "visits": 1.0,  # c1's page view
        "exposure": 2.0,  # impressions of c1 and c7 (c1's in September is outside)
        "inquiries": 2.0,  # c2, c6
        "inquiry_conversion": 0.0,  # neither bought (c2's order was cancelled)
        "conversion_rate": 0.5,  # buyers c1, c3, c4 of visitors c1, c2, c3, c4, c6, c7
        "average_order_value": 160.0,  # 800 over 5 completed orders
        "repeat_rate": 0.3333,  # c1 of c1, c3, c4
        "nps": 33.3,  # promoters c1, c3, detractor c4 (c2's is no number, c6's is after)
        "churn_rate": 0.1667,  # c3 of at-risk c1, c2, c3, c4, c6, c7
        "win_back_rate": 0.5,  # c4 of lapsed c3, c4
    }


async def test_without_a_window_the_funnel_covers_all_history(db) -> None:
    await population(db)
    report = table(await funnel(db, now=NOW))
    assert report["awareness"][:3] == (1, 7, round(5 / 7, 4))
    assert report["churned"][:2] == (1, 2)


async def test_a_segment_restricts_every_figure_to_its_members(db) -> None:
    await population(db)
    segment_id = uuid.uuid4()
    async with db.write() as session:
        await session.execute(
            insert(Segment).values(
                id=segment_id, key="china", name="China",
                condition={"attribute": {"field": "country", "op": "EQ", "value": "CN"}},
            )
        )  # fmt: skip
    report = await funnel(db, start=START, end=END, segment_id=segment_id, now=NOW)
    assert table(report)["consideration"] == (1, 2, 0.5, 47.5)  # c1 (5 days), c2 (90)
    assert table(report)["awareness"][:2] == (0, 1)
    assert kpis(report)["inquiries"] == 1.0  # c2's
    assert kpis(report)["conversion_rate"] == 0.5  # c1 of c1, c2
    assert kpis(report)["nps"] == 100.0  # c1 only


async def test_a_window_must_run_forwards(db) -> None:
    with pytest.raises(DomainError) as refused:
        await funnel(db, start=END, end=START, now=NOW)
    assert refused.value.field == ("from",)
