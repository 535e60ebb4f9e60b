"""The tag system: definitions and the assignments a profile carries.

An assignment whose `expires_at` has passed stops counting at once, in every read, whether or
not a sweep has removed it yet.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select

from store.db import Database
from store.models import TagAssignment, TagDefinition
from store.types import utcnow


@dataclass(frozen=True, slots=True)
class TagDefinitionRecord:
    id: uuid.UUID
    key: str
    name: str
    description: str | None
    category: str | None
    value_type: str
    allowed_values: list[str] | None
    kind: str
    condition: dict[str, Any] | None
    default_ttl_days: int | None
    archived: bool


@dataclass(frozen=True, slots=True)
class AssignmentRecord:
    customer_id: uuid.UUID
    tag_id: uuid.UUID
    value: str | None
    source: str | None
    confidence: float | None
    assigned_at: datetime
    expires_at: datetime | None


DEFINITION_COLUMNS = tuple(getattr(TagDefinition, name) for name in TagDefinitionRecord.__slots__)
ASSIGNMENT_COLUMNS = tuple(getattr(TagAssignment, name) for name in AssignmentRecord.__slots__)


def in_category(category: str | None, wanted: str) -> bool:
    """`interest` holds `interest` and `interest/sports`, not `interests`."""
    return category is not None and (category == wanted or category.startswith(wanted + "/"))


def unexpired(now: datetime | None = None) -> ColumnElement[bool]:
    now = now or utcnow()
    return or_(TagAssignment.expires_at.is_(None), TagAssignment.expires_at > now)


async def assignments_of(
    db: Database, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[AssignmentRecord]]:
    statement = (
        select(*ASSIGNMENT_COLUMNS)
        .where(TagAssignment.customer_id.in_(customer_ids), unexpired())
        .order_by(TagAssignment.customer_id, TagAssignment.assigned_at, TagAssignment.id)
    )
    found: dict[uuid.UUID, list[AssignmentRecord]] = defaultdict(list)
    async with db.read() as session:
        for row in await session.execute(statement):
            found[row.customer_id].append(AssignmentRecord(*row))
    return found


async def definitions_by_id(
    db: Database, tag_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, TagDefinitionRecord]:
    async with db.read() as session:
        rows = await session.execute(
            select(*DEFINITION_COLUMNS).where(TagDefinition.id.in_(tag_ids))
        )
        return {row.id: TagDefinitionRecord(*row) for row in rows}
