"""Retention of events (domain.activity.retention): the months before the horizon are rolled up
and dropped (PostgreSQL: their partitions; SQLite: their rows), and what derives from events
answers as before: last activity, channel summaries, all-time event counts; merges move the
rollups and unmerges bring them back; erasure deletes them; ingest refuses what retention
would drop."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text

from domain.access.erasure import erase_customer
from domain.activity import channels, metrics, retention
from domain.activity.ingest import EventItem, IngestOutcome, track_events
from domain.identity import merging
from domain.lifecycle.model import RuleRecord, load_model
from domain.lifecycle.rules import rules_catalog
from service.deriving import run_process
from service.settings import Settings
from store import partitions
from store.db import Database
from store.models import Customer, Event, EventRollup
from tests.integration.condition_helpers import matching

NOW = datetime.now(UTC)
KEPT = 3  # months before this one
HORIZON = retention.horizon(NOW, KEPT)
RETIRED = (200, 150)  # days ago: before the horizon whatever the day of the month
# All-time counts (no window, no property filter): rollups count; one with a window does not.
CONDITIONS: tuple[dict[str, Any], ...] = (
    {"event": {"type": "page_view", "op": "GTE", "count": 3}},
    {"event": {"type": "page_view", "op": "EQ", "count": 1}},
    {"event": {"type": "page_view", "op": "LT", "count": 2}},
    {"event": {"type": "purchase", "channel": "web"}},
    {"not": {"event": {"type": "purchase"}}},
)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def event(who: str, type_: str, channel: str | None, days: float, key: str | None = None) -> Any:
    return EventItem(("email", who), type_, channel, ago(days), {"sku": "A"}, key)


async def track(db: Database, *items: EventItem, kept: int | None = None) -> IngestOutcome:
    return await track_events(db, items, region="CN", actor="test", now=NOW, retained_months=kept)


async def population(db: Database) -> tuple[uuid.UUID, uuid.UUID]:
    """a: events on both sides of the horizon; b: only before it."""
    async with db.write() as session:  # months back to the oldest event (PostgreSQL)
        await partitions.ensure_ahead(session, ago(max(RETIRED) + 1), 9)
    a = await track(
        db,
        event("a@x.com", "page_view", "app", 200),
        event("a@x.com", "page_view", "app", 150),
        event("a@x.com", "purchase", "web", 150),
        event("a@x.com", "page_view", "app", 3),
    )
    b = await track(
        db, event("b@x.com", "page_view", "web", 160), event("b@x.com", "login", None, 150)
    )
    return a.customer_ids[0], b.customer_ids[0]


async def retire(db: Database, before: datetime = HORIZON) -> tuple[str, ...]:
    return await db.transact(lambda session: retention.retire(session, before))


async def derived(db: Database) -> dict[str, Any]:
    """Everything that derives from events, computed again from the stored rows."""
    await metrics.recompute_all(db, NOW)
    await channels.rebuild_all(db)
    async with db.read() as session:
        ids = list((await session.scalars(select(Customer.id).order_by(Customer.id))).all())
    found = await metrics.metrics_of(db, ids)
    return {
        "last_activity": {i: found[i].last_activity_at for i in ids},
        "channels": {
            (r.customer_id, r.channel): (r.first_seen_at, r.last_seen_at, r.events)
            for records in (await channels.channels_of(db, ids)).values()
            for r in records
        },
        "conditions": [await matching(db, c, NOW) for c in CONDITIONS],
    }


async def counts(db: Database) -> tuple[int, int]:
    async with db.read() as session:
        events = await session.scalar(select(func.count()).select_from(Event))
        rollups = await session.scalar(select(func.sum(EventRollup.events)))
    return int(events or 0), int(rollups or 0)


def test_the_horizon_keeps_this_month_and_the_months_before_it_whole() -> None:
    now = datetime(2026, 3, 31, 23, 59, tzinfo=UTC)
    assert retention.horizon(now, 1) == datetime(2026, 2, 1, tzinfo=UTC)
    assert retention.horizon(now, 3) == datetime(2025, 12, 1, tzinfo=UTC)
    assert retention.horizon(now, 15) == datetime(2024, 12, 1, tzinfo=UTC)


async def test_retiring_drops_the_months_and_keeps_what_derives_from_them(db: Database) -> None:
    await population(db)
    before = await derived(db)
    assert before["conditions"][0]  # a has three page views, two of them retired
    dropped = await retire(db)
    assert await counts(db) == (1, 5)  # a's page view 3 days ago stays; 5 rolled up
    if db.dialect == "postgresql":
        retired = {partitions.partition_name(partitions.month_of(ago(d))) for d in RETIRED}
        assert retired <= set(dropped)
        async with db.read() as session:
            left = set(await partitions.months(session))
        assert all(month >= HORIZON for month in left)
        assert partitions.month_of(NOW) in left
    assert await derived(db) == before
    assert await retire(db) == ()  # nothing left to retire
    assert await counts(db) == (1, 5)


async def test_a_window_and_a_property_filter_see_only_the_retained_events(db: Database) -> None:
    a, _ = await population(db)
    await retire(db)
    windowed = {"event": {"type": "page_view", "op": "GTE", "count": 2, "withinDays": 400}}
    filtered = {
        "event": {
            "type": "page_view",
            "op": "GTE",
            "count": 2,
            "where": [{"property": "sku", "op": "EQ", "value": "A"}],
        }
    }
    assert await matching(db, windowed, NOW) == set()
    assert await matching(db, filtered, NOW) == set()
    assert await matching(db, {"event": {"type": "page_view", "count": 3}}, NOW) == {a}


async def test_a_merge_moves_the_rollups_and_an_unmerge_brings_them_back(db: Database) -> None:
    a, b = await population(db)
    await retire(db)
    before = await derived(db)
    merge = await merging.merge_customers(db, a, b, None, "admin:t")
    async with db.read() as session:
        owners = set((await session.scalars(select(EventRollup.customer_id))).all())
    assert owners == {a}
    merged = await derived(db)
    assert merged["last_activity"][a] == ago(3)
    assert merged["channels"][(a, "web")] == (ago(160), ago(150), 2)
    assert await matching(db, {"event": {"type": "login"}}, NOW) == {a}
    await merging.unmerge(db, merge.id, "admin:t")
    assert await derived(db) == before


async def test_erasure_deletes_the_rollups(db: Database, settings: Settings) -> None:
    a, b = await population(db)
    await retire(db)
    await erase_customer(db, b, "admin:ops", settings.erasure_salt)
    async with db.read() as session:
        owners = set((await session.scalars(select(EventRollup.customer_id))).all())
    assert owners == {a}


async def test_ingest_refuses_events_older_than_the_horizon(db: Database) -> None:
    outcome = await track(
        db,
        event("c@x.com", "page_view", "app", 3),
        event("c@x.com", "page_view", "app", 200),
        kept=KEPT,
    )
    assert outcome.accepted == 1
    [error] = outcome.errors
    assert (error.code, error.field) == ("OUTSIDE_RETENTION", ("events", "1", "occurredAt"))
    assert HORIZON.isoformat() in error.message
    kept_forever = await track(db, event("c@x.com", "page_view", "app", 200, "old"))
    assert (kept_forever.accepted, kept_forever.errors) == (1, ())


async def test_an_idempotency_key_of_a_retired_month_is_forgotten(db: Database) -> None:
    await population(db)
    old = await track(
        db,
        event("d@x.com", "page_view", "app", 150, "evt-old"),  # a month's partition
        event("d@x.com", "page_view", "app", 400, "evt-older"),  # the default partition
        event("d@x.com", "page_view", "app", 2, "evt-new"),
    )
    assert old.accepted == 3
    await retire(db)
    if db.dialect == "postgresql":
        async with db.read() as session:
            keys = await session.scalars(text("SELECT idempotency_key FROM event_keys"))
            assert keys.all() == ["evt-new"]
    again = await track(
        db,
        event("d@x.com", "page_view", "app", 2, "evt-old"),
        event("d@x.com", "page_view", "app", 2, "evt-older"),
        event("d@x.com", "page_view", "app", 2, "evt-new"),
    )
    assert (again.accepted, again.duplicates) == (2, 1)


async def test_c360_work_retires_the_months_past_the_retention(
    db: Database, settings: Settings
) -> None:
    await population(db)
    every = settings.model_copy(
        update={
            "event_partition_interval_seconds": 0.05,
            "event_retention_months": KEPT,
            "derived_poll_seconds": 0.05,
        }
    )
    task = asyncio.create_task(run_process(db, every))
    try:
        for _ in range(500):  # polls the task's effect; it sleeps 0.05 s between runs
            await asyncio.sleep(0.01)
            if task.done() or (await counts(db))[1]:
                break
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert await counts(db) == (1, 5)


@pytest.mark.parametrize(("kept", "left"), [(None, (6, 0)), (KEPT, (1, 5))])
async def test_without_a_retention_nothing_is_retired(
    db: Database, kept: int | None, left: tuple[int, int]
) -> None:
    await population(db)
    async with db.write() as session:
        await retention.keep_months(session, NOW, 3, kept)
    assert await counts(db) == left


async def test_lifecycle_rules_count_the_rollups_over_all_time(db: Database) -> None:
    """Lifecycle rules read no stored catalog unless they must: an all-time event count still
    learns that months were rolled up; a windowed one has no need to ask."""
    await population(db)
    all_time = {"event": {"type": "login"}}
    windowed = {"event": {"type": "login", "withinDays": 30}}
    async with db.read() as session:
        model = await load_model(session)

    def ruled(condition: dict[str, Any]) -> Any:
        return replace(model, rules=(RuleRecord("r", model.stages[-1].key, 1, condition),))

    async def rolled_up(condition: dict[str, Any]) -> bool:
        async with db.read() as session:
            return (await rules_catalog(session, ruled(condition))).events_rolled_up

    assert not await rolled_up(all_time)
    await retire(db)
    assert await rolled_up(all_time)
    assert not await rolled_up(windowed)
