"""Root fields of identity resolution: identity types, identify, merges."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from api.context import Context
from api.permissions import ADMIN_ONLY, WRITERS_OF_IDENTITY, allow
from api.resolvers import identity as identity_resolvers
from api.schema.customers import SharedIdentifier
from api.schema.identity import IdentityType, Survivorship
from api.schema.identity_mutations import (
    FieldRuleInput,
    IdentifyBatchPayload,
    IdentifyInput,
    IdentifyPayload,
    IdentityTypeInput,
    IdentityTypePayload,
    MergePayload,
    SurvivorshipPayload,
    UnmergePayload,
)
from domain.identity.survivorship import get_survivorship
from domain.identity.types import list_identity_types


@strawberry.type
class IdentityQueries:
    @strawberry.field
    async def identity_types(self, info: Info[Context, None]) -> list[IdentityType]:
        return [IdentityType.of(spec) for spec in await list_identity_types(info.context.db)]

    @strawberry.field(
        extensions=allow(*ADMIN_ONLY),
        description="Identifiers found shared by several people (a kiosk's device id): they "
        "link nothing while their type has a sharedLimit. The most recently found first.",
    )
    async def shared_identifiers(
        self, info: Info[Context, None], type: str | None = None, first: int | None = None
    ) -> list[SharedIdentifier]:
        return await identity_resolvers.shared_identifiers(info.context, type, first)

    @strawberry.field(extensions=allow(*ADMIN_ONLY))
    async def survivorship(self, info: Info[Context, None]) -> Survivorship:
        return Survivorship.of(await get_survivorship(info.context.db))


@strawberry.type
class IdentityMutations:
    @strawberry.mutation(extensions=allow(*WRITERS_OF_IDENTITY))
    async def identify(self, info: Info[Context, None], input: IdentifyInput) -> IdentifyPayload:
        return await identity_resolvers.identify_one(info.context, input)

    @strawberry.mutation(extensions=allow(*WRITERS_OF_IDENTITY))
    async def identify_batch(
        self,
        info: Info[Context, None],
        inputs: list[IdentifyInput],
        idempotency_key: str | None = None,
    ) -> IdentifyBatchPayload:
        return await identity_resolvers.identify_many(info.context, inputs, idempotency_key)

    @strawberry.mutation(extensions=allow(*WRITERS_OF_IDENTITY))
    async def merge_customers(
        self,
        info: Info[Context, None],
        survivor: strawberry.ID,
        merged: strawberry.ID,
        reason: str | None = None,
    ) -> MergePayload:
        return await identity_resolvers.merge_customers(info.context, survivor, merged, reason)

    @strawberry.mutation(extensions=allow(*WRITERS_OF_IDENTITY))
    async def unmerge(self, info: Info[Context, None], merge: strawberry.ID) -> UnmergePayload:
        return await identity_resolvers.unmerge(info.context, merge)

    @strawberry.mutation(extensions=allow(*ADMIN_ONLY))
    async def define_identity_type(
        self, info: Info[Context, None], input: IdentityTypeInput
    ) -> IdentityTypePayload:
        return await identity_resolvers.define_type(info.context, input)

    @strawberry.mutation(
        extensions=allow(*ADMIN_ONLY),
        description="Replaces the survivorship rules and the source ranking (most trusted first).",
    )
    async def configure_survivorship(
        self, info: Info[Context, None], rules: list[FieldRuleInput], source_trust: list[str]
    ) -> SurvivorshipPayload:
        return await identity_resolvers.configure_survivorship(info.context, rules, source_trust)
