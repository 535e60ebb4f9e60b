"""Types every area shares: the Relay Node interface, PageInfo and UserError."""

from __future__ import annotations

from collections.abc import Sequence

import strawberry

from domain.errors import DomainError
from domain.pagination import Page


@strawberry.interface
class Node:
    id: strawberry.ID


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None

    @classmethod
    def of(cls, page: Page[object]) -> PageInfo:
        return cls(
            has_next_page=page.has_next,
            has_previous_page=page.has_previous,
            start_cursor=page.cursors[0] if page.cursors else None,
            end_cursor=page.cursors[-1] if page.cursors else None,
        )


@strawberry.type
class UserError:
    code: str
    field: list[str] | None
    message: str

    @classmethod
    def of(cls, error: DomainError) -> UserError:
        return cls(code=error.code, field=list(error.field) or None, message=error.message)

    @classmethod
    def all_of(cls, error: DomainError) -> list[UserError]:
        """Each problem of a refusal that found several (a lifecycle model's), or the one."""
        problems: Sequence[DomainError] = getattr(error, "errors", None) or (error,)
        return [cls.of(problem) for problem in problems]
