"""Finding probable duplicates: a full run over every live profile, and an incremental run
for the profiles that changed.

The full run (`find_all`, `c360 find-duplicates`, `findDuplicates` without ids) rewrites the
feature table, trains the match model on the whole population and scores every blocked pair.
The incremental run (`find_for`, and `scan_changed` which the periodic job calls) never
rescores the world: it blocks the changed profiles against the stored features by index and
scores only those candidates with the stored model. Splink runs in a worker thread, so a
request or the server's loop is never blocked by it.

Suggestions are stored at most once per pair: a pair an admin accepted or rejected keeps its
decision and is never suggested again (domain.duplicates.suggestions).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import ColumnElement, delete, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from domain.duplicates import model as match_model
from domain.duplicates.features import FEATURE_COLUMNS, ProfileFields, features
from domain.duplicates.model import BLOCKING_KEYS, ScoredPair
from store.bulk_rows import copy_rows, upsert_unless
from store.db import Database
from store.models import Customer, DuplicateProfile, DuplicateScan, DuplicateSuggestion
from store.types import utcnow

Progress = Callable[[int, int | None], None]
# Profiles read from the database per round trip in a full run.
_READ_CHUNK = 20_000
# Changed profiles per incremental batch of the periodic scan.
_SCAN_BATCH = 500
# Pairs stored per statement (bound parameters stay far under PostgreSQL's limit).
_SAVE_CHUNK = 1000


class DuplicateSettings(Protocol):
    duplicate_threshold: float
    duplicate_min_training_profiles: int


@dataclass(frozen=True, slots=True)
class FindResult:
    profiles: int  # profiles compared (all live ones, or the changed ones)
    candidates: int  # stored profiles they were blocked against (incremental runs)
    suggested: int  # pairs at or over the threshold, new or re-scored, decided ones left out
    trained: bool  # whether the model was estimated from this population


def _fields_query() -> Any:
    return select(
        Customer.id,
        Customer.first_name,
        Customer.last_name,
        Customer.email,
        Customer.phone,
        Customer.birthday,
        Customer.city,
    ).where(Customer.status == "ACTIVE")


def _row(values: Sequence[Any]) -> dict[str, Any]:
    fields = ProfileFields(*values)
    return {"customer_id": str(fields.customer_id), **features(fields)}


def _stored(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "customer_id": uuid.UUID(row["customer_id"])}


async def _scan(session: AsyncSession) -> DuplicateScan:
    scan = await session.get(DuplicateScan, 1, with_for_update=True)
    if scan is None:
        scan = DuplicateScan(id=1, trained_profiles=0)
        session.add(scan)
    return scan


async def _save(session: AsyncSession, pairs: Sequence[ScoredPair]) -> int:
    """Store the pairs as OPEN suggestions (re-scored when already open), in chunks; a decided
    pair keeps its decision, and a pair whose profiles are not both live is left out. The
    number of pairs stored."""
    stored = 0
    for start in range(0, len(pairs), _SAVE_CHUNK):
        stored += await _save_chunk(session, pairs[start : start + _SAVE_CHUNK])
    return stored


async def _save_chunk(session: AsyncSession, pairs: Sequence[ScoredPair]) -> int:
    keyed = [(uuid.UUID(pair.left), uuid.UUID(pair.right), pair) for pair in pairs]
    ids = {i for a, b, _ in keyed for i in (a, b)}
    live = set(
        (
            await session.scalars(
                select(Customer.id).where(Customer.id.in_(ids), Customer.status == "ACTIVE")
            )
        ).all()
    )
    decided = await session.execute(
        select(DuplicateSuggestion.customer_a_id, DuplicateSuggestion.customer_b_id).where(
            DuplicateSuggestion.customer_a_id.in_({a for a, _, _ in keyed}),
            DuplicateSuggestion.status != "OPEN",
        )
    )
    left_out = {(a, b) for a, b in decided.all()}
    now = utcnow()
    rows = [
        {
            "id": uuid.uuid4(),
            "customer_a_id": a,
            "customer_b_id": b,
            "score": pair.score,
            "evidence": [
                {"field": e.field, "comparison": e.comparison, "weight": e.weight}
                for e in pair.evidence
            ],
            "status": "OPEN",
            "created_at": now,
        }
        for a, b, pair in keyed
        if a in live and b in live and (a, b) not in left_out
    ]
    table = DuplicateSuggestion.__table__
    await upsert_unless(
        session,
        table,  # type: ignore[arg-type]
        rows,
        keys=("customer_a_id", "customer_b_id"),
        update=("score", "evidence"),
        only_where=table.c.status == "OPEN",  # type: ignore[attr-defined]
    )
    return len(rows)


async def find_all(
    db: Database, settings: DuplicateSettings, progress: Progress | None = None
) -> FindResult:
    """Train on every live profile and score every blocked pair (the full run)."""
    report = progress or (lambda _done, _total: None)
    started = utcnow()
    rows: list[dict[str, Any]] = []
    async with db.read() as session:
        total = await session.scalar(
            select(func.count()).select_from(Customer).where(Customer.status == "ACTIVE")
        )
        after: uuid.UUID | None = None
        while True:
            # Keyset chunks by id: one statement each, no server-side cursor to keep open.
            query = _fields_query().order_by(Customer.id).limit(_READ_CHUNK)
            if after is not None:
                query = query.where(Customer.id > after)
            chunk = (await session.execute(query)).all()
            if not chunk:
                break
            rows.extend(_row(values) for values in chunk)
            after = chunk[-1][0]
            report(len(rows), total)
    minimum = settings.duplicate_min_training_profiles
    model = await asyncio.to_thread(match_model.train, rows, minimum)
    pairs = await asyncio.to_thread(
        match_model.score_all, rows, model, settings.duplicate_threshold
    )

    async def store(session: AsyncSession) -> int:
        await session.execute(delete(DuplicateProfile))
        await copy_rows(
            session,
            DuplicateProfile.__table__,  # type: ignore[arg-type]
            [_stored(row) for row in rows],
        )
        scan = await _scan(session)
        scan.model, scan.trained_at = model, started
        scan.trained_profiles = len(rows) if len(rows) >= minimum else 0
        scan.scanned_until = started
        return await _save(session, pairs)

    suggested = await db.transact(store)
    return FindResult(len(rows), 0, suggested, trained=len(rows) >= minimum)


def _candidate_filter(rows: Sequence[dict[str, Any]]) -> ColumnElement[bool] | None:
    """Stored profiles that agree with one of `rows` on a blocking key (the same rules as the
    model's blocking, so the incremental run sees the pairs a full run would score)."""
    clauses = []
    for key in BLOCKING_KEYS:
        values = {tuple(row[c] for c in key) for row in rows}
        values = {v for v in values if all(part is not None for part in v)}
        if not values:
            continue
        columns = [getattr(DuplicateProfile, c) for c in key]
        if len(key) == 1:
            clauses.append(columns[0].in_([v[0] for v in values]))
        else:
            clauses.append(tuple_(*columns).in_(sorted(values)))
    return or_(*clauses) if clauses else None


async def find_for(
    db: Database, customer_ids: Sequence[uuid.UUID], settings: DuplicateSettings
) -> FindResult:
    """Block the given profiles against the stored ones and score those candidates only."""
    ids = list(dict.fromkeys(customer_ids))

    async def prepare(session: AsyncSession) -> tuple[list[dict[str, Any]], list[Any], Any]:
        found = (await session.execute(_fields_query().where(Customer.id.in_(ids)))).all()
        rows = [_row(values) for values in found]
        await session.execute(delete(DuplicateProfile).where(DuplicateProfile.customer_id.in_(ids)))
        await copy_rows(
            session,
            DuplicateProfile.__table__,  # type: ignore[arg-type]
            [_stored(row) for row in rows],
        )
        scan = await session.get(DuplicateScan, 1)
        model = scan.model if scan is not None and scan.model else None
        where = _candidate_filter(rows)
        if where is None:
            return rows, [], model
        columns = [getattr(DuplicateProfile, c) for c in ("customer_id", *FEATURE_COLUMNS)]
        candidates = (
            await session.execute(
                select(*columns)
                .join(Customer, Customer.id == DuplicateProfile.customer_id)
                .where(where, Customer.status == "ACTIVE", DuplicateProfile.customer_id.not_in(ids))
            )
        ).all()
        return rows, list(candidates), model

    rows, candidates, model = await db.transact(prepare)
    stored = [
        {"customer_id": str(values[0]), **dict(zip(FEATURE_COLUMNS, values[1:], strict=True))}
        for values in candidates
    ]
    pairs = await asyncio.to_thread(
        match_model.score_against,
        rows,
        stored,
        model or match_model.starting_settings(),
        settings.duplicate_threshold,
    )
    suggested = await db.transact(lambda session: _save(session, pairs))
    return FindResult(len(rows), len(stored), suggested, trained=False)


async def scan_changed(db: Database, settings: DuplicateSettings) -> FindResult:
    """The incremental run over every profile written since the last scan (the periodic
    job); the first scan of a database takes every live profile, in batches, with the starting
    model (run `c360 find-duplicates` once to train it on the population)."""
    async with db.read() as session:
        scan = await session.get(DuplicateScan, 1)
        since: datetime | None = scan.scanned_until if scan is not None else None
    started = utcnow()
    changed_since = Customer.status == "ACTIVE" if since is None else Customer.updated_at > since
    async with db.read() as session:
        changed = list((await session.scalars(select(Customer.id).where(changed_since))).all())
    total = FindResult(0, 0, 0, trained=False)
    for start in range(0, len(changed), _SCAN_BATCH):
        part = await find_for(db, changed[start : start + _SCAN_BATCH], settings)
        total = FindResult(
            total.profiles + part.profiles,
            total.candidates + part.candidates,
            total.suggested + part.suggested,
            trained=False,
        )

    async def advance(session: AsyncSession) -> None:
        (await _scan(session)).scanned_until = started

    await db.transact(advance)
    return total
