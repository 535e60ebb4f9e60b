"""Root fields of the tag system."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from api.context import Context
from api.permissions import ADMIN_ONLY, TAGGERS, allow
from api.resolvers import tags as tag_resolvers
from api.schema.tags import (
    TagCustomersPayload,
    TagDefinition,
    TagDefinitionInput,
    TagDefinitionPatch,
    TagDefinitionPayload,
)


@strawberry.type
class TagQueries:
    @strawberry.field(description="`category` includes its sub-categories.")
    async def tag_definitions(
        self,
        info: Info[Context, None],
        category: str | None = None,
        include_archived: bool | None = False,
    ) -> list[TagDefinition]:
        return await tag_resolvers.definitions(info.context, category, bool(include_archived))

    @strawberry.field
    async def tag_definition(self, info: Info[Context, None], key: str) -> TagDefinition | None:
        return await tag_resolvers.definition(info.context, key)


@strawberry.type
class TagMutations:
    @strawberry.mutation(extensions=allow(*ADMIN_ONLY))
    async def define_tag(
        self, info: Info[Context, None], input: TagDefinitionInput
    ) -> TagDefinitionPayload:
        return await tag_resolvers.define(info.context, input)

    @strawberry.mutation(extensions=allow(*ADMIN_ONLY))
    async def update_tag(
        self, info: Info[Context, None], key: str, patch: TagDefinitionPatch
    ) -> TagDefinitionPayload:
        return await tag_resolvers.update_definition(info.context, key, patch)

    @strawberry.mutation(extensions=allow(*ADMIN_ONLY))
    async def archive_tag(self, info: Info[Context, None], key: str) -> TagDefinitionPayload:
        return await tag_resolvers.archive(info.context, key)

    @strawberry.mutation(extensions=allow(*TAGGERS))
    async def tag_customers(
        self,
        info: Info[Context, None],
        tag: str,
        customers: list[strawberry.ID] | None = None,
        segment: strawberry.ID | None = None,
        value: str | None = None,
        expires_at: datetime | None = None,
        # Named `source` in the schema; not in Python, where the permission extension owns it.
        origin: Annotated[str | None, strawberry.argument(name="source")] = None,
        confidence: Annotated[
            float | None, strawberry.argument(description="0..1, for IMPORTED tags.")
        ] = None,
    ) -> TagCustomersPayload:
        return await tag_resolvers.tag_customers(
            info.context, tag, customers, segment, value, expires_at, origin, confidence
        )

    @strawberry.mutation(extensions=allow(*TAGGERS))
    async def untag_customers(
        self,
        info: Info[Context, None],
        tag: str,
        customers: list[strawberry.ID] | None = None,
        segment: strawberry.ID | None = None,
    ) -> TagCustomersPayload:
        return await tag_resolvers.untag_customers(info.context, tag, customers, segment)
