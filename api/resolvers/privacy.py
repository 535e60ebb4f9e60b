"""Resolvers of the PII declarations of custom attributes (admins only)."""

from __future__ import annotations

from api.context import Context
from api.schema.privacy import PiiAttributesPayload
from domain.access import privacy


async def pii_attributes(context: Context) -> list[str]:
    return await privacy.pii_attributes(context.db)


async def declare_attribute_pii(context: Context, key: str, pii: bool) -> PiiAttributesPayload:
    keys = await privacy.declare_attribute_pii(context.db, key, pii, actor=context.actor)
    return PiiAttributesPayload(pii_attributes=keys, errors=[])
