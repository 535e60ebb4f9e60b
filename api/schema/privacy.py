"""Types of the PII declarations of custom attributes."""

from __future__ import annotations

import strawberry

from api.schema.common import UserError


@strawberry.type
class PiiAttributesPayload:
    pii_attributes: list[str] | None = strawberry.field(
        description="Every custom attribute key declared PII, after the change."
    )
    errors: list[UserError]
