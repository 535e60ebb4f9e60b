"""Types of identities: the (type, value) input that names a person, and the identity types
admins define. The payloads of identify and merges are in api.schema.identity_mutations."""

from __future__ import annotations

from enum import Enum

import strawberry

from domain.identity import traits
from domain.identity.survivorship import api_name
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


@strawberry.enum(description="Which of two values of a field survives (a value beats none).")
class SurvivorshipRule(Enum):
    MOST_RECENT = "MOST_RECENT"
    MOST_TRUSTED = "MOST_TRUSTED"
    FIRST_NON_NULL = "FIRST_NON_NULL"
    SURVIVOR = "SURVIVOR"


@strawberry.type
class FieldRule:
    field: str = strawberry.field(
        description="firstName, city, ..., attributes.<key> or attributes.*"
    )
    rule: SurvivorshipRule


@strawberry.type(
    description="Field survivorship on identify and merge: MOST_RECENT, the value set later "
    "wins; MOST_TRUSTED, the one from the more trusted source (equal trust: the later); "
    "FIRST_NON_NULL, the first set stays; SURVIVOR, on a merge the survivor's value stays "
    "(on identify: the later). Fields without a rule follow defaultRule."
)
class Survivorship:
    default_rule: SurvivorshipRule
    rules: list[FieldRule]
    source_trust: list[str] = strawberry.field(description="Most trusted first.")

    @classmethod
    def of(cls, policy: traits.Survivorship) -> Survivorship:
        return cls(
            default_rule=SurvivorshipRule(policy.default.value),
            rules=[
                FieldRule(field=api_name(name), rule=SurvivorshipRule(rule.value))
                for name, rule in sorted(policy.rules.items(), key=lambda i: api_name(i[0]))
            ],
            source_trust=sorted(policy.trust, key=lambda s: -policy.trust[s]),
        )
