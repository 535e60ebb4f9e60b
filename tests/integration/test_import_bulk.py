"""`c360 import`'s bulk path for events and orders (domain.activity.bulk): the same outcome as
the API's ingest with one identity resolution per distinct person in a batch, regrouping by
person, duplicate keys within a batch and across runs, merges between batches, splitting a
failing batch, and statements per batch that do not grow with its rows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.activity import bulk, ingest
from domain.activity.ingest import EventItem, IngestOutcome
from domain.identity.linking import IdentifyInput, identify_batch
from service.settings import Settings
from store.db import Database
from store.models import Customer, CustomerChannel, CustomerDirty, Event, Identity
from tests.conftest import StatementCounter
from tests.integration.test_import import (
    ORDERS,
    PoisonedDatabase,
    count,
    rejects_of,
    run_import,
    write_file,
)

T = TypeVar("T")
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _event(email: str, day: int, **extra: Any) -> dict[str, Any]:
    return {
        "customer": {"type": "email", "value": email},
        "type": "page_view",
        "channel": "web",
        "occurredAt": f"2026-01-{day:02d}T10:00:00+00:00",
        "properties": {"day": day},
        **extra,
    }


async def _events_by_email(db: Database) -> dict[str, list[int]]:
    """Each email's events (their `day` property), through the profile holding the email."""
    async with db.read() as session:
        rows = await session.execute(
            select(Identity.value, Event.properties)
            .join(Event, Event.customer_id == Identity.customer_id)
            .where(Identity.type == "email")
        )
        out: dict[str, list[int]] = {}
        for email, properties in rows:
            out.setdefault(email, []).append(properties["day"])
    return {email: sorted(days) for email, days in out.items()}


