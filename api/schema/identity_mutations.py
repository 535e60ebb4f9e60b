"""Inputs and payloads of identity resolution: identify, identifyBatch, merge, unmerge."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from api.schema.common import UserError
from api.schema.customers import Customer, MergeRecord
from api.schema.identity import IdentityInput, IdentityType, Survivorship, SurvivorshipRule


@strawberry.input
class IdentifyInput:
    identities: list[IdentityInput]
    traits: JSON | None = strawberry.field(
        default=None, description="Profile fields and custom attributes to set."
    )
    source: str | None = strawberry.field(
        default=None, description="Channel: web, app, wechat, store, crm, ..."
    )
    occurred_at: datetime | None = None


@strawberry.type
class IdentifyPayload:
    customer: Customer | None
    created: bool
    merges: list[MergeRecord]
    errors: list[UserError]


@strawberry.type
class IdentifyResult:
    index: int
    customer: Customer | None
    created: bool
    merges: list[MergeRecord]
    errors: list[UserError]


@strawberry.type
class IdentifyBatchPayload:
    results: list[IdentifyResult]
    errors: list[UserError]


@strawberry.type
class MergePayload:
    merge: MergeRecord | None
    customer: Customer | None
    errors: list[UserError]


@strawberry.type
class UnmergePayload:
    restored: Customer | None
    survivor: Customer | None
    errors: list[UserError]


@strawberry.input
class IdentityTypeInput:
    key: str
    label: str
    normalizer: str
    is_pii: bool | None = True  # null on any of these three: the default
    unique: bool | None = False
    max_per_customer: int | None = None
    priority: int | None = 0
    blocked_values: list[str] | None = None
    placeholder_patterns: list[str] | None = strawberry.field(
        default=None,
        description="Regular expressions (whole normalized value, any case) of placeholders.",
    )
    shared_limit: int | None = strawberry.field(
        default=None,
        description="How many values of each stronger type one identifier of this type may "
        "link before it counts as shared and links no more (null: no limit).",
    )


@strawberry.type
class IdentityTypePayload:
    identity_type: IdentityType | None
    errors: list[UserError]


@strawberry.input
class FieldRuleInput:
    field: str
    rule: SurvivorshipRule


@strawberry.type
class SurvivorshipPayload:
    survivorship: Survivorship | None
    errors: list[UserError]
