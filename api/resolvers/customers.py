"""Resolvers of profiles: parse the arguments, ask the domain, map the records."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from functools import partial

import strawberry

from api.compiled_reads import spliced
from api.context import Context
from api.ids import from_global_id, parse_uuid_id
from api.json_text import JsonText
from api.schema.conditions import ConditionInput, condition_dict
from api.schema.customer_mutations import CustomerPatch, CustomerPayload
from api.schema.customers import (
    Customer,
    CustomerConnection,
    CustomerOrder,
    MergeRecord,
    SortDirection,
)
from api.schema.identity import IdentityInput
from api.schema.segments import Segment
from api.schema.tags import TagDefinition
from domain import profile, profile_json
from domain.errors import InvalidInput
from domain.identity.editing import update_customer as edit
from domain.identity.traits import PROFILE_FIELDS
from domain.pagination import PageRequest
from domain.segments import definitions as segments


async def customer(
    context: Context,
    id: str | None,
    identity: IdentityInput | None,
    fields: Collection[str] = (),
) -> Customer | None:
    """`fields`: what the query selects of the profile, prefetched (Loaders.prefetch)."""
    if (id is None) == (identity is None):
        raise InvalidInput("give exactly one of `id` and `identity`", field=["id"])
    if id is not None:
        record = await profile.get_customer(context.db, parse_uuid_id(id, "Customer"))
    else:
        assert identity is not None
        record = await profile.find_by_identity(
            context.db, identity.type, identity.value, context.settings.default_phone_region
        )
    if record is None:
        return None
    await context.loaders.prefetch([record.id], fields)
    return Customer.of(record)


async def customer_json(
    context: Context, id: str, plan: profile_json.CompiledCustomer
) -> JsonText | None:
    """`customer(id:)` answered with its compiled JSON (api.compiled_reads)."""
    customer_id = parse_uuid_id(id, "Customer")
    found = await profile_json.customer_json(context.db, plan, customer_id)
    return None if found is None else spliced(found)


async def node(
    context: Context, id: str, plan: profile_json.CompiledCustomer | None = None
) -> Customer | MergeRecord | Segment | TagDefinition | JsonText | None:
    """`plan`: the selection compiled for a Customer (api.compiled_reads), used if it is one."""
    type_name, _ = from_global_id(id)
    if type_name == "Customer" and plan is not None:
        return await customer_json(context, id, plan)
    if type_name == "Customer":
        return await customer(context, id, None)
    if type_name == "MergeRecord":
        merge = await profile.get_merge(context.db, parse_uuid_id(id, "MergeRecord"))
        return MergeRecord.of(merge) if merge else None
    if type_name == "Segment":
        record = await segments.get_segment(context.db, segment_id=parse_uuid_id(id, "Segment"))
        return Segment.of(record) if record else None
    if type_name == "TagDefinition":
        tag = await context.loaders.tag_definitions.load(parse_uuid_id(id, "TagDefinition"))
        return TagDefinition.of(tag) if tag else None
    return None


def sort_of(order_by: Sequence[CustomerOrder] | None) -> list[profile.Sort]:
    if not order_by:
        return [profile.Sort(profile.SortField.CREATED_AT)]
    return [
        profile.Sort(profile.SortField[order.field.value], order.direction is SortDirection.DESC)
        for order in order_by
    ]


async def customers(
    context: Context,
    order_by: Sequence[CustomerOrder] | None,
    page: PageRequest,
    where: ConditionInput | None = None,
    segment: str | None = None,
    fields: Collection[str] = (),
    plan: profile_json.CompiledPage | None = None,
) -> CustomerConnection | JsonText:
    """`plan`: the selection compiled (api.compiled_reads), answered with its JSON when the
    order compiles too."""
    settings = context.settings
    page = page.validated(settings.page_size_default, settings.page_size_max)
    matches = await segments.customer_filter(
        context.db,
        condition_dict(where) if where else None,
        parse_uuid_id(segment, "Segment", "segment") if segment else None,
    )
    order = sort_of(order_by)
    if plan is not None and profile_json.page_compiles(order):
        return spliced(await profile_json.customers_json(context.db, plan, order, page, matches))
    result = await profile.list_customers(context.db, order, page, matches)
    count = partial(profile.count_customers, context.db, matches)
    return await CustomerConnection.of(context, result, count, fields)


# GraphQL names of the patch fields: the traits' names, which the domain speaks.
PATCH_FIELDS = {column: name for name, column in PROFILE_FIELDS.items()} | {
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
