"""The errors a caller can cause, each with a stable code (the contract's `UserError.code`).

    DomainError                 base: code, message, field path
    ├── NotFound                NOT_FOUND: the thing addressed does not exist
    ├── InvalidInput            INVALID_INPUT and the more precise codes below
    │   ├── codes of identity resolution: UNKNOWN_IDENTITY_TYPE, INVALID_IDENTITY,
    │   │   BLOCKED_IDENTITY, MERGE_CONFLICT, IDENTITY_LIMIT, IDEMPOTENCY_KEY_REUSED,
    │   │   ERASED_IDENTITY, INVALID_MERGE, UNMERGE_NOT_POSSIBLE
    │   ├── codes of the lifecycle: INVALID_TRANSITION (setStage off the model's edges),
    │   │   UNKNOWN_STAGE, UNKNOWN_PRESET; configureLifecycle lists every problem at once
    │   │   (domain.lifecycle.config.ModelRefused.errors), with the condition language's codes and
    │   │   INVALID_MODEL, UNREACHABLE_STAGE, UNREACHABLE_RULE (no edge into its target),
    │   │   STAGE_MAPPING_REQUIRED (profiles would be left in a dropped stage)
    │   ├── codes of the condition language (field: the path of the bad node, e.g.
    │   │   ["where", "and", 1, "tag"]): UNKNOWN_FIELD, UNKNOWN_TAG, UNKNOWN_STAGE,
    │   │   UNKNOWN_IDENTITY_TYPE, UNKNOWN_SEGMENT, INVALID_OPERATOR (not valid for the field),
    │   │   INVALID_VALUE (wrong type, BETWEEN without two values, ...), CONDITION_TOO_DEEP
    │   │   (over 12 levels), CONDITION_TOO_LARGE (over 200 leaves), SEGMENT_CYCLE
    │   ├── codes of segments: DUPLICATE_KEY, SEGMENT_IN_USE (delete while a segment, RULE tag
    │   │   or lifecycle rule refers to it)
    │   ├── codes of tags: UNKNOWN_TAG, INVALID_TAG_VALUE, TAG_IN_USE, TAG_ARCHIVED,
    │   │   TOO_MANY_CUSTOMERS (over 10,000 listed: tag a segment instead), RULE_TAG_READ_ONLY
    │   │   (tagging a RULE tag by hand), TAG_CYCLE (a RULE tag's condition reading the tag)
    │   ├── codes of probable duplicates: ALREADY_DECIDED (accepting or rejecting a
    │   │   suggestion that was already accepted or rejected)
    │   ├── VALUE_TOO_LONG: text longer, as it would be stored, than its column holds
    │   │   (domain.values.text_for); checks older than it keep their codes (INVALID_INPUT,
    │   │   INVALID_IDENTITY, INVALID_TAG_VALUE, INVALID_VALUE, INVALID_MODEL)
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
