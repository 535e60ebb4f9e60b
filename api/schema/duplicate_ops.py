"""Root fields of probable duplicates: listing, finding and deciding them (admins only)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from api.context import Context
from api.permissions import ADMIN_ONLY, allow
from api.resolvers import duplicates as duplicate_resolvers
from api.schema.duplicate_mutations import DuplicateSuggestionPayload, FindDuplicatesPayload
from api.schema.duplicates import (
    DuplicateStatus,
    DuplicateSuggestionConnection,
)
from api.schema.identity_mutations import MergePayload
from domain.pagination import PageRequest


@strawberry.type
class DuplicateQueries:
    @strawberry.field(
        extensions=allow(*ADMIN_ONLY),
        description="Highest score first. Open suggestions are listed while both profiles "
        "are live; `customer`: the suggestions that name that profile.",
    )
    async def duplicate_suggestions(
        self,
        info: Info[Context, None],
        first: int | None = None,
        after: str | None = None,
        min_score: float | None = None,
        status: DuplicateStatus | None = None,
        customer: strawberry.ID | None = None,
    ) -> DuplicateSuggestionConnection:
        page = PageRequest(first=first, after=after)
        return await duplicate_resolvers.suggestions_page(
            info.context, page, min_score, status.value if status else None, customer
        )


@strawberry.type
class DuplicateMutations:
    @strawberry.mutation(
        extensions=allow(*ADMIN_ONLY),
        description="Score these profiles against the stored ones now; without `customers`, "
        "a full run over every live profile (it also re-estimates the match model).",
    )
    async def find_duplicates(
        self, info: Info[Context, None], customers: list[strawberry.ID] | None = None
    ) -> FindDuplicatesPayload:
        return await duplicate_resolvers.find(info.context, customers)

    @strawberry.mutation(
        extensions=allow(*ADMIN_ONLY),
        description="Merges the pair (the older profile survives); refused like "
        "mergeCustomers, and then the suggestion stays open.",
    )
    async def accept_duplicate(
        self, info: Info[Context, None], id: strawberry.ID, reason: str | None = None
    ) -> MergePayload:
        return await duplicate_resolvers.accept(info.context, id, reason)

    @strawberry.mutation(
        extensions=allow(*ADMIN_ONLY), description="The pair is never suggested again."
    )
    async def reject_duplicate(
        self, info: Info[Context, None], id: strawberry.ID, reason: str | None = None
    ) -> DuplicateSuggestionPayload:
        return await duplicate_resolvers.reject(info.context, id, reason)
