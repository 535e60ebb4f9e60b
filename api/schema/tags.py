"""Tag definitions and the assignments a profile carries."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from api.context import Context
from api.ids import to_global_id
from api.pii import no_pii_members, pii_condition, pii_tag_value
from api.schema.common import Node, PageInfo, UserError
from api.schema.conditions import ConditionInput
from domain.tags import AssignmentRecord, TagDefinitionRecord


@strawberry.enum
class TagValueType(Enum):
    FLAG = "FLAG"
    ENUM = "ENUM"
    NUMBER = "NUMBER"
    TEXT = "TEXT"
    DATE = "DATE"


@strawberry.enum
class TagKind(Enum):
    MANUAL = "MANUAL"
    RULE = "RULE"
    IMPORTED = "IMPORTED"


@strawberry.type
class TagDefinition(Node):
    id: strawberry.ID
    key: str
    name: str
    description: str | None
    category: str | None
    value_type: TagValueType
    allowed_values: list[str] | None
    kind: TagKind
    condition: JSON | None = strawberry.field(extensions=pii_condition())
    default_ttl_days: int | None
    archived: bool
    pii: bool = strawberry.field(
        description="Its values are PII: masked for partners, erased with the person."
    )
    uuid: strawberry.Private[uuid.UUID]

    @strawberry.field(
        description="Refused to partners (FORBIDDEN) for a RULE tag whose condition reads PII.",
        extensions=no_pii_members(),
    )
    async def customer_count(self, info: Info[Context, None]) -> int:
        # Live customers carrying the tag now; counted for all tags of a response at once.
        return await info.context.loaders.tag_customer_counts.load(self.uuid)

    @classmethod
    def of(cls, record: TagDefinitionRecord) -> TagDefinition:
        return cls(
            id=strawberry.ID(to_global_id("TagDefinition", record.id)),
            key=record.key,
            name=record.name,
            description=record.description,
            category=record.category,
            value_type=TagValueType(record.value_type),
            allowed_values=record.allowed_values,
            kind=TagKind(record.kind),
            condition=JSON(record.condition),
            default_ttl_days=record.default_ttl_days,
            archived=record.archived,
            pii=record.pii,
            uuid=record.id,
        )


@strawberry.type
class TagAssignment:
    tag: TagDefinition
    value: str | None = strawberry.field(extensions=pii_tag_value())
    source: str | None
    confidence: float | None
    assigned_at: datetime
    expires_at: datetime | None

    @classmethod
    def of(cls, record: AssignmentRecord, tag: TagDefinition) -> TagAssignment:
        return cls(
            tag=tag,
            value=record.value,
            source=record.source,
            confidence=record.confidence,
            assigned_at=record.assigned_at,
            expires_at=record.expires_at,
        )


@strawberry.type
class TagHistoryEntry:
    tag: TagDefinition
    action: str = strawberry.field(description="ASSIGNED, CHANGED, EXPIRED or REMOVED.")
    old_value: str | None = strawberry.field(extensions=pii_tag_value())
    new_value: str | None = strawberry.field(extensions=pii_tag_value())
    source: str | None
    actor: str | None
    at: datetime


@strawberry.type
class TagHistoryEdge:
    node: TagHistoryEntry
    cursor: str


@strawberry.type
class TagHistoryConnection:
    edges: list[TagHistoryEdge]
    page_info: PageInfo


@strawberry.input
class TagDefinitionInput:
    key: str
    name: str
    description: str | None = None
    category: str | None = None
    value_type: TagValueType | None = TagValueType.FLAG  # null on either: the default
    allowed_values: list[str] | None = None
    kind: TagKind | None = TagKind.MANUAL
    condition: ConditionInput | None = strawberry.field(
        default=None,
        description="RULE tags only (and required there): who holds the tag. A RULE tag is a "
        "FLAG without defaultTtlDays, assigned and removed automatically.",
    )
    default_ttl_days: int | None = None
    pii: bool | None = strawberry.field(
        default=None,
        description="Its values are PII (masked for partners, erased with the person). "
        "Not given: true for TEXT tags (free text), false otherwise.",
    )


@strawberry.input
class TagDefinitionPatch:
    name: str | None = None
    description: str | None = None
    category: str | None = None
    allowed_values: list[str] | None = None
    condition: ConditionInput | None = strawberry.field(
        default=None, description="A RULE tag's new condition: re-evaluated over everyone at once."
    )
    default_ttl_days: int | None = None
    value_type: TagValueType | None = strawberry.field(
        default=None, description="Refused while the tag has assignments."
    )
    pii: bool | None = strawberry.field(
        default=None,
        description="Not given: unchanged, unless valueType changes (then as on defineTag).",
    )


@strawberry.type
class TagDefinitionPayload:
    tag: TagDefinition | None
    errors: list[UserError]


@strawberry.type
class TagCustomersPayload:
    affected: int
    errors: list[UserError]
