"""Merges written together (merge_batch.merge_all) leave exactly what the same merges written
one at a time leave, chains included, and every one of them still undoes exactly; an identify
batch pays the same statements for 1 merge as for 20."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import event, select

from domain.identity import merging
from domain.identity.merge_batch import MergeRequest, merge_all
from store.db import Database
from store.models import (
    Customer,
    CustomerChannel,
    CustomerMetrics,
    Event,
    Identity,
    MergeRecord,
    Order,
    OutboxEvent,
    Segment,
    SegmentMembership,
    StageTransition,
    TagAssignment,
    TagDefinition,
)
from tests.conftest import StatementCounter, reset
from tests.integration.identity_helpers import batch, item

T0 = datetime(2025, 3, 1, tzinfo=UTC)
PEOPLE = "abcdef"
# Fixed ids, so that two runs from a reset database can be compared row for row.
IDS = {name: uuid.UUID(int=i + 1) for i, name in enumerate(PEOPLE)}
VIP, NEW, GOLD = (uuid.UUID(int=100 + i) for i in range(3))
LOYAL, RECENT = uuid.UUID(int=200), uuid.UUID(int=201)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


# (person, tag, assigned on day): conflicts that a later assignment wins, one that a tie keeps,
# and rows that move twice (b -> a -> c).
TAGS = [
    ("a", VIP, 1),
    ("b", VIP, 3),
    ("b", NEW, 0),
    ("d", NEW, 5),
    ("d", GOLD, 0),
    ("c", VIP, 10),
    ("c", GOLD, -5),
    ("e", VIP, 0),
    ("f", VIP, 0),
]
MEMBERS = [(LOYAL, "a"), (LOYAL, "b"), (LOYAL, "c"), (RECENT, "d"), (RECENT, "e")]
# b into a, d into a, then a (holding b's and d's rows) into c; e and f on their own.
MERGES = [("a", "b"), ("a", "d"), ("c", "a"), ("e", "f")]


async def arrange(db: Database) -> None:
    """Six profiles, each holding a row of every kind a merge moves."""
    async with db.write() as session:
        session.add_all(
            [
                TagDefinition(id=VIP, key="vip", name="VIP"),
                TagDefinition(id=NEW, key="new", name="New"),
                TagDefinition(id=GOLD, key="gold", name="Gold"),
                Segment(id=LOYAL, key="loyal", name="Loyal", condition={}, materialized=True),
                Segment(id=RECENT, key="recent", name="Recent", condition={}, materialized=True),
            ]
        )
        for n, name in enumerate(PEOPLE):
            set_on = day(n % 3).isoformat()
            session.add(
                Customer(
                    id=IDS[name],
                    display_name=name.upper(),
                    city=f"city-{name}" if n % 2 else None,
                    attributes={"tier": name, **({"only": name} if n == 1 else {})},
                    field_times={"display_name": set_on, "city": set_on, "attributes.tier": set_on},
                    field_sources={"display_name": "crm", "city": "app"},
                    email=f"{name}@example.com",
                    phone=None if n % 2 else f"+861380013800{n}",
                    first_seen_at=day(-n),
                    last_seen_at=day(n),
                    created_at=day(-10 + n),
                    updated_at=day(n),
                )
            )
        await session.flush()
        for n, name in enumerate(PEOPLE):
            owner = IDS[name]
            session.add_all(
                [
                    Identity(
                        id=1000 + n,
                        customer_id=owner,
                        type="email",
                        value=f"{name}@example.com",
                        first_seen_at=day(n),
                        last_seen_at=day(n),
                    ),
                    Event(
                        id=2000 + n,
                        customer_id=owner,
                        type="page_view",
                        channel="web" if n % 2 else "app",
                        occurred_at=day(n),
                        received_at=day(n),
                        properties={"p": name},
                    ),
                    Order(
                        id=3000 + n,
                        customer_id=owner,
                        external_id=f"o-{name}",
                        source="shop",
                        amount=Decimal(10 + n),
                        currency="CNY",
                        base_amount=Decimal(10 + n),
                        placed_at=day(n),
                        created_at=day(n),
                    ),
                    StageTransition(
                        id=4000 + n, customer_id=owner, to_stage="awareness", at=day(n), actor="t"
                    ),
                ]
            )
        for i, (name, tag, on) in enumerate(TAGS):
            session.add(
                TagAssignment(
                    id=5000 + i, customer_id=IDS[name], tag_id=tag, value=name, assigned_at=day(on)
                )
            )
        for segment, name in MEMBERS:
            session.add(SegmentMembership(segment_id=segment, customer_id=IDS[name], entered_at=T0))


def requests() -> list[MergeRequest]:
    return [MergeRequest(IDS[s], IDS[m], f"{m} into {s}") for s, m in MERGES]


RAW = (Customer, Identity, Event, Order, StageTransition, TagAssignment, SegmentMembership)
DERIVED = (CustomerMetrics, CustomerChannel, MergeRecord, OutboxEvent)
# Written with the wall clock (or generated) in each run.
VOLATILE = {
    "customers": {"updated_at"},
    "tag_assignments": {"id"},  # an unmerge inserts the dropped rows again
    "customer_metrics": {"updated_at", "churn_risk", "clv"},
    "merge_records": {"merged_at"},
    "outbox": {"id", "event_id", "created_at", "dispatched_at"},
}


def _plain(value: Any, merges: dict[str, str]) -> Any:
    """A value with the run's merge ids replaced by their place, and JSON made comparable."""
    if isinstance(value, dict):
        return {k: _plain(v, merges) for k, v in value.items() if k != "updated_at"}
    if isinstance(value, list):
        return [_plain(v, merges) for v in value]
    if isinstance(value, uuid.UUID | str) and str(value) in merges:
        return merges[str(value)]
    return value


