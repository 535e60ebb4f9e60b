"""Reading unified profiles: one by id (following merges) or by identity, and lists of them.

Reads return frozen records; the nested parts of a profile (identities, tags, history, ...)
are read in batches by their own modules so that a page of profiles costs a fixed number of
statements.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import Select, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.conditions.sql import CustomerFilter
from domain.errors import InvalidInput
from domain.identity.types import load_identity_types
from domain.pagination import Page, PageRequest, SortKey, apply_keyset, build_page
from store.db import Database
from store.models import Customer, CustomerMetrics, Identity, MergeRecord
from store.models.customers import sort_value

MAX_MERGE_HOPS = 64


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    id: uuid.UUID
    status: str
    merged_into_id: uuid.UUID | None
    display_name: str | None
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    gender: str | None
    birthday: date | None
    locale: str | None
    country: str | None
    region: str | None
    city: str | None
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    stage: str | None
    stage_entered_at: datetime | None


CUSTOMER_COLUMNS = tuple(getattr(Customer, name) for name in CustomerRecord.__slots__)


def customer_select() -> Select[Any]:
    return select(*CUSTOMER_COLUMNS)


def to_record(row: Any) -> CustomerRecord:
    return CustomerRecord(*row)


@dataclass(frozen=True, slots=True)
class IdentityRecord:
    customer_id: uuid.UUID
    type: str
    value: str
    source: str | None
    verified: bool
    first_seen_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True, slots=True)
class MergeView:
    id: uuid.UUID
    survivor_id: uuid.UUID
    merged_id: uuid.UUID
    reason: str
    actor: str | None
    merged_at: datetime
    undone_at: datetime | None
    via: str  # identify, manual, duplicate
    linked_by: list[int]  # ids of the identities that joined the two profiles


class SortField(Enum):
    CREATED_AT = "created_at"
    LAST_SEEN_AT = "last_seen_at"
    DISPLAY_NAME = "display_name"
    TOTAL_SPENT = "total_spent"
    STAGE_ENTERED_AT = "stage_entered_at"


@dataclass(frozen=True, slots=True)
class Sort:
    field: SortField
    descending: bool = False


async def resolve_live_id(session: AsyncSession, customer_id: uuid.UUID) -> uuid.UUID | None:
    """The live profile an id stands for now: itself, or the survivor it was merged into."""
    current = customer_id
    for _ in range(MAX_MERGE_HOPS):
        row = (
            await session.execute(
                select(Customer.status, Customer.merged_into_id).where(Customer.id == current)
            )
        ).first()
        if row is None:
            return None
        if row.status != "MERGED" or row.merged_into_id is None:
            return current
        current = row.merged_into_id
    raise RuntimeError(f"merge chain from {customer_id} longer than {MAX_MERGE_HOPS}")


async def merged_family(session: AsyncSession, live_id: uuid.UUID) -> list[uuid.UUID]:
    """A live profile and every profile merged into it, directly or through others: one
    person's rows, for erasure and export. Merges form a tree, so this ends."""
    found, frontier = [live_id], [live_id]
    while frontier:
        statement = select(Customer.id).where(Customer.merged_into_id.in_(frontier))
        frontier = list((await session.scalars(statement)).all())
        found += frontier
    return found


async def get_customer(db: Database, customer_id: uuid.UUID) -> CustomerRecord | None:
    """A profile by id; a merged-away id answers with its survivor."""
    async with db.read() as session:
        row = (await session.execute(customer_select().where(Customer.id == customer_id))).first()
        if row is None or row.status != "MERGED" or row.merged_into_id is None:
            return to_record(row) if row else None  # a live id (most lookups): one statement
        live = await resolve_live_id(session, row.merged_into_id)
        if live is None:
            return None
        row = (await session.execute(customer_select().where(Customer.id == live))).first()
        return to_record(row) if row else None


async def find_by_identity(
    db: Database, type_key: str, raw_value: str, region: str
) -> CustomerRecord | None:
    async with db.read() as session:
        types = await load_identity_types(session)
        spec = types.get(type_key)
        if spec is None:
            raise InvalidInput(
                f"unknown identity type {type_key!r}",
                field=["identity", "type"],
                code="UNKNOWN_IDENTITY_TYPE",
            )
        try:
            value = spec.stored_value(raw_value, region)
        except InvalidInput as error:
            if error.code == "BLOCKED_IDENTITY":
                return None
            raise error.at("identity", "value") from None
        statement = customer_select().join(Identity, Identity.customer_id == Customer.id)
        row = (
            await session.execute(
                statement.where(Identity.type == type_key, Identity.value == value)
            )
        ).first()
        return to_record(row) if row else None


def sort_keys(order: Sequence[Sort]) -> list[SortKey]:
    def as_datetime(value: Any) -> datetime:
        return datetime.fromisoformat(value)

    keys = []
    for sort in order:
        expression: Any
        if sort.field is SortField.TOTAL_SPENT:
            expression = func.coalesce(CustomerMetrics.total_spent, literal(Decimal(0)))
            parse: Any = Decimal
        elif sort.field is SortField.DISPLAY_NAME:
            expression, parse = sort_value(Customer.display_name), str
        else:
            column = getattr(Customer, sort.field.value)
            expression = sort_value(column) if column.nullable else column
            parse = as_datetime
        keys.append(SortKey(expression, sort.descending, parse))
    tiebreak_descending = bool(order) and order[-1].descending
    keys.append(SortKey(Customer.id, tiebreak_descending, uuid.UUID))
    return keys


