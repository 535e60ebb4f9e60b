"""The audit log: who did what, when, to which customers, and how it ended.

One row per mutation (and per export of a person's data), written in its own transaction after
the operation, so a refused or failed operation is recorded too. Rows name customers by id and
refusals by code; they never hold PII, so erasing a person leaves the log as it is.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.pagination import Page, PageRequest, SortKey, apply_keyset, build_page
from store.db import Database
from store.models import AuditCustomer, AuditEntry
from store.types import utcnow


class Outcome(Enum):
    OK = "ok"
    REFUSED = "refused"  # the caller's doing: forbidden, invalid input, a payload error
    ERROR = "error"  # ours: an unexpected failure


@dataclass(frozen=True, slots=True)
class AuditEvent:
    actor: str | None
    role: str | None
    operation: str
    customer_ids: tuple[uuid.UUID, ...]
    outcome: Outcome
    codes: tuple[str, ...] = ()
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    at: datetime
    event: AuditEvent


async def record(db: Database, event: AuditEvent) -> None:
    async def work(session: AsyncSession) -> None:
        audit_id = await session.scalar(
            insert(AuditEntry)
            .values(
                at=utcnow(),
                actor=event.actor,
                role=event.role,
                operation=event.operation,
                customer_ids=[str(c) for c in event.customer_ids],
                outcome=event.outcome.value,
                details={"codes": list(event.codes)},
                request_id=event.request_id,
            )
            .returning(AuditEntry.id)
        )
        if event.customer_ids:
            await session.execute(
                insert(AuditCustomer),
                [{"customer_id": c, "audit_id": audit_id} for c in set(event.customer_ids)],
            )

    await db.transact(work)


AUDIT_ORDER = [SortKey(AuditEntry.id, True, int)]  # newest first


def _record(row: AuditEntry) -> AuditRecord:
    return AuditRecord(
        row.id,
        row.at,
        AuditEvent(
            actor=row.actor,
            role=row.role,
            operation=row.operation,
            customer_ids=tuple(uuid.UUID(c) for c in row.customer_ids),
            outcome=Outcome(row.outcome),
            codes=tuple((row.details or {}).get("codes", ())),
            request_id=row.request_id,
        ),
    )


async def audit_page(
    db: Database,
    page: PageRequest,
    *,
    customer: uuid.UUID | None = None,
    actor: str | None = None,
) -> Page[AuditRecord]:
    """Newest first; `customer`: the rows that touched that profile; `actor`: one caller's."""
    statement = select(AuditEntry)
    if customer is not None:
        statement = statement.join(AuditCustomer, AuditCustomer.audit_id == AuditEntry.id).where(
            AuditCustomer.customer_id == customer
        )
    if actor is not None:
        statement = statement.where(AuditEntry.actor == actor)
    async with db.read() as session:
        rows = list((await session.scalars(apply_keyset(statement, AUDIT_ORDER, page))).all())
    found = build_page(rows, lambda row: [row.id], page)
    return Page(
        [_record(r) for r in found.items], found.cursors, found.has_next, found.has_previous
    )
