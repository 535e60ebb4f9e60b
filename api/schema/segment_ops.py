"""Root fields of segments: reading and previewing them (every role), administering them
(admin only)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from api.context import Context
from api.payloads import Refusals
from api.permissions import ADMIN_ONLY, allow
from api.pii import no_pii_inference
from api.resolvers import segments as segment_resolvers
from api.schema.conditions import ConditionInput
from api.schema.insights import SegmentInsights
from api.schema.segment_mutations import DeletePayload, SegmentInput, SegmentPatch, SegmentPayload
from api.schema.segments import Segment, SegmentConnection, SegmentPreview
from domain.pagination import PageRequest


@strawberry.type
class SegmentQueries:
    @strawberry.field(description="By global id or by key.")
    async def segment(
        self,
        info: Info[Context, None],
        id: strawberry.ID | None = None,
        key: str | None = None,
    ) -> Segment | None:
        return await segment_resolvers.segment(info.context, id, key)

    @strawberry.field(description="By key.")
    async def segments(
        self, info: Info[Context, None], first: int | None = None, after: str | None = None
    ) -> SegmentConnection:
        page = PageRequest(first=first, after=after)
        return await segment_resolvers.segment_list(info.context, page)

    @strawberry.field(
        description="Count and sample of a condition without saving it.",
        extensions=no_pii_inference(),
    )
    async def preview_segment(
        self, info: Info[Context, None], condition: ConditionInput, sample: int | None = 10
    ) -> SegmentPreview:
        return await segment_resolvers.preview(
            info.context, condition, 10 if sample is None else sample
        )

    @strawberry.field(
        description="Distributions of stage, RFM segment, channel and city, with member count, "
        "spend and average order value, of a segment's members, of the customers `where` "
        "matches (both: those in the segment who match), or of every live customer; one "
        "statement.",
        extensions=no_pii_inference(),
    )
    async def insights(
        self,
        info: Info[Context, None],
        where: ConditionInput | None = None,
        segment: strawberry.ID | None = None,
    ) -> SegmentInsights:
        return await segment_resolvers.insights(info.context, where, segment)


@strawberry.type
class SegmentMutations:
    @strawberry.mutation(extensions=[Refusals(at="input"), *allow(*ADMIN_ONLY)])
    async def define_segment(
        self, info: Info[Context, None], input: SegmentInput
    ) -> SegmentPayload:
        return await segment_resolvers.define(info.context, input)

    @strawberry.mutation(extensions=[Refusals(at="patch"), *allow(*ADMIN_ONLY)])
    async def update_segment(
        self, info: Info[Context, None], id: strawberry.ID, patch: SegmentPatch
    ) -> SegmentPayload:
        return await segment_resolvers.update_segment(info.context, id, patch)

    @strawberry.mutation(
        extensions=allow(*ADMIN_ONLY),
        description="Refused (SEGMENT_IN_USE) while a segment, RULE tag or lifecycle rule "
        "refers to it.",
    )
    async def delete_segment(self, info: Info[Context, None], id: strawberry.ID) -> DeletePayload:
        return await segment_resolvers.delete_segment(info.context, id)

    @strawberry.mutation(
        extensions=allow(*ADMIN_ONLY),
        description="Recompute a materialized segment's members now "
        "(a dynamic one has none stored).",
    )
    async def refresh_segment(self, info: Info[Context, None], id: strawberry.ID) -> SegmentPayload:
        return await segment_resolvers.refresh(info.context, id)