def listed_customers(order: Sequence[Sort], where: CustomerFilter | None) -> Select[Any]:
    statement = customer_select().where(Customer.status == "ACTIVE")
    by_spend = any(sort.field is SortField.TOTAL_SPENT for sort in order)
    if by_spend:
        statement = statement.outerjoin(CustomerMetrics, CustomerMetrics.customer_id == Customer.id)
    return where.apply(statement, metrics_joined=by_spend) if where else statement


async def list_customers(
    db: Database, order: Sequence[Sort], page: PageRequest, where: CustomerFilter | None = None
) -> Page[CustomerRecord]:
    """A page of live profiles, restricted to a compiled condition when `where` is given."""
    keys = sort_keys(order)
    statement = apply_keyset(listed_customers(order, where), keys, page)
    statement = statement.add_columns(*(key.expression for key in keys))
    width = len(CustomerRecord.__slots__)
    async with db.read() as session:
        rows = (await session.execute(statement)).all()
    page_rows = build_page(list(rows), lambda row: row[width:], page)
    return Page(
        [to_record(row[:width]) for row in page_rows.items],
        page_rows.cursors,
        page_rows.has_next,
        page_rows.has_previous,
    )


async def count_customers(db: Database, where: CustomerFilter | None = None) -> int:
    statement = select(func.count()).select_from(Customer).where(Customer.status == "ACTIVE")
    if where is not None:
        statement = where.apply(statement)
    async with db.read() as session:
        return int((await session.execute(statement)).scalar_one())


async def identities_of(
    db: Database, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[IdentityRecord]]:
    statement = (
        select(*(getattr(Identity, name) for name in IdentityRecord.__slots__))
        .where(Identity.customer_id.in_(customer_ids))
        .order_by(Identity.customer_id, Identity.type, Identity.first_seen_at, Identity.id)
    )
    found: dict[uuid.UUID, list[IdentityRecord]] = defaultdict(list)
    async with db.read() as session:
        for row in await session.execute(statement):
            found[row.customer_id].append(IdentityRecord(*row))
    return found


async def identities_by_id(db: Database, ids: Sequence[int]) -> dict[int, IdentityRecord]:
    """Identities by their row ids (a merge record's linkedBy); erased ones are gone."""
    columns = [getattr(Identity, name) for name in IdentityRecord.__slots__]
    async with db.read() as session:
        rows = await session.execute(select(Identity.id, *columns).where(Identity.id.in_(ids)))
        return {row[0]: IdentityRecord(*row[1:]) for row in rows}


MERGE_COLUMNS = tuple(getattr(MergeRecord, name) for name in MergeView.__slots__)


async def merges_into(
    db: Database, survivor_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[MergeView]]:
    statement = (
        select(*MERGE_COLUMNS)
        .where(MergeRecord.survivor_id.in_(survivor_ids))
        .order_by(MergeRecord.merged_at, MergeRecord.id)
    )
    found: dict[uuid.UUID, list[MergeView]] = defaultdict(list)
    async with db.read() as session:
        for row in await session.execute(statement):
            found[row.survivor_id].append(MergeView(*row))
    return found


async def get_merge(db: Database, merge_id: uuid.UUID) -> MergeView | None:
    async with db.read() as session:
        row = (
            await session.execute(select(*MERGE_COLUMNS).where(MergeRecord.id == merge_id))
        ).first()
        return MergeView(*row) if row else None


async def customers_by_id(
    db: Database, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, CustomerRecord]:
    """Profiles by their own ids, as they are (no merge following): for references such as a
    merge record's survivor."""
    async with db.read() as session:
        rows = await session.execute(customer_select().where(Customer.id.in_(customer_ids)))
        return {row.id: to_record(row) for row in rows}


async def live_customers(
    db: Database, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, CustomerRecord]:
    """For each id, the live profile it stands for now (merged-away ids follow their merges),
    in one statement per merge hop rather than one per id."""
    target = {i: i for i in customer_ids}
    found: dict[uuid.UUID, CustomerRecord] = {}
    async with db.read() as session:
        for _ in range(MAX_MERGE_HOPS):
            wanted = set(target.values()) - set(found)
            if not wanted:
                break
            rows = await session.execute(customer_select().where(Customer.id.in_(wanted)))
            found.update({row.id: to_record(row) for row in rows})
            target = {
                i: found[t].merged_into_id or t if t in found and found[t].status == "MERGED" else t
                for i, t in target.items()
            }
    return {i: found[t] for i, t in target.items() if t in found and found[t].status != "MERGED"}


async def merges_by_id(db: Database, merge_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, MergeView]:
    async with db.read() as session:
        rows = await session.execute(select(*MERGE_COLUMNS).where(MergeRecord.id.in_(merge_ids)))
        return {row.id: MergeView(*row) for row in rows}
