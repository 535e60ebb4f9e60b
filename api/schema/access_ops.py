"""Root fields of access administration (admins only): API keys, the audit log, erasing and
exporting a person's data."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from api.audit import AuditTrail
from api.context import Context
from api.permissions import ADMIN_ONLY, allow
from api.resolvers import access as access_resolvers
from api.schema.access import (
    ApiKey,
    ApiKeyPayload,
    ApiKeyRole,
    AuditEntryConnection,
    CreateApiKeyPayload,
    ErasePayload,
)
from domain.pagination import PageRequest


@strawberry.type
class AccessQueries:
    @strawberry.field(extensions=allow(*ADMIN_ONLY), description="Revoked ones included.")
    async def api_keys(self, info: Info[Context, None]) -> list[ApiKey]:
        return await access_resolvers.api_keys(info.context)

    @strawberry.field(
        extensions=allow(*ADMIN_ONLY),
        description="Newest first. `customer`: entries that touched that profile; `actor`: "
        "one caller's (role:name, as the entries show it).",
    )
    async def audit_log(
        self,
        info: Info[Context, None],
        first: int | None = None,
        after: str | None = None,
        customer: strawberry.ID | None = None,
        actor: str | None = None,
    ) -> AuditEntryConnection:
        page = PageRequest(first=first, after=after)
        return await access_resolvers.audit_log(info.context, page, customer, actor)

    @strawberry.field(
        extensions=[*allow(*ADMIN_ONLY), AuditTrail(always=True)],
        description="Everything held on one person, as JSON (right of access); audited.",
    )
    async def export_customer(self, info: Info[Context, None], id: strawberry.ID) -> JSON | None:
        return await access_resolvers.export_customer(info.context, id)  # type: ignore[return-value]


@strawberry.type
class AccessMutations:
    @strawberry.mutation(extensions=allow(*ADMIN_ONLY))
    async def create_api_key(
        self,
        info: Info[Context, None],
        name: str,
        role: ApiKeyRole,  # type: ignore[valid-type]
    ) -> CreateApiKeyPayload:
        return await access_resolvers.create_api_key(info.context, name, role)

    @strawberry.mutation(
        extensions=allow(*ADMIN_ONLY), description="Stops working at once, in every worker."
    )
    async def revoke_api_key(self, info: Info[Context, None], id: strawberry.ID) -> ApiKeyPayload:
        return await access_resolvers.revoke_api_key(info.context, id)

    @strawberry.mutation(
        extensions=allow(*ADMIN_ONLY),
        description="Sets the key's own cost budget per minute (null: the service's default "
        "again); it holds from the key's next request, in every worker.",
    )
    async def set_api_key_budget(
        self,
        info: Info[Context, None],
        id: strawberry.ID,
        cost_budget_per_minute: int | None = None,
    ) -> ApiKeyPayload:
        return await access_resolvers.set_api_key_budget(info.context, id, cost_budget_per_minute)

    @strawberry.mutation(
        extensions=allow(*ADMIN_ONLY),
        description="Removes the person's PII and identities for good, keeping anonymous "
        "aggregates; their identities are refused (ERASED_IDENTITY) if they come back.",
    )
    async def erase_customer(self, info: Info[Context, None], id: strawberry.ID) -> ErasePayload:
        return await access_resolvers.erase_customer(info.context, id)
