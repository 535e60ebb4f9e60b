"""`c360 import`: customers, events or orders from a CSV or JSONL file, through the same domain
entry points as the API (identify_batch, track_events, record_orders), so identity resolution
and the write cascade run exactly as for a mutation.

It streams: records are read one at a time and loaded `batch_size` at a time, one transaction
per batch (the domain's; events and orders through domain.activity.bulk, which resolves each
distinct identity of a batch once, and regrouped by person before they are batched:
`import_file`). A record the domain refuses goes to the reject file with its line, code, field
path and message, and the rest of its batch still lands. A batch that fails as a whole (an
error that is not a refusal of one item) rolls back, then is retried in halves, split again
while they fail, so only the records that fail alone are rejected. A database that cannot be
reached stops the import instead: that is no fault of the rows.

A re-run is idempotent: events are de-duplicated by their idempotency key (derived from line
and content when the file has none, `service.import_rows`), orders by (source, externalId),
and customers are found again by their identities.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from domain.access.erasure import ErasurePolicy
from domain.activity import bulk, ingest
from domain.errors import DomainError
from domain.identity.linking import IdentifyInput, identify_batch
from service.import_rows import ByteCounter, Item, Record, item_parser, read_csv, read_jsonl
from service.settings import Settings
from store.db import Database, is_unavailable

ACTOR = "cli:import"
# Records a transaction, by kind. Events and orders come in larger batches: their statements do
# not grow with the rows (domain.activity.bulk), so a larger batch spreads them thinner. On
# PostgreSQL a batch holds an advisory lock per distinct identity it names (and, with the
# per-row key trigger of c14_partitions, one per event): the server's lock table
# (max_locks_per_transaction) bounds how large it may usefully be.
DEFAULT_BATCH = {"customers": 1000, "events": 5000, "orders": 5000}
GROUPED_BATCHES = 10  # events and orders: batches read ahead and regrouped by person
ROW_FAILED = "ROW_FAILED"


@dataclass(slots=True)
class ImportResult:
    """What an import did; `loaded` counts new events and orders, or customers identified."""

    kind: str
    read: int = 0
    loaded: int = 0
    duplicates: int = 0
    created: int = 0
    rejected: int = 0
    batches: int = 0
    retried_batches: int = 0
    rejects_path: str = ""
    warnings: int = 0


@dataclass(frozen=True, slots=True)
class Reject:
    line: int
    code: str
    field: str
    message: str


@dataclass(slots=True)
class _Tally:
    """One load of some records: the counts, and the refusals by position in the load."""

    loaded: int = 0
    duplicates: int = 0
    created: int = 0
    warnings: int = 0
    refused: dict[int, list[DomainError]] = field(default_factory=dict)


Loader = Callable[[Database, Sequence[Any]], Awaitable[_Tally]]


def _refusals(errors: Sequence[DomainError], name: str) -> dict[int, list[DomainError]]:
    """Errors of a batch (field `name.<index>.<path>`) by index, with the path made relative."""
    out: dict[int, list[DomainError]] = {}
    for error in errors:
        index = int(error.field[1])
        out.setdefault(index, []).append(
            type(error)(error.message, field=error.field[2:], code=error.code)
        )
    return out


class _Domain:
    """The domain's entry point for each kind, with the settings the API would pass."""

    def __init__(self, settings: Settings) -> None:
        self.region = settings.default_phone_region
        self.rates = settings.currency_rates
        self.erased = ErasurePolicy(settings.erasure_salt, settings.erased_reidentify == "allow")
        self.retained_months = settings.event_retention_months

    async def customers(self, db: Database, items: Sequence[IdentifyInput]) -> _Tally:
        results = await identify_batch(
            db, items, region=self.region, actor=ACTOR, erased=self.erased
        )
        tally = _Tally()
        for index, result in enumerate(results):
            if result.customer_id is None:
                tally.refused[index] = list(result.errors)
                continue
            tally.loaded += 1
            tally.created += result.created
            tally.warnings += len(result.errors)
        return tally

    async def events(self, db: Database, items: Sequence[ingest.EventItem]) -> _Tally:
        outcome = await bulk.import_events(
            db,
            items,
            region=self.region,
            actor=ACTOR,
            erased=self.erased,
            retained_months=self.retained_months,
        )
        return _Tally(
            outcome.accepted, outcome.duplicates, refused=_refusals(outcome.errors, "events")
        )

    async def orders(self, db: Database, items: Sequence[ingest.OrderItem]) -> _Tally:
        outcome = await bulk.import_orders(
            db, items, region=self.region, actor=ACTOR, rates=self.rates, erased=self.erased
        )
        return _Tally(
            outcome.accepted, outcome.duplicates, refused=_refusals(outcome.errors, "orders")
        )


