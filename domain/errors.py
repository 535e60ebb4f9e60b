"""The errors a caller can cause, each with a stable code (the contract's `UserError.code`).

    DomainError                 base: code, message, field path
    ├── NotFound                NOT_FOUND: the thing addressed does not exist
    ├── InvalidInput            INVALID_INPUT and the more precise codes below
    │   ├── codes of identity resolution: UNKNOWN_IDENTITY_TYPE, INVALID_IDENTITY,
    │   │   BLOCKED_IDENTITY, MERGE_CONFLICT, IDENTITY_LIMIT, IDEMPOTENCY_KEY_REUSED,
    │   │   ERASED_IDENTITY, INVALID_MERGE, UNMERGE_NOT_POSSIBLE
    │   └── PAGE_SIZE_EXCEEDED, INVALID_CURSOR, BATCH_TOO_LARGE
    └── Forbidden               FORBIDDEN: the caller's role may not do this

The API layer turns a DomainError into `errors: [UserError]` (mutations) or a GraphQL error with
`extensions.code` (queries), in one place. Anything else is a bug: it is logged and answered as
INTERNAL_ERROR with a request id.
"""

from __future__ import annotations

from collections.abc import Sequence

FieldPath = tuple[str, ...]


class DomainError(Exception):
    code = "INVALID_INPUT"

    def __init__(self, message: str, *, field: Sequence[str | int] = (), code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field: FieldPath = tuple(str(part) for part in field)
        if code is not None:
            self.code = code

    def at(self, *prefix: str | int) -> DomainError:
        """The same error with its field path under `prefix` (e.g. an item of a batch)."""
        return type(self)(self.message, field=(*prefix, *self.field), code=self.code)


class NotFound(DomainError):
    code = "NOT_FOUND"


class InvalidInput(DomainError):
    code = "INVALID_INPUT"


class Forbidden(DomainError):
    code = "FORBIDDEN"
