"""Root fields of profiles: node, customer, customers, and updateCustomer."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from api.compiled_reads import customer_plan, node_plan, page_plan
from api.context import Context
from api.lookahead import selected_below
from api.permissions import PROFILE_EDITORS, allow
from api.pii import no_pii_inference
from api.resolvers import customers as customer_resolvers
from api.schema.common import Node
from api.schema.conditions import ConditionInput
from api.schema.customer_mutations import CustomerPatch, CustomerPayload
from api.schema.customers import Customer, CustomerConnection, CustomerOrder
from api.schema.identity import IdentityInput
from domain.pagination import PageRequest


@strawberry.type
class CustomerQueries:
    @strawberry.field
    async def node(self, info: Info[Context, None], id: strawberry.ID) -> Node | None:
        return await customer_resolvers.node(info.context, id, node_plan(info))  # type: ignore[return-value]

    @strawberry.field(
        description="By global id (a merged-away id answers with the surviving profile) "
        "or by any identity.",
        extensions=no_pii_inference(),
    )
    async def customer(
        self,
        info: Info[Context, None],
        id: strawberry.ID | None = None,
        identity: IdentityInput | None = None,
    ) -> Customer | None:
        plan = customer_plan(info) if id is not None and identity is None else None
        if plan is not None:
            return await customer_resolvers.customer_json(info.context, id, plan)  # type: ignore[arg-type,return-value]
        fields = selected_below(info)
        return await customer_resolvers.customer(info.context, id, identity, fields)

    @strawberry.field(
        description="Filtered with the same condition language as segments; page size at most 200.",
        extensions=no_pii_inference(),
    )
    async def customers(
        self,
        info: Info[Context, None],
        where: ConditionInput | None = None,
        segment: strawberry.ID | None = None,
        order_by: list[CustomerOrder] | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> CustomerConnection:
        page = PageRequest(first=first, after=after, last=last, before=before)
        fields = selected_below(info, "edges", "node")
        return await customer_resolvers.customers(  # type: ignore[return-value]
            info.context, order_by, page, where, segment, fields, page_plan(info)
        )


@strawberry.type
class CustomerMutations:
    @strawberry.mutation(extensions=allow(*PROFILE_EDITORS))
    async def update_customer(
        self, info: Info[Context, None], id: strawberry.ID, patch: CustomerPatch
    ) -> CustomerPayload:
        return await customer_resolvers.update_customer(info.context, id, patch)
