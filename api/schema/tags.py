"""Tag definitions and the assignments a profile carries."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry
from strawberry.scalars import JSON

from api.ids import to_global_id
from api.schema.common import Node
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
    condition: JSON | None
    default_ttl_days: int | None
    archived: bool
    customer_count: int = 0

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
        )


@strawberry.type
class TagAssignment:
    tag: TagDefinition
    value: str | None
    source: str | None
    confidence: float | None
    assigned_at: datetime
    expires_at: datetime | None

    @classmethod
    def of(cls, record: AssignmentRecord, tag: TagDefinitionRecord) -> TagAssignment:
        return cls(
            tag=TagDefinition.of(tag),
            value=record.value,
            source=record.source,
            confidence=record.confidence,
            assigned_at=record.assigned_at,
            expires_at=record.expires_at,
        )
