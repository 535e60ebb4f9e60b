"""The Schema object: the root types, built from each area's types and resolvers."""

from __future__ import annotations

import strawberry
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.types import Info

from api.context import Context
from api.errors import ErrorShaping
from api.permissions import ADMIN_ONLY, WRITERS_OF_IDENTITY, allow
from api.resolvers import customers as customer_resolvers
from api.resolvers import identity as identity_resolvers
from api.schema.common import Node
from api.schema.customers import (
    Customer,
    CustomerConnection,
    CustomerOrder,
    IdentityInput,
    MergeRecord,
)
from api.schema.identities import IdentityType
from api.schema.identity_mutations import (
    IdentifyBatchPayload,
    IdentifyInput,
    IdentifyPayload,
    IdentityTypeInput,
    IdentityTypePayload,
    MergePayload,
    UnmergePayload,
)
from api.schema.lifecycle import LifecycleModel
from api.schema.segments import Segment
from api.schema.tags import TagDefinition
from domain import lifecycle
from domain.identity_types import list_identity_types
from domain.pagination import PageRequest


@strawberry.type
class Query:
    @strawberry.field
    async def node(self, info: Info[Context, None], id: strawberry.ID) -> Node | None:
        return await customer_resolvers.node(info.context, id)  # type: ignore[return-value]

    @strawberry.field(
        description="By global id (a merged-away id answers with the surviving profile) "
        "or by any identity."
    )
    async def customer(
        self,
        info: Info[Context, None],
        id: strawberry.ID | None = None,
        identity: IdentityInput | None = None,
    ) -> Customer | None:
        return await customer_resolvers.customer(info.context, id, identity)

    @strawberry.field(
        description="Filtered with the same condition language as segments; page size at most 200."
    )
    async def customers(
        self,
        info: Info[Context, None],
        order_by: list[CustomerOrder] | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> CustomerConnection:
        page = PageRequest(first=first, after=after, last=last, before=before)
        return await customer_resolvers.customers(info.context, order_by, page)

    @strawberry.field
    async def identity_types(self, info: Info[Context, None]) -> list[IdentityType]:
        return [IdentityType.of(spec) for spec in await list_identity_types(info.context.db)]

    @strawberry.field
    async def lifecycle_model(self, info: Info[Context, None]) -> LifecycleModel:
        return LifecycleModel.of(await lifecycle.get_model(info.context.db))


@strawberry.type
class Mutation:
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


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        types=[Customer, MergeRecord, TagDefinition, Segment],
        # Clients send the same few documents again and again: parse and validate each once.
        extensions=[ErrorShaping, ParserCache(maxsize=512), ValidationCache(maxsize=512)],
    )
