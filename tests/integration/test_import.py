"""`c360 import`'s loading (service.importing) on a real database: both formats for every
kind, re-runs that add nothing, the reject file, and batches that never land half-written."""

from __future__ import annotations

import csv
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.importing import ImportResult, default_rejects_path, import_file
from service.settings import Settings
from store.db import Database
from store.models import Customer, Event, Identity, Order
from tests.integration.identity_helpers import row_counts

T = TypeVar("T")

CUSTOMERS = [
    {
        "identities": [{"type": "email", "value": f"c{i}@example.com"}],
        "traits": {"firstName": f"Name{i}"},
        "source": "crm",
    }
    for i in range(5)
]
EVENTS = [
    {
        "customer": {"type": "email", "value": f"c{i % 3}@example.com"},
        "type": "page_view",
        "channel": "web",
        "occurredAt": f"2026-01-0{i + 1}T10:00:00+00:00",
        "properties": {"path": f"/p/{i}"},
    }
    for i in range(6)
]
ORDERS = [
    {
        "customer": {"type": "email", "value": f"c{i % 2}@example.com"},
        "externalId": f"o-{i}",
        "amount": f"{10 + i}.50",
        "currency": "CNY",
        "placedAt": f"2026-02-0{i + 1}T10:00:00+00:00",
        "source": "shop",
    }
    for i in range(4)
]
ROWS = {"customers": CUSTOMERS, "events": EVENTS, "orders": ORDERS}


def _flat(row: dict[str, Any]) -> dict[str, str]:
    """A record as CSV cells: identities and traits by column, JSON objects as text."""
    out: dict[str, str] = {}
    for key, value in row.items():
        if key == "identities":
            out |= {f"identities.{i['type']}": i["value"] for i in value}
        elif key == "traits":
            out |= {f"traits.{k}": str(v) for k, v in value.items()}
        elif key == "customer":
            out |= {"customer.type": value["type"], "customer.value": value["value"]}
        elif key == "properties":
            out[key] = json.dumps(value)
        else:
            out[key] = str(value)
    return out


def write_file(path: Path, rows: list[dict[str, Any]]) -> Path:
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        return path
    flat = [_flat(row) for row in rows]
    columns = list(dict.fromkeys(column for row in flat for column in row))
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, columns)
        writer.writeheader()
        writer.writerows(flat)
    return path


async def run_import(
    db: Database, settings: Settings, kind: str, path: Path, batch_size: int = 100, **kw: Any
) -> ImportResult:
    return await import_file(
        db,
        settings,
        kind=kind,
        source=path,
        file_format=path.suffix.lstrip("."),
        batch_size=batch_size,
        rejects_path=default_rejects_path(path),
        **kw,
    )


async def count(db: Database, model: Any) -> int:
    async with db.read() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


def rejects_of(path: Path) -> list[dict[str, Any]]:
    text = default_rejects_path(path).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
async def test_customers_land_with_their_identities_and_traits(
    db: Database, settings: Settings, tmp_path: Path, suffix: str
) -> None:
    path = write_file(tmp_path / f"customers{suffix}", CUSTOMERS)
    result = await run_import(db, settings, "customers", path, batch_size=2)
    assert (result.read, result.loaded, result.created, result.rejected) == (5, 5, 5, 0)
    assert result.batches == 3
    assert await count(db, Customer) == 5 and await count(db, Identity) == 5
    async with db.read() as session:
        names = set((await session.scalars(select(Customer.first_name))).all())
    assert names == {f"Name{i}" for i in range(5)}


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
async def test_events_land_on_profiles_resolved_by_identity(
    db: Database, settings: Settings, tmp_path: Path, suffix: str
) -> None:
    path = write_file(tmp_path / f"events{suffix}", EVENTS)
    result = await run_import(db, settings, "events", path, batch_size=4)
    assert (result.read, result.loaded, result.duplicates, result.rejected) == (6, 6, 0, 0)
    assert await count(db, Event) == 6 and await count(db, Customer) == 3
    async with db.read() as session:
        paths = (await session.scalars(select(Event.properties))).all()
    assert sorted(p["path"] for p in paths) == [f"/p/{i}" for i in range(6)]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
async def test_orders_land_with_amounts_and_sources(
    db: Database, settings: Settings, tmp_path: Path, suffix: str
) -> None:
    path = write_file(tmp_path / f"orders{suffix}", ORDERS)
    result = await run_import(db, settings, "orders", path, batch_size=3)
    assert (result.read, result.loaded, result.rejected) == (4, 4, 0)
    async with db.read() as session:
        stored = (
            await session.execute(select(Order.external_id, Order.amount, Order.source))
        ).all()
    assert sorted((e, str(a), s) for e, a, s in stored) == [
        (f"o-{i}", f"{10 + i}.50", "shop") for i in range(4)
    ]


@pytest.mark.parametrize("kind", ["customers", "events", "orders"])
@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
async def test_a_second_run_of_the_same_file_adds_nothing(
    db: Database, settings: Settings, tmp_path: Path, kind: str, suffix: str
) -> None:
    """Events carry no idempotencyKey here: the derived key (line + content) finds them."""
    path = write_file(tmp_path / f"{kind}{suffix}", ROWS[kind])
    first = await run_import(db, settings, kind, path, batch_size=2)
    before = await row_counts(db)
    second = await run_import(db, settings, kind, path, batch_size=3)
    after = await row_counts(db)
    for table in ("customers", "identities", "events", "orders"):
        assert after[table] == before[table], table
    if kind == "customers":
        assert (first.created, second.created, second.loaded) == (5, 0, 5)
    else:
        assert (second.loaded, second.duplicates) == (0, first.loaded)


