"""The derived-state worker (domain.derived): writes commit raw facts and mark profiles dirty;
the worker claims them, brings metrics, RULE tags, stages and segments up to date, and clears
only the marks no write has moved since. These tests turn off the harness's settling."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import event, select

from domain.activity import ingest as activity
from domain.activity import metrics
from domain.activity.ingest import OrderItem
from domain.derived import batches, marks
from domain.segments import definitions as segments
from service.deriving import DerivedWorker
from service.settings import Settings
from store.db import Database
from store.models import CustomerDirty
from store.types import utcnow
from tests.conftest import StatementCounter
from tests.integration.test_rule_tags import holders, rule
from tests.integration.test_segments import draft, stored_members

RATES = {"CNY": Decimal(1)}
BIG = {"orders": {"measure": "SUM", "op": "GTE", "value": 500}}


async def buy(db: Database, who: str, external_id: str, amount: str = "600") -> uuid.UUID:
    item = OrderItem(("email", who), external_id, Decimal(amount), "CNY")
    outcome = await activity.record_orders(db, [item], region="CN", actor="shop", rates=RATES)
    return outcome.customer_ids[0]


async def order_count(db: Database, customer: uuid.UUID) -> int:
    found = (await metrics.metrics_of(db, [customer])).get(customer)
    return found.order_count if found else 0


async def dirty(db: Database) -> dict[uuid.UUID, int]:
    async with db.read() as session:
        rows = await session.execute(select(CustomerDirty.customer_id, CustomerDirty.version))
        return {customer_id: version for customer_id, version in rows}


async def test_a_write_commits_raw_facts_and_the_worker_brings_derived_state_up(db) -> None:
    await rule(db, "big", BIG)
    db.settle_writes = False
    wu = await buy(db, "wu@x.com", "o-1")
    assert await order_count(db, wu) == 0 and await holders(db, "big") == set()
    assert await dirty(db) == {wu: 1}
    assert set(await marks.behind_since(db, [wu])) == {wu}
    assert (await marks.backlog(db)).profiles == 1
    done = await batches.work_once(db)
    assert (done.customers, len(done.lags)) == (1, 1) and done.seconds > 0
    assert await order_count(db, wu) == 1 and await holders(db, "big") == {wu}
    assert await dirty(db) == {} and await marks.behind_since(db, [wu]) == {}
    assert await marks.backlog(db) == marks.Backlog(0, None)
    assert await batches.drain(db) == 0


async def test_a_write_during_a_batch_keeps_its_mark_for_the_next_batch(db) -> None:
    db.settle_writes = False
    wu = await buy(db, "wu@x.com", "o-1")
    claimed = await batches.claim(db)
    assert [c.customer_id for c in claimed] == [wu]
    await buy(db, "wu@x.com", "o-2")  # lands while the worker holds the claim
    assert await dirty(db) == {wu: 2}
    await batches.bring_up_to_date(db, claimed)
    assert await dirty(db) == {wu: 2}  # the second order was not seen: the mark stays
    assert await batches.drain(db) == 1
    assert await order_count(db, wu) == 2 and await dirty(db) == {}


async def test_claims_never_overlap_and_a_dead_workers_lease_expires(db) -> None:
    db.settle_writes = False
    a, b = await buy(db, "a@x.com", "o-a"), await buy(db, "b@x.com", "o-b")
    first = await batches.claim(db, 1)
    second = await batches.claim(db, 1)
    assert {c.customer_id for c in first + second} == {a, b}
    assert await batches.claim(db) == []  # both leased
    later = utcnow() + batches.DEFAULT_LEASE + timedelta(seconds=1)
    again = await batches.claim(db, now=later)  # the leases ran out: claimable again
    assert {c.customer_id for c in again} == {a, b}


async def test_settle_brings_only_the_given_profiles_up_to_date(db) -> None:
    db.settle_writes = False
    a, b = await buy(db, "a@x.com", "o-a"), await buy(db, "b@x.com", "o-b")
    assert await batches.settle(db, [a], timeout=5) is True
    assert (await order_count(db, a), await order_count(db, b)) == (1, 0)
    assert set(await dirty(db)) == {b}


async def test_a_caller_waiting_for_derived_state_reads_its_writes(db) -> None:
    db.settle_writes = False
    token = batches.wait_for_derived.set(5.0)
    try:
        wu = await buy(db, "wu@x.com", "o-1")
    finally:
        batches.wait_for_derived.reset(token)
    assert await order_count(db, wu) == 1 and await dirty(db) == {}


async def test_the_worker_loop_follows_writes_on_its_own(db, settings: Settings) -> None:
    """SQLite: it polls. PostgreSQL: the write's commit wakes it (its polling is off here)."""
    db.settle_writes = False
    poll = 3600.0 if db.dialect == "postgresql" else 0.05
    quick = settings.model_copy(update={"derived_poll_seconds": poll})
    seen: list[int] = []
    worker = DerivedWorker(db, quick, on_batch=lambda result: seen.append(result.customers))
    task = asyncio.create_task(worker.run())
    try:
        if db.dialect == "postgresql":
            await asyncio.wait_for(worker.listening.wait(), 30)
        wu = await buy(db, "wu@x.com", "o-1")
        for _ in range(600):  # until the worker has been through it (a bound, not a timing)
            if not await dirty(db):
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert await dirty(db) == {} and await order_count(db, wu) == 1
    assert sum(seen) == 1


