"""Root fields for editing a profile: updateCustomer."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from api.context import Context
from api.permissions import PROFILE_EDITORS, allow
from api.resolvers import profile as profile_resolvers
from api.schema.profile import CustomerPatch, CustomerPayload


@strawberry.type
class ProfileMutations:
    @strawberry.mutation(extensions=allow(*PROFILE_EDITORS))
    async def update_customer(
        self, info: Info[Context, None], id: strawberry.ID, patch: CustomerPatch
    ) -> CustomerPayload:
        return await profile_resolvers.update_customer(info.context, id, patch)
