"""Inputs and payloads of segment administration: define, update, delete, refresh."""

from __future__ import annotations

import strawberry

from api.schema.common import UserError
from api.schema.conditions import ConditionInput
from api.schema.segments import Segment


@strawberry.input
class SegmentInput:
    key: str
    name: str
    description: str | None = None
    condition: ConditionInput
    materialized: bool | None = False


@strawberry.input
class SegmentPatch:
    name: str | None = None
    description: str | None = None
    condition: ConditionInput | None = None
    materialized: bool | None = None


@strawberry.type
class SegmentPayload:
    segment: Segment | None
    errors: list[UserError]


@strawberry.type
class DeletePayload:
    deleted_id: strawberry.ID | None
    errors: list[UserError]