async def state(db: Database, models: tuple[Any, ...], merge_ids: list[uuid.UUID]) -> Any:
    merges = {str(m): f"merge {i}" for i, m in enumerate(merge_ids)}
    dump = {}
    async with db.read() as session:
        for model in models:
            table = model.__table__
            skip = VOLATILE.get(table.name, set())
            rows = [
                {k: _plain(v, merges) for k, v in row._mapping.items() if k not in skip}
                for row in await session.execute(select(table))
            ]
            dump[table.name] = sorted(rows, key=repr)
    return dump


async def test_merges_written_together_leave_what_merges_one_at_a_time_leave(db) -> None:
    db.settle_writes = False  # derived state (stages from rules, ...) is not compared here
    runs = []
    for together in (False, True):
        await reset(db)
        await arrange(db)
        initial = await state(db, RAW, [])
        views = []
        for part in [requests()] if together else [[r] for r in requests()]:
            async with db.write() as session:
                views += await merge_all(session, part, "test")
        ids = [v.id for v in views]
        merged = await state(db, RAW + DERIVED, ids)
        for view in reversed(views):
            await merging.unmerge(db, view.id, "test")
        undone = await state(db, RAW, ids)
        runs.append((merged, undone))
        # Every row of every profile is back as it was; only the profiles' versions moved on.
        # Tags aside: a tag row that one merge of a chain moved (d's gold, into a) and a later
        # one dropped (a into c) comes back from the later undo as a new row, which the
        # earlier undo no longer finds by id; that holds one merge at a time as well.
        for rows in (initial, undone):
            for row in rows["customers"]:
                row.pop("version")
        assert {k: v for k, v in undone.items() if k != "tag_assignments"} == {
            k: v for k, v in initial.items() if k != "tag_assignments"
        }
    (one_at_a_time, undone_one), (together_, undone_together) = runs
    assert together_ == one_at_a_time
    assert undone_together == undone_one
    # The chain did what it claims: c holds everything; a's record lists b's and d's rows too.
    customers = {row["id"]: row for row in together_["customers"]}
    assert customers[IDS["a"]]["status"] == "MERGED"
    assert customers[IDS["a"]]["merged_into_id"] == IDS["c"]
    records = {row["reason"]: row["snapshot"] for row in together_["merge_records"]}
    assert records["a into c"]["events"] == [2000, 2001, 2003]
    assert records["b into a"]["events"] == [2001]


async def count_identify(db: Database, merges: int, others: int) -> int:
    """Statements of one identify batch of `merges` inputs that each merge two profiles, and
    `others` inputs of new people."""
    people = [item(("email", f"m{merges}-{i}@example.com")) for i in range(merges)] + [
        item(("phone", f"+86139{merges:02d}00{i:04d}")) for i in range(merges)
    ]
    await batch(db, *people)
    inputs = [
        item(("email", f"m{merges}-{i}@example.com"), ("phone", f"+86139{merges:02d}00{i:04d}"))
        for i in range(merges)
    ] + [item(("email", f"new{merges}-{i}@example.com")) for i in range(others)]
    counter = StatementCounter()
    event.listen(db.engine.sync_engine, "before_cursor_execute", counter)
    try:
        results = await batch(db, *inputs)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", counter)
    assert sum(len(r.merge_ids) for r in results) == merges
    return counter.count


async def test_an_identify_batch_costs_as_many_statements_for_20_merges_as_for_1(db) -> None:
    db.settle_writes = False  # the write itself: derived state follows in the worker
    assert await count_identify(db, 1, 5) == await count_identify(db, 20, 5)