async def test_a_write_whose_settling_fails_still_answers(db, monkeypatch) -> None:
    async def broken(*_args: object, **_kwargs: object) -> bool:
        raise RuntimeError("the database went away after the commit")

    monkeypatch.setattr(batches, "settle", broken)
    wu = await buy(db, "wu@x.com", "o-1")  # committed: the worker will follow
    assert await dirty(db) == {wu: 1}


async def test_settle_does_not_wait_for_marks_of_writes_after_it(db) -> None:
    db.settle_writes = False
    a = await buy(db, "a@x.com", "o-a")
    item = OrderItem(("email", "b@x.com"), "o-b", Decimal("600"), "CNY")
    later = utcnow() + timedelta(hours=1)  # a write dated after the settle begins
    b = (
        await activity.record_orders(db, [item], region="CN", actor="x", rates=RATES, now=later)
    ).customer_ids[0]
    assert [c.customer_id for c in await batches.claim(db, only=[b])] == [b]  # a worker has it
    assert await batches.settle(db, [a, b], timeout=0) is True
    assert await order_count(db, a) == 1 and set(await dirty(db)) == {b}


async def _define(db: Database, rules: range, materialized: range) -> None:
    """RULE tags matching every buyer, and materialized segments (odd ones read a tag)."""
    for n in rules:
        await rule(db, f"r{n}", {"orders": {"measure": "SUM", "op": "GTE", "value": n + 1}})
    for n in materialized:
        condition = {"metric": {"name": "FREQUENCY", "op": "GTE", "value": 1}}
        if n % 2:
            condition = {"tag": {"key": f"r{n % 2}"}}
        draft = segments.SegmentDraft(f"s{n}", f"s{n}", None, condition, True)
        await segments.define_segment(db, draft)


async def _batch_statements(db: Database, counter: StatementCounter, people: range) -> int:
    """New buyers in one write, then the statements of the batch that derives their state."""
    items = [OrderItem(("email", f"p{n}@x.com"), f"o-{n}", Decimal(900), "CNY") for n in people]
    await activity.record_orders(db, items, region="CN", actor="shop", rates=RATES)
    claimed = await batches.claim(db)
    assert len(claimed) == len(people)
    counter.reset()
    await batches.bring_up_to_date(db, claimed)
    return counter.count


async def test_a_batch_s_statements_grow_with_neither_profiles_nor_rules(db) -> None:
    """RULE tags, and materialized segments, are evaluated together, a level of their
    dependencies at a time: a batch of 2 profiles with 2 RULE tags and 2 segments sends as many
    statements as one of 12 profiles with 8 RULE tags and 6 segments."""
    db.settle_writes = False
    counter = StatementCounter()
    event.listen(db.engine.sync_engine, "before_cursor_execute", counter)
    await _define(db, range(2), range(2))
    small = await _batch_statements(db, counter, range(2))
    await _define(db, range(2, 8), range(2, 6))
    large = await _batch_statements(db, counter, range(2, 14))
    assert small == large <= batches.BATCH_STATEMENTS
    assert len(await holders(db, "r7")) == 14  # every buyer: the batch did assign


async def test_a_batch_evaluates_what_reads_a_rule_tag_or_a_segment_after_it(db) -> None:
    """Levels: a RULE tag reading a RULE tag, and a materialized segment reading another, see
    what the same batch just derived ("a-" keys sort first: only the dependencies order them)."""
    db.settle_writes = False
    await rule(db, "z_base", BIG)
    await rule(db, "a_follower", {"tag": {"key": "z_base"}})
    base = await segments.define_segment(db, draft("z-big", {"tag": {"key": "z_base"}}))
    on_top = await segments.define_segment(db, draft("a-on-top", {"segment": {"key": "z-big"}}))
    wu = await buy(db, "wu@x.com", "o-1")
    assert await batches.drain(db) == 1
    assert await holders(db, "a_follower") == {wu}
    assert await stored_members(db, base.id) == await stored_members(db, on_top.id) == {wu}
