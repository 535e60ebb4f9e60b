"""Stored duplicate suggestions: listing them, and an admin's decision on one.

Accepting merges the pair through domain.identity.merging (its checks, cascade and merge
record), the older profile surviving as identify's rule has it; rejecting keeps the pair so
that it is never suggested again. An open suggestion is listed only while both profiles are
live (a merge or an erasure elsewhere makes it moot); a decided one is always listed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from domain.errors import InvalidInput, NotFound
from domain.identity import merging
from domain.pagination import Page, PageRequest, SortKey, apply_keyset, build_page
from domain.profile import MergeView
from store.db import Database
from store.models import Customer, DuplicateSuggestion
from store.types import utcnow

STATUSES = ("OPEN", "ACCEPTED", "REJECTED")


@dataclass(frozen=True, slots=True)
class EvidenceRecord:
    field: str
    comparison: str
    weight: float


@dataclass(frozen=True, slots=True)
class SuggestionRecord:
    id: uuid.UUID
    customer_ids: tuple[uuid.UUID, uuid.UUID]
    score: float
    evidence: tuple[EvidenceRecord, ...]
    status: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SuggestionFilter:
    min_score: float | None = None
    status: str | None = None
    customer: uuid.UUID | None = None


def _record(row: DuplicateSuggestion) -> SuggestionRecord:
    return SuggestionRecord(
        id=row.id,
        customer_ids=(row.customer_a_id, row.customer_b_id),
        score=row.score,
        evidence=tuple(EvidenceRecord(**item) for item in row.evidence),
        status=row.status,
        created_at=row.created_at,
    )


_ORDER = (
    SortKey(DuplicateSuggestion.score, descending=True, parse=float),
    SortKey(DuplicateSuggestion.id, descending=False, parse=uuid.UUID),
)


def _listed(where: SuggestionFilter) -> list[Any]:
    first, second = aliased(Customer), aliased(Customer)
    live = and_(
        select(first.id)
        .where(first.id == DuplicateSuggestion.customer_a_id, first.status == "ACTIVE")
        .exists(),
        select(second.id)
        .where(second.id == DuplicateSuggestion.customer_b_id, second.status == "ACTIVE")
        .exists(),
    )
    clauses: list[Any] = [or_(DuplicateSuggestion.status != "OPEN", live)]
    if where.min_score is not None:
        clauses.append(DuplicateSuggestion.score >= where.min_score)
    if where.status is not None:
        clauses.append(DuplicateSuggestion.status == where.status)
    if where.customer is not None:
        clauses.append(
            or_(
                DuplicateSuggestion.customer_a_id == where.customer,
                DuplicateSuggestion.customer_b_id == where.customer,
            )
        )
    return clauses


async def list_suggestions(
    db: Database, page: PageRequest, where: SuggestionFilter
) -> tuple[Page[SuggestionRecord], int]:
    """Highest score first, with the number of suggestions the filter admits."""
    clauses = _listed(where)
    async with db.read() as session:
        statement = apply_keyset(select(DuplicateSuggestion).where(*clauses), _ORDER, page)
        rows = [_record(row) for row in (await session.scalars(statement)).all()]
        total = await session.scalar(
            select(func.count()).select_from(DuplicateSuggestion).where(*clauses)
        )
    return build_page(rows, lambda r: (r.score, str(r.id)), page), total or 0


async def _open(session: AsyncSession, suggestion_id: uuid.UUID) -> DuplicateSuggestion:
    row = await session.get(DuplicateSuggestion, suggestion_id, with_for_update=True)
    if row is None:
        raise NotFound("no such duplicate suggestion", field=["id"])
    if row.status != "OPEN":
        raise InvalidInput(
            f"this suggestion was already {row.status.lower()}",
            field=["id"],
            code="ALREADY_DECIDED",
        )
    return row


def _decide(row: DuplicateSuggestion, status: str, actor: str | None, reason: str | None) -> None:
    row.status, row.decided_by, row.decided_at = status, actor, utcnow()
    row.decision_reason = reason


async def get_suggestion(db: Database, suggestion_id: uuid.UUID) -> SuggestionRecord | None:
    async with db.read() as session:
        row = await session.get(DuplicateSuggestion, suggestion_id)
        return _record(row) if row is not None else None


async def accept(
    db: Database, suggestion_id: uuid.UUID, reason: str | None, actor: str | None
) -> MergeView:
    """Merge the pair (refused, and the suggestion left open, when the merge is refused),
    then record the decision."""

    async def pair(session: AsyncSession) -> dict[uuid.UUID, datetime]:
        row = await _open(session, suggestion_id)
        found = await session.execute(
            select(Customer.id, Customer.created_at).where(
                Customer.id.in_([row.customer_a_id, row.customer_b_id])
            )
        )
        return {customer_id: created_at for customer_id, created_at in found.all()}

    created = await db.transact(pair)
    survivor, merged = sorted(created, key=lambda i: (created[i], str(i)))
    why = f"probable duplicate (suggestion {suggestion_id})" + (f": {reason}" if reason else "")
    view = await merging.merge_customers(db, survivor, merged, why, actor, via="duplicate")

    async def record(session: AsyncSession) -> None:
        _decide(await _open(session, suggestion_id), "ACCEPTED", actor, reason)

    await db.transact(record)
    return view


async def reject(
    db: Database, suggestion_id: uuid.UUID, reason: str | None, actor: str | None
) -> SuggestionRecord:
    """Keep the pair as REJECTED: no later run suggests it again."""

    async def work(session: AsyncSession) -> SuggestionRecord:
        row = await _open(session, suggestion_id)
        _decide(row, "REJECTED", actor, reason)
        await session.flush()
        return _record(row)

    return await db.transact(work)
