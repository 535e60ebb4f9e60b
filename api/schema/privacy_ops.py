"""Root fields of PII declarations (admins only): which custom attributes are PII.

A custom attribute declared PII is treated as the core PII fields are (domain.access.privacy): left
out of `attributes` for partners, refused to them in filters, its literals masked in shown
conditions, and segments or RULE tags whose conditions compare it refused to them.
"""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from api.context import Context
from api.permissions import ADMIN_ONLY, allow
from api.resolvers import privacy as privacy_resolvers
from api.schema.privacy import PiiAttributesPayload


@strawberry.type
class PrivacyQueries:
    @strawberry.field(
        extensions=allow(*ADMIN_ONLY),
        description="The custom attribute keys declared PII, in order.",
    )
    async def pii_attributes(self, info: Info[Context, None]) -> list[str]:
        return await privacy_resolvers.pii_attributes(info.context)


@strawberry.type
class PrivacyMutations:
    @strawberry.mutation(
        extensions=allow(*ADMIN_ONLY),
        description="Declare the custom attribute `key` (as in `attributes.<key>`) PII or not; "
        "it need not be in use yet. INVALID_VALUE for an unusable key.",
    )
    async def declare_attribute_pii(
        self, info: Info[Context, None], key: str, pii: bool
    ) -> PiiAttributesPayload:
        return await privacy_resolvers.declare_attribute_pii(info.context, key, pii)
