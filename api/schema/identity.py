"""Types of identities: the (type, value) input that names a person, and the identity types
admins define. The payloads of identify and merges are in api.schema.identity_mutations."""

from __future__ import annotations

import strawberry

from domain.identity.types import IdentityTypeSpec


@strawberry.input
class IdentityInput:
    type: str
    value: str


@strawberry.type
class IdentityType:
    key: str
    label: str
    normalizer: str
    is_pii: bool
    unique: bool
    max_per_customer: int | None
    priority: int
    blocked_values: list[str]
    placeholder_patterns: list[str] = strawberry.field(
        description="Regular expressions (whole normalized value, any case) of placeholders: "
        "refused like blocked values."
    )
    shared_limit: int | None = strawberry.field(
        description="How many values of each stronger type one identifier of this type may "
        "link before it counts as shared and links no more (null: no limit)."
    )

    @classmethod
    def of(cls, spec: IdentityTypeSpec) -> IdentityType:
        return cls(
            key=spec.key,
            label=spec.label,
            normalizer=spec.normalizer,
            is_pii=spec.is_pii,
            unique=spec.unique,
            max_per_customer=spec.max_per_customer,
            priority=spec.priority,
            blocked_values=list(spec.blocked_values),
            placeholder_patterns=list(spec.placeholder_patterns),
            shared_limit=spec.shared_limit,
        )