async def test_every_event_lands_on_its_identitys_profile_new_people_included(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    known = write_file(tmp_path / "people.jsonl", [{"identities": [
        {"type": "email", "value": "k@example.com"}]}])  # fmt: skip
    await run_import(db, settings, "customers", known)
    rows = [
        _event("k@example.com", 3),
        _event("n@example.com", 5),
        _event("m@example.com", 2),
        _event("N@Example.com", 9),  # the same person as n@, spelled otherwise
        _event("k@example.com", 1),
        _event("n@example.com", 7),
    ]
    path = write_file(tmp_path / "events.jsonl", rows)
    result = await run_import(db, settings, "events", path, batch_size=100)
    assert (result.loaded, result.rejected) == (6, 0)
    assert await count(db, Customer) == 3
    assert await _events_by_email(db) == {
        "k@example.com": [1, 3],
        "n@example.com": [5, 7, 9],
        "m@example.com": [2],
    }
    async with db.read() as session:
        seen = await session.execute(
            select(Identity.value, Identity.first_seen_at, Identity.last_seen_at).where(
                Identity.value == "n@example.com"
            )
        )
        [(_, first, last)] = seen.all()
    assert (first.day, last.day) == (5, 9)  # the earliest and the latest of its events


def _items(prefix: str) -> list[EventItem]:
    """A batch with known and new people, repeats, refusals and duplicate keys; identities
    and keys carry `prefix` so that two runs of it share one database."""

    def at(day: int) -> datetime:
        return datetime(2026, 2, day, 8, 0, tzinfo=UTC)

    def one(name: str, day: int, key: str | None, **extra: Any) -> EventItem:
        return EventItem(
            identity=("email", f"{prefix}{name}@example.com"),
            type=extra.pop("type", "login"),
            channel=extra.pop("channel", "app"),
            occurred_at=at(day),
            properties={"day": day},
            idempotency_key=f"{prefix}{key}" if key else None,
        )

    return [
        one("known", 4, "a"),
        one("new", 2, "b", channel="web"),
        one("known", 1, "c", channel="web"),
        one("new", 6, "b"),  # a duplicate within the batch
        one("known", 9, "stored"),  # a duplicate of a stored event
        one("other", 3, "d", type="no spaces"),  # refused by the event check
        EventItem(("email", f"{prefix}nobody"), "login", occurred_at=at(5)),  # bad identity
        one("new", 8, None),
        one("third", 7, "e", channel=None),
    ]


async def _snapshot(db: Database, prefix: str) -> dict[str, Any]:
    """What the batch left behind, per identity with `prefix` stripped."""

    def name(value: str) -> str:
        return value.removeprefix(prefix)

    async with db.read() as session:
        identities = await session.execute(
            select(Identity.value, Identity.customer_id, Identity.first_seen_at,
                   Identity.last_seen_at).where(Identity.value.startswith(prefix))
        )  # fmt: skip
        holder = {}
        out: dict[str, Any] = {}
        for value, customer_id, first, last in identities:
            holder[customer_id] = name(value)
            out[name(value)] = {"identity": (first, last)}
        for customer_id, email in holder.items():
            customer = await session.get(Customer, customer_id)
            assert customer is not None
            events = await session.execute(
                select(Event.type, Event.channel, Event.occurred_at, Event.idempotency_key)
                .where(Event.customer_id == customer_id)
                .order_by(Event.occurred_at)
            )
            channels = await session.execute(
                select(CustomerChannel.channel, CustomerChannel.first_seen_at,
                       CustomerChannel.last_seen_at, CustomerChannel.events)
                .where(CustomerChannel.customer_id == customer_id)
                .order_by(CustomerChannel.channel)
            )  # fmt: skip
            dirty = (  # the mark, and the span of activity the worker widens seen times by
                await session.execute(
                    select(CustomerDirty.seen_first, CustomerDirty.seen_last).where(
                        CustomerDirty.customer_id == customer_id
                    )
                )
            ).all()
            out[email] |= {
                "customer": (customer.first_seen_at, customer.last_seen_at, customer.status),
                "events": [(t, c, o, name(k) if k else k) for t, c, o, k in events],
                "channels": channels.all(),
                "dirty": dirty,
            }
    return out


def _outcome(outcome: IngestOutcome) -> tuple[Any, ...]:
    errors = [(e.code, e.field) for e in outcome.errors]
    return outcome.accepted, outcome.duplicates, errors, len(outcome.customer_ids)


async def test_the_bulk_path_leaves_what_track_events_leaves(db: Database) -> None:
    """The differential test: the same batch through the API's ingest and through the bulk
    path, in one database under two prefixes, leaves the same rows behind."""
    db.settle_writes = False  # the marks themselves are compared
    outcomes = {}
    for prefix, write in (("api-", ingest.track_events), ("bulk-", bulk.import_events)):
        known = IdentifyInput([("email", f"{prefix}known@example.com")], occurred_at=NOW)
        await identify_batch(db, [known], region="CN", actor="test")
        stored = EventItem(("email", f"{prefix}known@example.com"), "login", occurred_at=NOW,
                           idempotency_key=f"{prefix}stored")  # fmt: skip
        await ingest.track_events(db, [stored], region="CN", actor="test", now=NOW)
        items = _items(prefix)
        outcome = await write(db, items, region="CN", actor="test", now=NOW)  # type: ignore[operator]
        outcomes[prefix] = _outcome(outcome)
    assert outcomes["api-"] == outcomes["bulk-"]
    assert outcomes["bulk-"][:2] == (5, 2)
    assert await _snapshot(db, "api-") == await _snapshot(db, "bulk-")


async def test_a_key_twice_in_a_batch_lands_once_and_a_rerun_adds_nothing(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    rows = [
        _event("a@example.com", 1, idempotencyKey="k1"),
        _event("b@example.com", 2, idempotencyKey="k1"),  # another person, the same key
        _event("a@example.com", 3, idempotencyKey="k2"),
        _event("a@example.com", 4, idempotencyKey="k3"),  # ... and again in the next batch
        _event("c@example.com", 5, idempotencyKey="k3"),
    ]
    path = write_file(tmp_path / "events.jsonl", rows)
    first = await run_import(db, settings, "events", path, batch_size=3, window=3)
    assert (first.batches, first.loaded, first.duplicates) == (2, 3, 2)
    assert await _events_by_email(db) == {"a@example.com": [1, 3, 4]}
    again = await run_import(db, settings, "events", path, batch_size=100)
    assert (again.loaded, again.duplicates) == (0, 5)
    assert await count(db, Event) == 3


async def test_rows_of_a_refused_identity_are_rejected_each_with_its_line(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    rows = [
        _event("nobody", 1),
        _event("a@example.com", 2),
        _event("nobody", 3),
        _event("a@example.com", 4, type="bad type"),
        _event("nobody", 5),
    ]
    path = write_file(tmp_path / "events.jsonl", rows)
    result = await run_import(db, settings, "events", path, batch_size=100)
    assert (result.loaded, result.rejected) == (1, 4)
    assert [(r["line"], r["code"], r["field"]) for r in rejects_of(path)] == [
        (1, "INVALID_IDENTITY", "customer.value"),
        (3, "INVALID_IDENTITY", "customer.value"),
        (4, "INVALID_INPUT", "type"),
        (5, "INVALID_IDENTITY", "customer.value"),
    ]


class MergingDatabase(Database):
    """The real database, where someone else merges two profiles right after the import's
    first batch commits: the import's later batches meet the merged graph."""

    def __init__(self, base: Database, emails: tuple[str, str]) -> None:
        super().__init__(base.engine)
        self.settle_writes = base.settle_writes
        self.emails = emails
        self.writes = 0

    async def transact(
        self, work: Callable[[AsyncSession], Awaitable[T]], *, attempts: int = 8
    ) -> T:
        result = await super().transact(work, attempts=attempts)
        self.writes += 1
        if self.writes == 1:
            both = IdentifyInput([("email", email) for email in self.emails])
            await identify_batch(self, [both], region="CN", actor="someone else")
        return result


async def test_a_merge_between_batches_lands_later_events_on_the_survivor(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    rows = [_event("a@example.com", 1), _event("b@example.com", 2)]
    rows += [_event("b@example.com", 3), _event("a@example.com", 4)]
    path = write_file(tmp_path / "events.jsonl", rows)
    merging = MergingDatabase(db, ("a@example.com", "b@example.com"))
    result = await run_import(merging, settings, "events", path, batch_size=2, window=2)
    assert (result.batches, result.loaded) == (2, 4)
    async with db.read() as session:
        statuses = dict((await session.execute(select(Customer.id, Customer.status))).all())
        holders = set((await session.scalars(select(Event.customer_id))).all())
    assert sorted(statuses.values()) == ["ACTIVE", "MERGED"]
    [survivor] = [i for i, status in statuses.items() if status == "ACTIVE"]
    assert holders == {survivor}
    assert await _events_by_email(db) == {"a@example.com": [1, 2, 3, 4],
                                          "b@example.com": [1, 2, 3, 4]}  # fmt: skip


async def test_a_window_regroups_events_by_person_before_batching(
    db: Database, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six events of three people in turn, batches of two: read in windows of six, each batch
    names one person; without a window (one batch each), each names two."""
    rows = [_event(f"{name}@example.com", day) for day in (1, 2) for name in "abc"]
    path = write_file(tmp_path / "events.jsonl", rows)
    people: list[int] = []

    async def track(db: Database, items: Any, **kw: Any) -> IngestOutcome:
        people.append(len({item.identity for item in items}))
        return await real(db, items, **kw)

    real = bulk.import_events
    monkeypatch.setattr(bulk, "import_events", track)
    await run_import(db, settings, "events", path, batch_size=2, window=6)
    await run_import(db, settings, "events", path, batch_size=2, window=2)
    assert people == [1, 1, 1, 2, 2, 2]


async def test_a_failing_batch_is_split_until_the_bad_record_stands_alone(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    rows = [_event(f"p{i}@example.com", 1 + i % 28) for i in range(64)]
    rows[37] = {**rows[37], "type": "poison"}
    path = write_file(tmp_path / "events.jsonl", rows)
    poisoned = CountingPoisonedDatabase(db)
    result = await run_import(poisoned, settings, "events", path, batch_size=64)
    assert (result.batches, result.retried_batches) == (1, 1)
    assert (result.loaded, result.rejected) == (63, 1)
    assert [r["line"] for r in rejects_of(path)] == [38]
    assert poisoned.writes <= 1 + 2 * 6  # log2(64) levels of two halves, not 64 retries
    assert await count(db, Event) == 63


class CountingPoisonedDatabase(PoisonedDatabase):
    def __init__(self, base: Database) -> None:
        super().__init__(base)
        self.writes = 0

    async def transact(
        self, work: Callable[[AsyncSession], Awaitable[T]], *, attempts: int = 8
    ) -> T:
        self.writes += 1
        return await super().transact(work, attempts=attempts)


async def _statements(db: Database, write: Awaitable[Any]) -> int:
    """The statements `write` (not yet started) sends."""
    counter = StatementCounter()
    event.listen(db.engine.sync_engine, "before_cursor_execute", counter)
    try:
        await write
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", counter)
    return counter.count


async def test_a_batchs_statements_do_not_grow_with_its_rows(db: Database) -> None:
    """Ten events of five new people, then two hundred of a hundred: the same statements
    (COPY aside on PostgreSQL, which is one call either way)."""
    db.settle_writes = False
    counts = []
    for size, people in ((10, 5), (200, 100)):
        items = [
            EventItem(("email", f"s{size}-{i % people}@example.com"), "login",
                      occurred_at=NOW - timedelta(minutes=i), idempotency_key=f"s{size}-{i}")
            for i in range(size)
        ]  # fmt: skip
        counts.append(await _statements(db, bulk.import_events(db, items, region="CN", actor="t")))
    assert counts[0] == counts[1]


async def test_an_order_batchs_statements_do_not_grow_with_its_rows(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    db.settle_writes = False
    counts = []
    for size in (4, 120):
        rows = [{**ORDERS[i % 4], "externalId": f"n{size}-{i}",
                 "customer": {"type": "email", "value": f"o{size}-{i % 40}@example.com"}}
                for i in range(size)]  # fmt: skip
        path = write_file(tmp_path / f"orders{size}.jsonl", rows)
        counts.append(
            await _statements(db, run_import(db, settings, "orders", path, batch_size=500))
        )
    assert counts[0] == counts[1]
    assert await count(db, Customer) == 44
