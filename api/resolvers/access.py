"""Resolvers of access administration: API keys, the audit log, erasure and export.

Refusals of mutations are answered as `errors` in their payload (nothing is written then).
"""

from __future__ import annotations

from typing import Any

from api.context import Context
from api.ids import parse_uuid_id
from api.schema.access import (
    ApiKey,
    ApiKeyPayload,
    AuditEntryConnection,
    CreateApiKeyPayload,
    ErasePayload,
)
from domain.access import audit, erasure, export
from domain.access import keys as access
from domain.pagination import PageRequest


async def api_keys(context: Context) -> list[ApiKey]:
    return [ApiKey.of(record) for record in await access.list_api_keys(context.db)]


async def create_api_key(context: Context, name: str, role: access.Role) -> CreateApiKeyPayload:
    new = await access.create_api_key(context.db, name, role)
    return CreateApiKeyPayload(key=ApiKey.of(new.record), secret=new.secret, errors=[])


async def revoke_api_key(context: Context, id: str) -> ApiKeyPayload:
    # Its next request is refused here, and in other processes once they hear of it (at
    # once, through Redis); this process's sockets of the key close now, others' within
    # their next check.
    record = await context.state.keys.revoke(context.db, parse_uuid_id(id, "ApiKey"))
    await context.state.sockets.close_key(record.id)
    return ApiKeyPayload(key=ApiKey.of(record), errors=[])


async def set_api_key_budget(
    context: Context, id: str, budget_per_minute: int | None
) -> ApiKeyPayload:
    key_id = parse_uuid_id(id, "ApiKey")
    record = await context.state.keys.set_budget(context.db, key_id, budget_per_minute)
    return ApiKeyPayload(key=ApiKey.of(record), errors=[])


async def audit_log(
    context: Context, page: PageRequest, customer: str | None, actor: str | None
) -> AuditEntryConnection:
    settings = context.settings
    page = page.validated(settings.page_size_default, settings.page_size_max)
    customer_id = parse_uuid_id(customer, "Customer", "customer") if customer else None
    found = await audit.audit_page(context.db, page, customer=customer_id, actor=actor)
    return AuditEntryConnection.of(found)


async def erase_customer(context: Context, id: str) -> ErasePayload:
    erased = await erasure.erase_customer(
        context.db,
        parse_uuid_id(id, "Customer"),
        context.actor,
        context.settings.erasure_salt,
    )
    return ErasePayload.of(erased)


async def export_customer(context: Context, id: str) -> dict[str, Any] | None:
    return await export.export_customer(context.db, parse_uuid_id(id, "Customer"))
