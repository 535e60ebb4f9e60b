"""Resolvers of the PII declarations of custom attributes (admins only)."""

from __future__ import annotations

from api.context import Context
from api.schema.common import UserError
from api.schema.privacy_types import PiiAttributesPayload
from domain.access import privacy
from domain.errors import DomainError


async def pii_attributes(context: Context) -> list[str]:
    return await privacy.pii_attributes(context.db)


async def declare_attribute_pii(context: Context, key: str, pii: bool) -> PiiAttributesPayload:
    try:
        keys = await privacy.declare_attribute_pii(context.db, key, pii, actor=context.actor)
    except DomainError as error:
        return PiiAttributesPayload(pii_attributes=None, errors=[UserError.of(error)])
    return PiiAttributesPayload(pii_attributes=keys, errors=[])
