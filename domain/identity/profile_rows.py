"""The profile rows an identify batch reads and writes: what each profile had, what the batch
changes, read in one statement and written in as few as the changes allow (domain.identity.
linking resolves; this is its I/O)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.identity.traits import COLUMNS, ProfileValues
from store.bulk_rows import copy_rows, update_rows
from store.models import Customer
from store.sqlfuncs import any_of
from store.types import utcnow

# Core table for the bulk insert: the ORM's bulk path costs several times more per row.
CUSTOMERS = cast(Table, Customer.__table__)


@dataclass(slots=True)
class ProfileRow:
    """A profile this batch writes: what it had, and what the batch changes. `values` (the
    survivorship state, three JSON documents) is read only for profiles that traits land on:
    most inputs of ingest carry none."""

    values: ProfileValues | None
    email: str | None
    phone: str | None
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    new: bool
    created_at: datetime
    dirty: bool = False
    changed_traits: bool = False
    seen: list[datetime] = field(default_factory=list)


async def load_profiles(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, ProfileRow]:
    if not ids:
        return {}
    rows = await session.execute(
        select(
            Customer.id,
            Customer.email,
            Customer.phone,
            Customer.first_seen_at,
            Customer.last_seen_at,
            Customer.created_at,
        ).where(any_of(session, Customer.id, ids))
    )
    return {
        row.id: ProfileRow(
            None, row.email, row.phone, row.first_seen_at, row.last_seen_at, False, row.created_at
        )
        for row in rows
    }


async def load_values(
    session: AsyncSession, ids: list[uuid.UUID]
) -> dict[uuid.UUID, ProfileValues]:
    if not ids:
        return {}
    columns = [getattr(Customer, c) for c in COLUMNS]
    rows = await session.execute(
        select(
            Customer.id, Customer.attributes, Customer.field_times, Customer.field_sources, *columns
        ).where(any_of(session, Customer.id, ids))
    )
    return {
        row.id: ProfileValues(
            dict(zip(COLUMNS, row[4:], strict=True)),
            dict(row.attributes or {}),
            dict(row.field_times or {}),
            dict(row.field_sources or {}),
        )
        for row in rows
    }


async def write_profiles(
    session: AsyncSession, profiles: dict[uuid.UUID, ProfileRow], new_ids: list[uuid.UUID]
) -> None:
    """New profiles by COPY; known ones in one statement each for those whose values were
    read (traits landed on them) and for those that were only seen (times, email, phone)."""
    now = utcnow()
    full, seen = [], []
    for customer_id, profile in profiles.items():
        if not profile.dirty:
            continue
        row: dict[str, Any] = {
            "id": customer_id,
            "email": profile.email,
            "phone": profile.phone,
            "first_seen_at": min([t for t in (profile.first_seen_at, *profile.seen) if t]),
            "last_seen_at": max([t for t in (profile.last_seen_at, *profile.seen) if t]),
            "updated_at": now,
        }
        if profile.values is None:
            seen.append(row)
            continue
        row |= {c: profile.values.fields.get(c) for c in COLUMNS}
        row |= {
            "attributes": profile.values.attributes,
            "field_times": profile.values.times,
            "field_sources": profile.values.sources,
        }
        full.append(row)
    new = set(new_ids)
    inserts = [
        {**r, "status": "ACTIVE", "created_at": now, "version": 1} for r in full if r["id"] in new
    ]
    updates = [r for r in full if r["id"] not in new]
    if inserts:
        await copy_rows(session, CUSTOMERS, inserts, columns=list(inserts[0]))
    if updates:
        await session.execute(update(Customer), updates)
    await update_rows(session, CUSTOMERS, seen)
