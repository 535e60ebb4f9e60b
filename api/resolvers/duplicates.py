"""Resolvers of probable duplicates: parse ids and filters, call the domain, map results."""

from __future__ import annotations

import strawberry

from api.context import Context
from api.ids import parse_uuid_id
from api.schema.customers import Customer, MergeRecord
from api.schema.duplicate_mutations import DuplicateSuggestionPayload, FindDuplicatesPayload
from api.schema.duplicates import (
    DuplicateSuggestion,
    DuplicateSuggestionConnection,
)
from api.schema.identity_mutations import MergePayload
from domain import profile
from domain.duplicates import runs, suggestions
from domain.errors import InvalidInput
from domain.pagination import PageRequest


async def suggestions_page(
    context: Context,
    page: PageRequest,
    min_score: float | None,
    status: str | None,
    customer: str | None,
) -> DuplicateSuggestionConnection:
    settings = context.settings
    page = page.validated(settings.page_size_default, settings.page_size_max)
    where = suggestions.SuggestionFilter(
        min_score=min_score,
        status=status,
        customer=parse_uuid_id(customer, "Customer", "customer") if customer else None,
    )
    found, total = await suggestions.list_suggestions(context.db, page, where)
    return DuplicateSuggestionConnection.of(found, total)


async def find(context: Context, customers: list[strawberry.ID] | None) -> FindDuplicatesPayload:
    settings = context.settings
    if customers is None:
        result = await runs.find_all(context.db, settings)
        return FindDuplicatesPayload(suggested=result.suggested, errors=[])
    if len(customers) > settings.batch_size_max:
        raise InvalidInput(
            f"at most {settings.batch_size_max} customers at once",
            field=["customers"],
            code="BATCH_TOO_LARGE",
        )
    ids = [
        parse_uuid_id(customer, "Customer", ("customers", str(index)))
        for index, customer in enumerate(customers)
    ]
    result = await runs.find_for(context.db, ids, settings)
    return FindDuplicatesPayload(suggested=result.suggested, errors=[])


async def accept(context: Context, id: str, reason: str | None) -> MergePayload:
    view = await suggestions.accept(
        context.db, parse_uuid_id(id, "DuplicateSuggestion"), reason, context.actor
    )
    record = await profile.get_customer(context.db, view.survivor_id)
    return MergePayload(
        merge=MergeRecord.of(view), customer=Customer.of(record) if record else None, errors=[]
    )


async def reject(context: Context, id: str, reason: str | None) -> DuplicateSuggestionPayload:
    record = await suggestions.reject(
        context.db, parse_uuid_id(id, "DuplicateSuggestion"), reason, context.actor
    )
    return DuplicateSuggestionPayload(suggestion=DuplicateSuggestion.of(record), errors=[])
