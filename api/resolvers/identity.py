"""Mutation resolvers of identity resolution: map input, call the domain, map the outcome."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from api.context import Context
from api.ids import parse_uuid_id
from api.schema.common import UserError
from api.schema.customers import Customer, MergeRecord, SharedIdentifier
from api.schema.identity import IdentityType, Survivorship
from api.schema.identity_mutations import (
    FieldRuleInput,
    IdentifyBatchPayload,
    IdentifyInput,
    IdentifyPayload,
    IdentifyResult,
    IdentityTypeInput,
    IdentityTypePayload,
    MergePayload,
    SurvivorshipPayload,
    UnmergePayload,
)
from domain import profile
from domain.errors import DomainError, InvalidInput
from domain.identity import linking as identity
from domain.identity import merging
from domain.identity.shared import list_shared
from domain.identity.survivorship import configure_survivorship as configure
from domain.identity.types import IdentityTypeSpec, define_identity_type
from domain.pagination import PageRequest


def _domain_input(item: IdentifyInput) -> identity.IdentifyInput:
    return identity.IdentifyInput(
        identities=[(i.type, i.value) for i in item.identities],
        traits=item.traits,
        source=item.source,
        occurred_at=item.occurred_at,
    )


def _errors(errors: Sequence[DomainError], *prefix: str | int) -> list[UserError]:
    return [UserError.of(error.at(*prefix)) for error in errors]


async def _outcomes(
    context: Context, results: Sequence[identity.IdentifyResult]
) -> tuple[dict[uuid.UUID, Customer], dict[uuid.UUID, MergeRecord]]:
    """The live profiles and merge records the results name, each fetched once for all."""
    customer_ids = [r.customer_id for r in results if r.customer_id]
    merge_ids = [m for r in results for m in r.merge_ids]
    customers = await profile.live_customers(context.db, customer_ids) if customer_ids else {}
    merges = await profile.merges_by_id(context.db, merge_ids) if merge_ids else {}
    return (
        {i: Customer.of(record) for i, record in customers.items()},
        {i: MergeRecord.of(view) for i, view in merges.items()},
    )


async def identify_one(context: Context, item: IdentifyInput) -> IdentifyPayload:
    result = await identity.identify(
        context.db,
        _domain_input(item),
        region=context.settings.default_phone_region,
        actor=context.actor,
        erased=context.erasure,
    )
    customers, merges = await _outcomes(context, [result])
    return IdentifyPayload(
        customer=customers.get(result.customer_id) if result.customer_id else None,
        created=result.created,
        merges=[merges[m] for m in result.merge_ids if m in merges],
        errors=_errors(result.errors, "input"),
    )


async def identify_many(
    context: Context, inputs: list[IdentifyInput], idempotency_key: str | None
) -> IdentifyBatchPayload:
    limit = context.settings.batch_size_max
    if len(inputs) > limit:
        error = InvalidInput(
            f"a batch holds at most {limit} inputs", field=["inputs"], code="BATCH_TOO_LARGE"
        )
        return IdentifyBatchPayload(results=[], errors=[UserError.of(error)])
    results = await identity.identify_batch(
        context.db,
        [_domain_input(item) for item in inputs],
        region=context.settings.default_phone_region,
        actor=context.actor,
        idempotency_key=idempotency_key,
        erased=context.erasure,
    )
    customers, merges = await _outcomes(context, results)
    return IdentifyBatchPayload(
        results=[
            IdentifyResult(
                index=index,
                customer=customers.get(r.customer_id) if r.customer_id else None,
                created=r.created,
                merges=[merges[m] for m in r.merge_ids if m in merges],
                errors=_errors(r.errors, "inputs", index),
            )
            for index, r in enumerate(results)
        ],
        errors=[],
    )


async def merge_customers(
    context: Context, survivor: str, merged: str, reason: str | None
) -> MergePayload:
    view = await merging.merge_customers(
        context.db,
        parse_uuid_id(survivor, "Customer", "survivor"),
        parse_uuid_id(merged, "Customer", "merged"),
        reason,
        context.actor,
    )
    record = await profile.get_customer(context.db, view.survivor_id)
    return MergePayload(
        merge=MergeRecord.of(view), customer=Customer.of(record) if record else None, errors=[]
    )


async def unmerge(context: Context, merge: str) -> UnmergePayload:
    result = await merging.unmerge(
        context.db, parse_uuid_id(merge, "MergeRecord", "merge"), context.actor
    )
    found = await profile.customers_by_id(context.db, [result.restored_id, result.survivor_id])
    return UnmergePayload(
        restored=Customer.of(found[result.restored_id]),
        survivor=Customer.of(found[result.survivor_id]),
        errors=[],
    )


async def define_type(context: Context, input: IdentityTypeInput) -> IdentityTypePayload:
    spec = IdentityTypeSpec(
        key=input.key,
        label=input.label,
        normalizer=input.normalizer,
        is_pii=input.is_pii is not False,
        unique=bool(input.unique),
        max_per_customer=input.max_per_customer,
        priority=input.priority or 0,
        blocked_values=tuple(input.blocked_values or ()),
        placeholder_patterns=tuple(input.placeholder_patterns or ()),
        shared_limit=input.shared_limit,
    )
    saved = await define_identity_type(context.db, spec, context.settings.default_phone_region)
    return IdentityTypePayload(identity_type=IdentityType.of(saved), errors=[])


async def shared_identifiers(
    context: Context, type_key: str | None, first: int | None
) -> list[SharedIdentifier]:
    settings = context.settings
    size = PageRequest(first=first).validated(settings.page_size_default, settings.page_size_max)
    found = await list_shared(context.db, type_key, size.size)
    return [SharedIdentifier.of(record) for record in found]


async def configure_survivorship(
    context: Context, rules: list[FieldRuleInput], source_trust: list[str]
) -> SurvivorshipPayload:
    pairs = [(r.field, r.rule.value) for r in rules]
    policy = await configure(context.db, pairs, source_trust)
    return SurvivorshipPayload(survivorship=Survivorship.of(policy), errors=[])
