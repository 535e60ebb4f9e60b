"""Segments: saved conditions over profiles, dynamic (evaluated when read) or materialized
(members stored and refreshed, see domain.segments.refresh).

Conditions refer to segments by key, so a key never changes, and a segment cannot be deleted
while another segment, a RULE tag or a lifecycle rule refers to it. Reads that ask "who is in"
compile the segment into the same SQL filter `customers(where:)` uses; a segment whose stored
condition no longer validates (say, a stage was removed) has no members rather than failing
every read that lists segments.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain import profile
from domain.conditions.catalog import segment_specs
from domain.conditions.language import (
    Catalog,
    SegmentSpec,
    load_catalog,
    parse,
    referenced_segments,
)
from domain.conditions.sql import CustomerFilter, compile_with, to_sql
from domain.conditions.tree import MembershipLeaf
from domain.errors import InvalidInput, NotFound
from domain.pagination import Page, PageRequest, SortKey, apply_keyset, build_page
from domain.segments.refresh import (
    RefreshResult,
    refresh_all,
    refresh_for_customers,
    refresh_members,
    refresh_segment,
)
from domain.tagging.rules import check_segment_condition
from domain.values import text_for
from store.db import Database
from store.models import (
    Customer,
    CustomerMetrics,
    LifecycleRule,
    Segment,
    SegmentMembership,
    SegmentMembershipHistory,
    TagDefinition,
)
from store.types import utcnow

__all__ = [
    "Preview",
    "RefreshResult",
    "SegmentChanges",
    "SegmentDraft",
    "SegmentRecord",
    "count_segments",
    "customer_filter",
    "define_segment",
    "delete_segment",
    "get_segment",
    "list_segments",
    "member_counts",
    "members_filter",
    "preview",
    "refresh_all",
    "refresh_for_customers",
    "refresh_segment",
    "segments_by_id",
    "segments_of",
    "update_segment",
]

KEY_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,63}")  # fullmatch: `$` allows a final "\n"
MAX_SAMPLE = 200
MEMBER_ORDER = (profile.Sort(profile.SortField.CREATED_AT),)
PREDICATES_PER_STATEMENT = 50  # dynamic segments tested together for a page of customers
log = logging.getLogger("c360.segments")


@dataclass(frozen=True, slots=True)
class SegmentRecord:
    id: uuid.UUID
    key: str
    name: str
    description: str | None
    condition: dict[str, Any]
    materialized: bool
    member_count: int
    last_refreshed_at: datetime | None


SEGMENT_COLUMNS = tuple(getattr(Segment, name) for name in SegmentRecord.__slots__)


@dataclass(frozen=True, slots=True)
class SegmentDraft:
    key: str
    name: str
    description: str | None
    condition: dict[str, Any]
    materialized: bool = False


@dataclass(frozen=True, slots=True)
class SegmentChanges:
    """A patch: None leaves a field as it is."""

    name: str | None = None
    description: str | None = None
    condition: dict[str, Any] | None = None
    materialized: bool | None = None


@dataclass(frozen=True, slots=True)
class Preview:
    count: int
    sample: list[profile.CustomerRecord]


# --- reading segments -----------------------------------------------------------------------


async def get_segment(
    db: Database, *, segment_id: uuid.UUID | None = None, key: str | None = None
) -> SegmentRecord | None:
    statement = select(*SEGMENT_COLUMNS)
    statement = statement.where(Segment.id == segment_id if segment_id else Segment.key == key)
    async with db.read() as session:
        row = (await session.execute(statement)).first()
    return SegmentRecord(*row) if row else None


async def segments_by_id(
    db: Database, segment_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, SegmentRecord]:
    async with db.read() as session:
        rows = await session.execute(select(*SEGMENT_COLUMNS).where(Segment.id.in_(segment_ids)))
        return {row.id: SegmentRecord(*row) for row in rows}


async def list_segments(db: Database, page: PageRequest) -> Page[SegmentRecord]:
    """By key: keys are unique, so the key alone is a stable cursor."""
    keys = [SortKey(Segment.key, False, str)]
    statement = apply_keyset(select(*SEGMENT_COLUMNS), keys, page)
    async with db.read() as session:
        rows = [SegmentRecord(*row) for row in await session.execute(statement)]
    return build_page(rows, lambda record: [record.key], page)


async def count_segments(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Segment)) or 0)


def _by_id(catalog: Catalog, segment_id: uuid.UUID) -> SegmentSpec | None:
    return next((spec for spec in catalog.segments.values() if spec.id == segment_id), None)


def _membership(catalog: Catalog, spec: SegmentSpec, now: datetime) -> CustomerFilter:
    """Who is in a segment now: its stored members, or its condition evaluated."""
    if spec.materialized:
        return to_sql(MembershipLeaf(spec.id), now)
    return compile_with(catalog, spec.condition, now)


async def customer_filter(
    db: Database,
    where: dict[str, Any] | None,
    segment_id: uuid.UUID | None,
    now: datetime | None = None,
) -> CustomerFilter | None:
    """The filter of `customers(where:, segment:)`: both must hold; None when neither is given.
    Errors name the argument: ("where", ...) or ("segment",)."""
    if where is None and segment_id is None:
        return None
    now = now or utcnow()
    async with db.read() as session:
        catalog = await load_catalog(session)
    parts = []
    if where is not None:
        try:
            parts.append(compile_with(catalog, where, now))
        except InvalidInput as error:
            raise error.at("where") from None
    if segment_id is not None:
        spec = _by_id(catalog, segment_id)
        if spec is None:
            raise InvalidInput("no such segment", field=["segment"], code="UNKNOWN_SEGMENT")
        parts.append(_membership(catalog, spec, now))
    combined = parts[0]
    for part in parts[1:]:
        combined &= part
    return combined


async def preview(
    db: Database, condition: dict[str, Any], sample: int, now: datetime | None = None
) -> Preview:
    """How many customers a condition matches, and the first `sample` of them (MEMBER_ORDER),
    without saving anything."""
    if not 0 <= sample <= MAX_SAMPLE:
        raise InvalidInput(f"sample is between 0 and {MAX_SAMPLE}", field=["sample"])
    now = now or utcnow()
    async with db.read() as session:
        try:
            matches = compile_with(await load_catalog(session), condition, now)
        except InvalidInput as error:
            raise error.at("condition") from None
    page = await profile.list_customers(db, MEMBER_ORDER, PageRequest(first=sample), matches)
    return Preview(await profile.count_customers(db, matches), page.items)


async def members_filter(
    db: Database, segment_id: uuid.UUID, now: datetime | None = None
) -> CustomerFilter:
    """Who is in a segment now, as a filter for profile.list_customers / count_customers
    (in MEMBER_ORDER: oldest customer first, a stable order for cursors)."""
    async with db.read() as session:
        specs = await segment_specs(session)
        spec = next((spec for spec in specs.values() if spec.id == segment_id), None)
        if spec is None:
            raise NotFound("no such segment", field=["id"])
        if spec.materialized:  # its stored members: nothing to compile, no catalog to read
            return to_sql(MembershipLeaf(spec.id), now or utcnow())
        catalog = await load_catalog(session, specs)
    return _membership(catalog, spec, now or utcnow())


async def member_counts(
    db: Database, segment_ids: Sequence[uuid.UUID], now: datetime | None = None
) -> dict[uuid.UUID, int]:
    """Materialized segments count their stored members (one statement for all of them);
    dynamic ones are counted now, one statement each."""
    now = now or utcnow()
    counts: dict[uuid.UUID, int] = {}
    async with db.read() as session:
        catalog = await load_catalog(session)
        stored = await session.execute(
            select(SegmentMembership.segment_id, func.count())
            .where(SegmentMembership.segment_id.in_(segment_ids))
            .group_by(SegmentMembership.segment_id)
        )
        counts.update({segment_id: count for segment_id, count in stored})
        for key, spec in catalog.segments.items():
            if spec.id not in segment_ids:
                continue
            if spec.materialized:
                counts.setdefault(spec.id, 0)  # no stored members
                continue
            matches = _compiled_or_none(catalog, key, now)
            if matches is None:
                counts[spec.id] = 0
                continue
            count = matches.apply(select(func.count()).select_from(Customer))
            counts[spec.id] = int(await session.scalar(count) or 0)
    return counts


def _compiled_or_none(catalog: Catalog, key: str, now: datetime) -> CustomerFilter | None:
    try:
        return compile_with(catalog, catalog.segments[key].condition, now)
    except InvalidInput as error:
        log.warning("segment %s has an invalid condition: %s", key, error.message)
        return None


async def segments_of(
    db: Database, customer_ids: Sequence[uuid.UUID], now: datetime | None = None
) -> dict[uuid.UUID, list[SegmentRecord]]:
    """The segments each profile is in now, in key order, whatever the number of profiles:
    one statement for the segments, one for every materialized membership together, and for
    dynamic segments three for the catalog plus one per PREDICATES_PER_STATEMENT of them
    (each a boolean column over the page)."""
    now = now or utcnow()
    ids = list(customer_ids)
    found: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    async with db.read() as session:
        records = {
            row.id: SegmentRecord(*row) for row in await session.execute(select(*SEGMENT_COLUMNS))
        }
        if any(r.materialized for r in records.values()):
            stored = select(SegmentMembership.customer_id, SegmentMembership.segment_id).where(
                SegmentMembership.customer_id.in_(ids)
            )
            for customer_id, segment_id in await session.execute(stored):
                found[customer_id].add(segment_id)
        dynamic: list[tuple[uuid.UUID, CustomerFilter]] = []
        if not all(r.materialized for r in records.values()):
            specs = {
                r.key: SegmentSpec(r.id, r.condition, r.materialized) for r in records.values()
            }
            catalog = await load_catalog(session, specs)
            dynamic = [
                (spec.id, matches)
                for key, spec in sorted(specs.items())
                if not spec.materialized and (matches := _compiled_or_none(catalog, key, now))
            ]
        for start in range(0, len(dynamic), PREDICATES_PER_STATEMENT):
            chunk = dynamic[start : start + PREDICATES_PER_STATEMENT]
            statement = select(Customer.id, *(m.predicate for _, m in chunk)).where(
                Customer.id.in_(ids)
            )
            if any(m.joins_metrics for _, m in chunk):
                statement = statement.outerjoin(
                    CustomerMetrics, CustomerMetrics.customer_id == Customer.id
                )
            for customer_id, *flags in await session.execute(statement):
                found[customer_id].update(
                    s for (s, _), flag in zip(chunk, flags, strict=True) if flag
                )
    return {
        customer_id: sorted((records[s] for s in segment_ids if s in records), key=_key)
        for customer_id, segment_ids in found.items()
    }


def _key(record: SegmentRecord) -> str:
    return record.key


# --- defining segments ----------------------------------------------------------------------


def _check_condition(catalog: Catalog, condition: dict[str, Any], owner: str) -> None:
    try:
        parse(condition, catalog, owner=owner)
    except InvalidInput as error:
        raise error.at("condition") from None


def _check_name(name: str) -> str:
    name = text_for(Segment.name, name.strip(), ["name"], what="a name")
    if not name:
        raise InvalidInput("a segment needs a name", field=["name"])
    return name


async def _record(session: AsyncSession, segment_id: uuid.UUID) -> SegmentRecord:
    row = (await session.execute(select(*SEGMENT_COLUMNS).where(Segment.id == segment_id))).one()
    return SegmentRecord(*row)


def _with(catalog: Catalog, key: str, spec: SegmentSpec) -> Catalog:
    return dataclasses.replace(catalog, segments={**catalog.segments, key: spec})


async def define_segment(
    db: Database, draft: SegmentDraft, now: datetime | None = None
) -> SegmentRecord:
    """Save a segment; a materialized one gets its members at once (recorded as entries)."""
    if not KEY_PATTERN.fullmatch(draft.key):
        raise InvalidInput("a key is a lowercase slug: a-z, 0-9, _ and -", field=["key"])
    text_for(Segment.key, draft.key, ["key"], what="a key")
    name = _check_name(draft.name)
    now = now or utcnow()

    async def work(session: AsyncSession) -> SegmentRecord:
        if await session.scalar(select(Segment.id).where(Segment.key == draft.key)):
            raise InvalidInput(
                f"a segment {draft.key!r} exists", field=["key"], code="DUPLICATE_KEY"
            )
        catalog = await load_catalog(session)
        _check_condition(catalog, draft.condition, draft.key)
        row = Segment(
            id=uuid.uuid4(),
            key=draft.key,
            name=name,
            description=draft.description,
            condition=draft.condition,
            materialized=draft.materialized,
            member_count=0,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        await session.flush()
        if draft.materialized:
            spec = SegmentSpec(row.id, draft.condition, True)
            await refresh_members(session, _with(catalog, draft.key, spec), draft.key, now)
        return await _record(session, row.id)

    return await db.transact(work)


async def update_segment(
    db: Database, segment_id: uuid.UUID, changes: SegmentChanges, now: datetime | None = None
) -> SegmentRecord:
    """Change a segment. Becoming materialized, or changing the condition of a materialized
    segment, recomputes its members at once; becoming dynamic drops the stored members."""
    name = _check_name(changes.name) if changes.name is not None else None
    now = now or utcnow()

    async def work(session: AsyncSession) -> SegmentRecord:
        row = await session.get(Segment, segment_id, with_for_update=True)
        if row is None:
            raise NotFound("no such segment", field=["id"])
        catalog = await load_catalog(session)
        if changes.condition is not None:
            _check_condition(catalog, changes.condition, row.key)
            spec = SegmentSpec(row.id, changes.condition, row.materialized)
            await check_segment_condition(session, spec, row.key, ("condition",))
            row.condition = changes.condition
        was_materialized = row.materialized
        row.name = name or row.name
        if changes.description is not None:
            row.description = changes.description
        if changes.materialized is not None:
            row.materialized = changes.materialized
        row.updated_at = now
        await session.flush()
        if was_materialized and not row.materialized:
            await session.execute(
                delete(SegmentMembership).where(SegmentMembership.segment_id == row.id)
            )
            row.member_count, row.last_refreshed_at = 0, None
            await session.flush()
        elif row.materialized and (not was_materialized or changes.condition is not None):
            spec = SegmentSpec(row.id, row.condition, True)
            await refresh_members(session, _with(catalog, row.key, spec), row.key, now)
        return await _record(session, row.id)

    return await db.transact(work)


async def _users(session: AsyncSession, key: str) -> list[str]:
    """What refers to segment `key`: other segments, tags and lifecycle rules."""
    users = []
    sources = (("segment", Segment), ("tag", TagDefinition), ("lifecycle rule", LifecycleRule))
    for kind, model in sources:
        for user, condition in await session.execute(select(model.key, model.condition)):
            itself = kind == "segment" and user == key
            if not itself and key in referenced_segments(condition):
                users.append(f"{kind} {user!r}")
    return users


async def delete_segment(db: Database, segment_id: uuid.UUID) -> uuid.UUID:
    """Delete a segment with its members and their history; refused (SEGMENT_IN_USE) while
    anything refers to it, since that condition would silently change meaning."""

    async def work(session: AsyncSession) -> uuid.UUID:
        row = await session.get(Segment, segment_id, with_for_update=True)
        if row is None:
            raise NotFound("no such segment", field=["id"])
        users = await _users(session, row.key)
        if users:
            raise InvalidInput(
                f"segment {row.key!r} is used by {', '.join(users)}",
                field=["id"],
                code="SEGMENT_IN_USE",
            )
        for model in (SegmentMembershipHistory, SegmentMembership):
            await session.execute(delete(model).where(model.segment_id == segment_id))
        await session.delete(row)
        return segment_id

    return await db.transact(work)
