"""Resolvers of segments: parse the arguments, ask the domain, map the records. Admin
mutations answer refusals as `errors` in their payload (nothing is written then)."""

from __future__ import annotations

import strawberry

from api.context import Context
from api.ids import parse_uuid_id, to_global_id
from api.schema.conditions import ConditionInput, condition_dict
from api.schema.customers import Customer
from api.schema.insights import SegmentInsights
from api.schema.segment_mutations import DeletePayload, SegmentInput, SegmentPatch, SegmentPayload
from api.schema.segments import Segment, SegmentConnection, SegmentPreview
from domain.errors import InvalidInput
from domain.pagination import PageRequest
from domain.segments import definitions as segments
from domain.segments.insights import insights as insights_of


async def segment(context: Context, id: str | None, key: str | None) -> Segment | None:
    if (id is None) == (key is None):
        raise InvalidInput("give exactly one of `id` and `key`", field=["id"])
    segment_id = parse_uuid_id(id, "Segment") if id is not None else None
    record = await segments.get_segment(context.db, segment_id=segment_id, key=key)
    return Segment.of(record) if record else None


async def segment_list(context: Context, page: PageRequest) -> SegmentConnection:
    settings = context.settings
    page = page.validated(settings.page_size_default, settings.page_size_max)
    result = await segments.list_segments(context.db, page)
    return SegmentConnection.of(result, await segments.count_segments(context.db))


async def preview(context: Context, condition: ConditionInput, sample: int) -> SegmentPreview:
    result = await segments.preview(context.db, condition_dict(condition), sample)
    return SegmentPreview(count=result.count, sample=[Customer.of(r) for r in result.sample])


async def insights(
    context: Context, where: ConditionInput | None, segment: str | None
) -> SegmentInsights:
    segment_id = parse_uuid_id(segment, "Segment", "segment") if segment is not None else None
    condition = condition_dict(where) if where is not None else None
    return SegmentInsights.of(await insights_of(context.db, condition, segment_id))


async def define(context: Context, input: SegmentInput) -> SegmentPayload:
    draft = segments.SegmentDraft(
        key=input.key,
        name=input.name,
        description=input.description,
        condition=condition_dict(input.condition),
        materialized=bool(input.materialized),
    )
    record = await segments.define_segment(context.db, draft)
    return SegmentPayload(segment=Segment.of(record), errors=[])


async def update_segment(context: Context, id: str, patch: SegmentPatch) -> SegmentPayload:
    changes = segments.SegmentChanges(
        name=patch.name,
        description=patch.description,
        condition=condition_dict(patch.condition) if patch.condition else None,
        materialized=patch.materialized,
    )
    record = await segments.update_segment(context.db, parse_uuid_id(id, "Segment"), changes)
    return SegmentPayload(segment=Segment.of(record), errors=[])


async def delete_segment(context: Context, id: str) -> DeletePayload:
    deleted = await segments.delete_segment(context.db, parse_uuid_id(id, "Segment"))
    return DeletePayload(deleted_id=strawberry.ID(to_global_id("Segment", deleted)), errors=[])


async def refresh(context: Context, id: str) -> SegmentPayload:
    segment_id = parse_uuid_id(id, "Segment")
    await segments.refresh_segment(context.db, segment_id)
    record = await segments.get_segment(context.db, segment_id=segment_id)
    return SegmentPayload(segment=Segment.of(record) if record else None, errors=[])
