"""Resolvers of the tag system: definitions, and tagging customers in bulk."""

from __future__ import annotations

from datetime import datetime

import strawberry

from api.context import Context
from api.ids import parse_uuid_id
from api.schema.conditions import condition_dict
from api.schema.tags import (
    TagCustomersPayload,
    TagDefinition,
    TagDefinitionInput,
    TagDefinitionPatch,
    TagDefinitionPayload,
    TagKind,
    TagValueType,
)
from domain import tags
from domain.errors import InvalidInput
from domain.tagging import bulk as tagging


async def definitions(
    context: Context, category: str | None, include_archived: bool
) -> list[TagDefinition]:
    return [
        TagDefinition.of(r)
        for r in await tags.list_definitions(context.db, category, include_archived)
    ]


async def definition(context: Context, key: str) -> TagDefinition | None:
    record = await tags.definition_by_key(context.db, key)
    return TagDefinition.of(record) if record else None


async def define(context: Context, input: TagDefinitionInput) -> TagDefinitionPayload:
    spec = tags.TagSpec(
        key=input.key,
        name=input.name,
        description=input.description,
        category=input.category,
        value_type=(input.value_type or TagValueType.FLAG).value,
        allowed_values=input.allowed_values,
        kind=(input.kind or TagKind.MANUAL).value,
        condition=condition_dict(input.condition) if input.condition else None,
        default_ttl_days=input.default_ttl_days,
        pii=input.pii,
    )
    record = await tags.define_tag(context.db, spec, actor=context.actor)
    return TagDefinitionPayload(tag=TagDefinition.of(record), errors=[])


async def update_definition(
    context: Context, key: str, patch: TagDefinitionPatch
) -> TagDefinitionPayload:
    spec = tags.TagSpec(
        key=key,
        name=patch.name,
        description=patch.description,
        category=patch.category,
        value_type=patch.value_type.value if patch.value_type else None,
        allowed_values=patch.allowed_values,
        condition=condition_dict(patch.condition) if patch.condition else None,
        default_ttl_days=patch.default_ttl_days,
        pii=patch.pii,
    )
    record = await tags.update_tag(context.db, spec, actor=context.actor)
    return TagDefinitionPayload(tag=TagDefinition.of(record), errors=[])


async def archive(context: Context, key: str) -> TagDefinitionPayload:
    record = await tags.archive_tag(context.db, key)
    return TagDefinitionPayload(tag=TagDefinition.of(record), errors=[])


async def _targets(
    context: Context, customers: list[strawberry.ID] | None, segment: strawberry.ID | None
) -> tagging.Targets:
    """An explicit list (at most 10,000 ids) or every member of a segment, however many."""
    if (customers is None) == (segment is None):
        raise InvalidInput("give `customers` or `segment`", field=("customers",))
    if customers is not None:
        ids = [parse_uuid_id(c, "Customer", "customers") for c in customers]
        return await tagging.listed_targets(context.db, ids)
    assert segment is not None
    return tagging.InSegment(parse_uuid_id(segment, "Segment", "segment"))


async def tag_customers(
    context: Context,
    tag: str,
    customers: list[strawberry.ID] | None,
    segment: strawberry.ID | None,
    value: str | None,
    expires_at: datetime | None,
    source: str | None,
    confidence: float | None,
) -> TagCustomersPayload:
    assignment = tagging.Assignment(value, expires_at, source, confidence)
    targets = await _targets(context, customers, segment)
    affected = await tagging.tag_customers(context.db, tag, targets, assignment, context.actor)
    return TagCustomersPayload(affected=affected, errors=[])


async def untag_customers(
    context: Context, tag: str, customers: list[strawberry.ID] | None, segment: strawberry.ID | None
) -> TagCustomersPayload:
    targets = await _targets(context, customers, segment)
    affected = await tagging.untag_customers(context.db, tag, targets, context.actor)
    return TagCustomersPayload(affected=affected, errors=[])
