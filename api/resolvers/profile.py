"""Resolver for editing a profile."""

from __future__ import annotations

import strawberry

from api.context import Context
from api.ids import parse_uuid_id
from api.schema.customers import Customer
from api.schema.profile import CustomerPatch, CustomerPayload
from domain.identity.editing import update_customer as edit
from domain.identity.traits import PROFILE_FIELDS

# GraphQL names of the patch fields: the traits' names, which the domain speaks.
PATCH_FIELDS = {column: name for name, (column, _) in PROFILE_FIELDS.items()} | {
    "attributes": "attributes"
}


async def update_customer(context: Context, id: str, patch: CustomerPatch) -> CustomerPayload:
    given = {
        PATCH_FIELDS[name]: value
        for name, value in vars(patch).items()
        if name in PATCH_FIELDS and value is not strawberry.UNSET
    }
    record = await edit(context.db, parse_uuid_id(id, "Customer"), given, context.actor)
    return CustomerPayload(customer=Customer.of(record), errors=[])
