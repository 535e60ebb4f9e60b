"""Root fields of the lifecycle: the model."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from api.context import Context
from api.schema.lifecycle import LifecycleModel
from domain import lifecycle


@strawberry.type
class LifecycleQueries:
    @strawberry.field
    async def lifecycle_model(self, info: Info[Context, None]) -> LifecycleModel:
        return LifecycleModel.of(await lifecycle.get_model(info.context.db))
