"""API keys, the audit log and erasure: the types admins work with."""

from __future__ import annotations

from datetime import datetime

import strawberry

from api.ids import to_global_id
from api.schema.common import PageInfo, UserError
from domain.access.audit import AuditRecord, Outcome
from domain.access.erasure import Erasure
from domain.access.erasure_conditions import ConditionOwner
from domain.access.erasure_conditions import ConditionReference as ConditionReferenceRecord
from domain.access.keys import ApiKeyRecord, Role
from domain.pagination import Page

ApiKeyRole = strawberry.enum(Role, name="ApiKeyRole")
AuditOutcome = strawberry.enum(Outcome, name="AuditOutcome")
ConditionOwnerKind = strawberry.enum(ConditionOwner, name="ConditionOwnerKind")


@strawberry.type(description="A key's secret is shown once, when it is created; never again.")
class ApiKey:
    id: strawberry.ID
    name: str
    role: ApiKeyRole  # type: ignore[valid-type]
    prefix: str = strawberry.field(description="The secret's first characters, to tell keys apart.")
    created_at: datetime
    revoked_at: datetime | None
    cost_budget_per_minute: int | None = strawberry.field(
        description="Cost this key may spend per minute (setApiKeyBudget); null: the "
        "service's default budget."
    )

    @classmethod
    def of(cls, record: ApiKeyRecord) -> ApiKey:
        return cls(
            id=strawberry.ID(to_global_id("ApiKey", record.id)),
            name=record.name,
            role=record.role,
            prefix=record.prefix,
            created_at=record.created_at,
            revoked_at=record.revoked_at,
            cost_budget_per_minute=record.budget_per_minute,
        )


@strawberry.type
class CreateApiKeyPayload:
    key: ApiKey | None
    secret: str | None = strawberry.field(description="Shown this once: store it now.")
    errors: list[UserError]


@strawberry.type
class ApiKeyPayload:
    key: ApiKey | None
    errors: list[UserError]


@strawberry.type(description="One mutation (or export): who, when, what, to whom, and how.")
class AuditEntry:
    id: strawberry.ID
    at: datetime
    actor: str | None
    role: str | None
    operation: str
    customer_ids: list[strawberry.ID]
    outcome: AuditOutcome  # type: ignore[valid-type]
    codes: list[str]
    request_id: str | None

    @classmethod
    def of(cls, record: AuditRecord) -> AuditEntry:
        event = record.event
        return cls(
            id=strawberry.ID(to_global_id("AuditEntry", record.id)),
            at=record.at,
            actor=event.actor,
            role=event.role,
            operation=event.operation,
            customer_ids=[strawberry.ID(to_global_id("Customer", c)) for c in event.customer_ids],
            outcome=event.outcome,
            codes=list(event.codes),
            request_id=event.request_id,
        )


@strawberry.type
class AuditEntryEdge:
    node: AuditEntry
    cursor: str


@strawberry.type
class AuditEntryConnection:
    edges: list[AuditEntryEdge]
    page_info: PageInfo

    @classmethod
    def of(cls, page: Page[AuditRecord]) -> AuditEntryConnection:
        return cls(
            edges=[
                AuditEntryEdge(node=AuditEntry.of(record), cursor=cursor)
                for record, cursor in zip(page.items, page.cursors, strict=True)
            ],
            page_info=PageInfo.of(page),  # type: ignore[arg-type]
        )


_OWNER_TYPES = {ConditionOwner.SEGMENT: "Segment", ConditionOwner.TAG: "TagDefinition"}


@strawberry.type(
    description="An admin-defined condition (segment, RULE tag, lifecycle rule) whose literals "
    "named an erased person's values."
)
class ConditionReference:
    kind: ConditionOwnerKind  # type: ignore[valid-type]
    id: strawberry.ID | None = strawberry.field(description="Null for a lifecycle rule.")
    key: str
    name: str
    redacted: bool = strawberry.field(
        description="Literals equal to the person's values were replaced by `[erased]`; "
        "literals that only contain one (a CONTAINS pattern) are kept for the admin to change."
    )

    @classmethod
    def of(cls, record: ConditionReferenceRecord) -> ConditionReference:
        type_name = _OWNER_TYPES.get(record.owner)
        node_id = (
            strawberry.ID(to_global_id(type_name, record.id))
            if type_name and record.id is not None
            else None
        )
        return cls(
            kind=record.owner,
            id=node_id,
            key=record.key,
            name=record.name,
            redacted=record.redacted,
        )


@strawberry.type
class ErasePayload:
    erased_id: strawberry.ID | None
    errors: list[UserError]
    conditions_naming_customer: list[ConditionReference] = strawberry.field(
        default_factory=list,
        description="Conditions that named the person's values, for an admin to review.",
    )

    @classmethod
    def of(cls, erasure: Erasure) -> ErasePayload:
        return cls(
            erased_id=strawberry.ID(to_global_id("Customer", erasure.customer_id)),
            errors=[],
            conditions_naming_customer=[ConditionReference.of(c) for c in erasure.conditions],
        )
