"""Probable duplicates: suggestions with their evidence, and the payloads of deciding them."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info
from strawberry.types.base import StrawberryList
from strawberry.types.lazy_type import LazyType

from api.context import Context
from api.ids import to_global_id
from api.schema.common import Node, PageInfo
from domain.duplicates.suggestions import SuggestionRecord
from domain.pagination import Page

# The profiles are api.schema.customers' type, one level up: named lazily, never imported
# (api.schema).
LazyCustomer: Any = LazyType("Customer", "api.schema.customers")


@strawberry.enum
class DuplicateStatus(Enum):
    OPEN = "OPEN"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"


@strawberry.type(
    description="One compared field and what it contributed: field (firstName, lastName, "
    "email, phone, birthday, city), comparison (exact, typo, similar, different, missing), "
    "weight (log-odds contribution, log2 of the Bayes factor)."
)
class MatchEvidence:
    field: str
    comparison: str
    weight: float


@strawberry.type(
    description="Two live profiles that probably belong to one person although no identifier "
    "links them."
)
class DuplicateSuggestion(Node):
    id: strawberry.ID
    score: float = strawberry.field(description="Match probability, 0..1.")
    evidence: list[MatchEvidence]
    status: DuplicateStatus
    created_at: datetime
    customer_ids: strawberry.Private[tuple[uuid.UUID, uuid.UUID]]

    @classmethod
    def of(cls, record: SuggestionRecord) -> DuplicateSuggestion:
        return cls(
            id=strawberry.ID(to_global_id("DuplicateSuggestion", record.id)),
            score=record.score,
            evidence=[
                MatchEvidence(field=e.field, comparison=e.comparison, weight=e.weight)
                for e in record.evidence
            ],
            status=DuplicateStatus(record.status),
            created_at=record.created_at,
            customer_ids=record.customer_ids,
        )

    @strawberry.field(description="The two profiles.", graphql_type=StrawberryList(LazyCustomer))
    async def customers(self, info: Info[Context, None]) -> list[object]:
        found = await info.context.loaders.customers.load_many(list(self.customer_ids))
        customer = LazyCustomer.resolve_type()
        return [customer.of(record) for record in found if record is not None]


@strawberry.type
class DuplicateSuggestionEdge:
    node: DuplicateSuggestion
    cursor: str


@strawberry.type
class DuplicateSuggestionConnection:
    edges: list[DuplicateSuggestionEdge]
    page_info: PageInfo
    total_count: int

    @classmethod
    def of(cls, page: Page[SuggestionRecord], total: int) -> DuplicateSuggestionConnection:
        return cls(
            edges=[
                DuplicateSuggestionEdge(node=DuplicateSuggestion.of(record), cursor=cursor)
                for record, cursor in zip(page.items, page.cursors, strict=True)
            ],
            page_info=PageInfo.of(page),  # type: ignore[arg-type]
            total_count=total,
        )