def default_rejects_path(source: Path) -> Path:
    """Beside the input: `orders.csv` -> `orders.csv.rejects.jsonl`."""
    return source.with_name(source.name + ".rejects.jsonl")


class _Rejects:
    """The reject file: one JSON object a line (line, code, field, message), in line order
    within a batch."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.count = 0
        self._pending: list[tuple[int, Sequence[DomainError]]] = []

    def write(self, line: int, errors: Sequence[DomainError]) -> None:
        self._pending.append((line, errors or [DomainError("refused", code=ROW_FAILED)]))

    def flush(self) -> None:
        for line, errors in sorted(self._pending, key=lambda pending: pending[0]):
            for error in errors:
                reject = Reject(line, error.code, ".".join(error.field), error.message)
                self.stream.write(json.dumps(asdict(reject), ensure_ascii=False) + "\n")
        self.count += len(self._pending)
        self._pending.clear()


def _batches(records: Iterator[Record], size: int) -> Iterator[list[Record]]:
    batch: list[Record] = []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _failure(error: Exception) -> DomainError:
    if isinstance(error, DomainError):
        return error
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    return DomainError(f"{type(error).__name__}: {text[0] if text else ''}", code=ROW_FAILED)


async def _load_batch(
    db: Database,
    load: Loader,
    items: list[tuple[int, Item]],
    result: ImportResult,
    rejects: _Rejects,
    *,
    part: bool = False,
) -> None:
    """One transaction for the batch; if it fails whole, one for each half, split again while
    it fails, down to the records that fail alone: a few dozen transactions find one bad
    record among thousands."""
    try:
        tally = await load(db, [item for _, item in items])
    except Exception as error:
        if is_unavailable(error):
            raise
        if len(items) == 1:
            rejects.write(items[0][0], [_failure(error)])
            return
        result.retried_batches += not part
        half = len(items) // 2
        for half_items in (items[:half], items[half:]):
            await _load_batch(db, load, half_items, result, rejects, part=True)
        return
    result.loaded += tally.loaded
    result.duplicates += tally.duplicates
    result.created += tally.created
    result.warnings += tally.warnings
    for index, errors in sorted(tally.refused.items()):
        rejects.write(items[index][0], errors)


def _by_person(items: list[tuple[int, Item]]) -> list[tuple[int, Item]]:
    """Events and orders of the same identity next to each other, people in the order the file
    first names them, each person's records in file order."""
    first: dict[tuple[str, str], int] = {}
    return sorted(items, key=lambda pair: first.setdefault(pair[1].identity, len(first)))  # type: ignore[union-attr]


async def import_file(
    db: Database,
    settings: Settings,
    *,
    kind: str,
    source: Path,
    file_format: str,
    batch_size: int | None = None,
    rejects_path: Path,
    window: int | None = None,
    progress: Callable[[int, int | None], None] = lambda _done, _total: None,
) -> ImportResult:
    """Import `source`; `progress` hears (bytes read, file size) after every batch.

    Events and orders are read `window` records at a time (default: GROUPED_BATCHES batches)
    and regrouped by the identity they name before they are cut into batches: a batch then
    names few people, and identity resolution, which costs per distinct person in a batch,
    runs a few times per person instead of once per record. Customers keep the file's order
    (a later record of a person may change what an earlier one set)."""
    batch_size = batch_size or DEFAULT_BATCH[kind]
    grouped = kind != "customers"
    window = window or batch_size * (GROUPED_BATCHES if grouped else 1)
    load: Loader = getattr(_Domain(settings), kind)
    parse = item_parser(kind, file_format)
    read = read_csv if file_format == "csv" else read_jsonl
    total = source.stat().st_size
    counter = ByteCounter()
    result = ImportResult(kind, rejects_path=str(rejects_path))
    with source.open("rb") as stream, rejects_path.open("w", encoding="utf-8") as out:
        rejects = _Rejects(out)
        for records in _batches(read(counter.lines(stream)), window):
            result.read += len(records)
            items: list[tuple[int, Item]] = []
            for record in records:
                try:
                    items.append((record.line, parse(record)))
                except DomainError as error:
                    rejects.write(record.line, [error])
            if grouped:
                items = _by_person(items)
            for start in range(0, len(items), batch_size):
                result.batches += 1
                await _load_batch(db, load, items[start : start + batch_size], result, rejects)
                progress(counter.read, total)
            if not items:
                progress(counter.read, total)
            rejects.flush()
    result.rejected = rejects.count
    return result
