"""The demo seed: what it reports is in the database, and the data obeys the model's rules
(normalized unique identities, stage histories along the funnel graph, metrics that match the
orders). Runs on SQLite, and on PostgreSQL when C360_TEST_DATABASE_URL names a server."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select

from domain.identity.normalize import normalize
from domain.lifecycle.model import FUNNEL_EDGES
from service.bootstrap import ensure_reference_data
from service.demo import DemoSummary, seed_demo
from store.db import Database
from store.migrate import upgrade
from store.models import (
    Customer,
    CustomerMetrics,
    Event,
    Identity,
    Order,
    StageTransition,
    TagAssignment,
    TagHistory,
)
from tests.conftest import BACKENDS, fresh_database_url

CUSTOMERS = 200
T = TypeVar("T")


def _migrated_database(backend: str, directory: Path) -> Iterator[str]:
    """A new database at the head migration, with reference data; dropped afterwards."""
    for url in fresh_database_url(backend, directory):
        upgrade(url)
        asyncio.run(_with_database(url, ensure_reference_data))
        yield url


async def _with_database(url: str, work: Callable[[Database], Awaitable[T]]) -> T:
    db = Database.from_url(url)
    try:
        return await work(db)
    finally:
        await db.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, DemoSummary]]:
    """One demo database per backend, seeded once and only read by the tests that use it."""
    for url in _migrated_database(request.param, tmp_path_factory.mktemp("demo")):
        summary = asyncio.run(_with_database(url, lambda db: seed_demo(db, customers=CUSTOMERS)))
        yield url, summary


@pytest.fixture
async def db(seeded: tuple[str, DemoSummary]) -> AsyncIterator[Database]:
    database = Database.from_url(seeded[0])
    yield database
    await database.dispose()


@pytest.fixture
def summary(seeded: tuple[str, DemoSummary]) -> DemoSummary:
    return seeded[1]


async def _all(db: Database, *columns: Any) -> list[Any]:
    async with db.read() as session:
        return list((await session.execute(select(*columns))).all())


async def _count(db: Database, model: Any) -> int:
    async with db.read() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def test_seed_demo_reports_the_rows_it_inserted(db: Database, summary: DemoSummary) -> None:
    assert summary.customers == CUSTOMERS
    assert await _count(db, Customer) == summary.customers
    assert await _count(db, Identity) == summary.identities
    assert await _count(db, Order) == summary.orders
    assert await _count(db, Event) == summary.events
    assert await _count(db, TagAssignment) == summary.tag_assignments
    assert await _count(db, TagHistory) == summary.tag_assignments
    assert await _count(db, StageTransition) == summary.stage_transitions
    assert await _count(db, CustomerMetrics) == summary.customers
    assert summary.duplicate_people == round(CUSTOMERS * 0.03)
    assert min(summary.orders, summary.events, summary.tag_assignments) > 0


async def test_every_customer_is_active_and_holds_one_to_five_identities(db: Database) -> None:
    customers = await _all(db, Customer.id, Customer.status, Customer.created_at)
    held = Counter(customer_id for (customer_id,) in await _all(db, Identity.customer_id))
    assert {status for _, status, _ in customers} == {"ACTIVE"}
    assert all(1 <= held[customer_id] <= 5 for customer_id, _, _ in customers)
    assert all(created_at.tzinfo is not None for _, _, created_at in customers)


async def test_identities_are_unique_and_stored_normalized(db: Database) -> None:
    identities = await _all(db, Identity.type, Identity.value)
    assert len(set(identities)) == len(identities)
    by_type: dict[str, list[str]] = defaultdict(list)
    for kind, value in identities:
        by_type[kind].append(value)
    assert set(by_type) == {
        "email",
        "phone",
        "wechat_openid",
        "wechat_unionid",
        "device_id",
        "crm_id",
    }
    for kind in ("email", "phone"):
        assert all(normalize(kind, value, region="CN") == value for value in by_type[kind])
    assert all(value.startswith("+861") and len(value) == 14 for value in by_type["phone"])
    assert all(str(uuid.UUID(value)) == value for value in by_type["device_id"])
    assert all(value.startswith("o") and len(value) == 28 for value in by_type["wechat_openid"])


async def test_customer_email_and_phone_are_identities_they_hold(db: Database) -> None:
    held = set(await _all(db, Identity.customer_id, Identity.type, Identity.value))
    customers = await _all(db, Customer.id, Customer.email, Customer.phone)
    for customer_id, email, phone in customers:
        assert email is None or (customer_id, "email", email) in held
        assert phone is None or (customer_id, "phone", phone) in held
    assert sum(phone is not None for _, _, phone in customers) > len(customers) / 2


async def test_stage_histories_walk_the_funnel_graph(db: Database) -> None:
    allowed = {*FUNNEL_EDGES, (None, "awareness")}
    histories = await _histories(db)
    for history in histories.values():
        assert history[0][:2] == (None, "awareness")
        assert all((before, after) in allowed for before, after, _ in history)
        assert all(later[0] == earlier[1] for earlier, later in pairwise(history))
    reached = {after for history in histories.values() for _, after, _ in history}
    assert reached == {"awareness", "consideration", "purchase", "loyalty", "churned"}


async def test_a_customers_stage_is_their_last_transition(db: Database) -> None:
    histories = await _histories(db)
    customers = await _all(db, Customer.id, Customer.stage, Customer.stage_entered_at)
    for customer_id, stage, entered_at in customers:
        _, last_stage, last_at = histories[customer_id][-1]
        assert (stage, entered_at) == (last_stage, last_at)


async def test_metrics_count_the_completed_orders_and_sum_them_net_of_refunds(
    db: Database,
) -> None:
    orders = await _all(db, Order.customer_id, Order.status, Order.base_amount)
    count: Counter[uuid.UUID] = Counter()
    spent: dict[uuid.UUID, Decimal] = defaultdict(Decimal)
    for customer_id, status, base_amount in orders:
        if status == "completed":
            count[customer_id] += 1
            spent[customer_id] += base_amount
        elif status == "refunded":
            spent[customer_id] -= abs(base_amount)
    metrics = await _all(
        db, CustomerMetrics.customer_id, CustomerMetrics.order_count, CustomerMetrics.total_spent
    )
    for customer_id, order_count, total_spent in metrics:
        assert order_count == count[customer_id]
        assert total_spent == spent[customer_id]


async def test_the_demo_scores_rfm_clv_and_churn_risk_without_a_recompute(db: Database) -> None:
    rows = await _all(
        db,
        CustomerMetrics.order_count,
        CustomerMetrics.rfm_segment,
        CustomerMetrics.clv,
        CustomerMetrics.churn_risk,
    )
    buyers = [row for row in rows if row.order_count > 0]
    assert buyers and all(
        row.rfm_segment and row.clv is not None and 0 <= row.churn_risk <= 1 for row in buyers
    )


async def _histories(db: Database) -> dict[uuid.UUID, list[tuple[str | None, str, Any]]]:
    rows = await _all(
        db,
        StageTransition.customer_id,
        StageTransition.from_stage,
        StageTransition.to_stage,
        StageTransition.at,
        StageTransition.id,
    )
    histories: dict[uuid.UUID, list[tuple[str | None, str, Any]]] = defaultdict(list)
    for customer_id, before, after, at, _id in sorted(rows, key=lambda row: (row[3], row[4])):
        histories[customer_id].append((before, after, at))
    return histories


@pytest.fixture(params=BACKENDS)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from _migrated_database(request.param, tmp_path)


async def test_seeding_again_with_another_seed_adds_new_people(empty_url: str) -> None:
    db = Database.from_url(empty_url)
    try:
        first = await seed_demo(db, customers=50, seed=1)
        second = await seed_demo(db, customers=50, seed=2)
        assert await _count(db, Customer) == first.customers + second.customers == 100
        assert await _count(db, Identity) == first.identities + second.identities
    finally:
        await db.dispose()


@pytest.fixture
def two_empty_sqlite_urls(tmp_path: Path) -> Iterator[list[str]]:
    yield [next(_migrated_database("sqlite", tmp_path)) for _ in range(2)]


async def test_the_same_seed_gives_the_same_people(two_empty_sqlite_urls: list[str]) -> None:
    people = []
    for url in two_empty_sqlite_urls:
        db = Database.from_url(url)
        try:
            await seed_demo(db, customers=30, seed=7)
            columns = (Customer.id, Customer.display_name, Customer.email, Customer.phone)
            people.append(sorted(await _all(db, *columns)))
        finally:
            await db.dispose()
    assert people[0] == people[1]