async def test_refused_records_go_to_the_reject_file_with_line_code_and_field(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl"
    good = json.dumps(EVENTS[0])
    bad_type = json.dumps({**EVENTS[1], "type": "no spaces allowed"})
    bad_email = json.dumps({**EVENTS[2], "customer": {"type": "email", "value": "nobody"}})
    bad_time = json.dumps({**EVENTS[3], "occurredAt": "yesterday"})
    lines = [good, bad_type, "", "{not json", bad_email, bad_time, json.dumps(EVENTS[4])]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = await run_import(db, settings, "events", path, batch_size=3)
    assert (result.read, result.loaded, result.rejected) == (6, 2, 4)
    assert [(r["line"], r["code"], r["field"]) for r in rejects_of(path)] == [
        (2, "INVALID_INPUT", "type"),
        (4, "MALFORMED_ROW", ""),
        (5, "INVALID_IDENTITY", "customer.value"),
        (6, "INVALID_INPUT", "occurredAt"),
    ]
    assert all(r["message"] for r in rejects_of(path))


async def test_csv_rejects_name_the_line_where_the_record_starts(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(
        "customer.type,customer.value,externalId,amount,currency,source\n"
        'email,a@example.com,o-1,"10.00",CNY,"two\nlines"\n'
        "email,a@example.com,o-2,-3,CNY,shop\n"
        "email,a@example.com,o-3,5,XXX,shop\n",
        encoding="utf-8",
    )
    result = await run_import(db, settings, "orders", path)
    assert (result.loaded, result.rejected) == (1, 2)
    assert [(r["line"], r["code"], r["field"]) for r in rejects_of(path)] == [
        (4, "INVALID_INPUT", "amount"),
        (5, "UNKNOWN_CURRENCY", "currency"),
    ]


async def test_one_bad_record_is_rejected_and_the_rest_of_its_batch_lands(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    rows = [*ORDERS[:2], {**ORDERS[2], "currency": "cny"}, ORDERS[3]]
    path = write_file(tmp_path / "orders.jsonl", rows)
    result = await run_import(db, settings, "orders", path, batch_size=10)
    assert (result.batches, result.loaded, result.rejected, result.retried_batches) == (1, 3, 1, 0)
    assert await count(db, Order) == 3
    assert [(r["line"], r["field"]) for r in rejects_of(path)] == [(3, "currency")]


class PoisonedDatabase(Database):
    """The real database, whose write transactions fail after their work when they hold an
    event of type `poison`: an error that is no refusal of one item, as a constraint or a lost
    connection mid-batch would be."""

    def __init__(self, base: Database) -> None:
        super().__init__(base.engine)

    async def transact(
        self, work: Callable[[AsyncSession], Awaitable[T]], *, attempts: int = 8
    ) -> T:
        async def poisoned(session: AsyncSession) -> T:
            result = await work(session)
            found = await session.scalar(
                select(func.count()).select_from(Event).where(Event.type == "poison")
            )
            if found:
                raise RuntimeError("poisoned batch")
            return result

        return await super().transact(poisoned, attempts=attempts)


async def test_a_batch_that_fails_whole_is_retried_record_by_record(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    poison = {**EVENTS[1], "customer": {"type": "email", "value": "p@example.com"}}
    rows = [EVENTS[0], {**poison, "type": "poison"}, EVENTS[2], EVENTS[3]]
    path = write_file(tmp_path / "events.jsonl", rows)
    result = await run_import(PoisonedDatabase(db), settings, "events", path, batch_size=3)
    assert (result.batches, result.retried_batches) == (2, 1)
    assert (result.loaded, result.rejected) == (3, 1)
    assert await count(db, Event) == 3
    assert await count(db, Customer) == 2  # c0 and c2; p@example.com was never created
    [reject] = rejects_of(path)
    assert (reject["line"], reject["code"]) == (2, "ROW_FAILED")
    assert reject["message"] == "RuntimeError: poisoned batch"


async def test_a_failed_batch_leaves_nothing_half_written(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    rows = [{**event, "type": "poison"} for event in EVENTS[:3]]
    path = write_file(tmp_path / "events.jsonl", rows)
    before = await row_counts(db)
    result = await run_import(PoisonedDatabase(db), settings, "events", path, batch_size=3)
    assert (result.loaded, result.rejected) == (0, 3)
    assert await row_counts(db) == before


async def test_progress_reports_bytes_read_up_to_the_file_size(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    path = write_file(tmp_path / "events.csv", EVENTS)
    seen: list[tuple[int, int | None]] = []
    await run_import(
        db, settings, "events", path, batch_size=2, progress=lambda d, t: seen.append((d, t))
    )
    size = path.stat().st_size
    assert len(seen) == 3 and all(total == size for _, total in seen)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert seen[-1][0] == size


async def test_an_event_older_than_the_retention_goes_to_the_reject_file(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl"
    old = json.dumps({**EVENTS[0], "occurredAt": "2020-01-01T00:00:00+00:00"})
    path.write_text(f"{old}\n{json.dumps(EVENTS[1])}\n", encoding="utf-8")
    kept = settings.model_copy(update={"event_retention_months": 120})  # back to 2016
    assert (await run_import(db, kept, "events", path)).loaded == 2
    path.write_text(f"{old}\n", encoding="utf-8")
    one_year = settings.model_copy(update={"event_retention_months": 12})
    result = await run_import(db, one_year, "events", path)
    assert (result.loaded, result.rejected) == (0, 1)
    assert [(r["line"], r["code"], r["field"]) for r in rejects_of(path)] == [
        (1, "OUTSIDE_RETENTION", "occurredAt")
    ]
