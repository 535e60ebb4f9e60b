"""Payloads of finding and deciding probable duplicates."""

from __future__ import annotations

import strawberry

from api.schema.common import UserError
from api.schema.duplicates import DuplicateSuggestion


@strawberry.type
class FindDuplicatesPayload:
    suggested: int
    errors: list[UserError]


@strawberry.type
class DuplicateSuggestionPayload:
    suggestion: DuplicateSuggestion | None
    errors: list[UserError]
