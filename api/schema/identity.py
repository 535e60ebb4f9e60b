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
        )
