"""What counts as PII, and what a caller without PII access (a partner) may read or ask.

The one statement of the policy; the API applies it, nothing else decides it:

- PII values: the profile fields in PII_FIELDS, identities of PII types, custom attributes an
  admin declared PII (`declare_attribute_pii`), and the values of tags flagged `pii`. A tag is
  PII unless declared otherwise when its values are free text (TEXT), not PII otherwise
  (`tag_is_pii_by_default`). Free text that is not a tag value (merge reasons, stage reasons)
  is always masked.
- Masking: partners read PII values as null (free text that the contract makes non-null reads
  as MASKED_TEXT; a PII attribute is left out of `attributes`), and the literals of condition
  leaves that compare PII read as null wherever a condition is shown.
- Inference: masking alone would still leak PII through what a caller may ask. A filter
  (`email STARTS_WITH "a"` answers yes or no per profile), a sort (the cursor carries the sort
  value), a lookup by a PII identity (it confirms the person is a customer), and the people a
  segment or RULE tag whose condition reads PII lists or counts. A condition reads PII when a
  leaf compares a PII field or attribute, compares a PII tag's value, or names a segment or
  RULE tag whose own condition reads PII (transitively). Testing presence of an identity or of
  a tag that is not such a RULE tag reveals no value and is allowed.

Nothing here knows about roles or GraphQL: `PiiPolicy` answers for the data as it is now.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.errors import InvalidInput
from domain.identity.types import list_identity_types
from domain.values import text_for
from store.db import Database
from store.models import IdentityType, PiiAttribute, Segment, TagDefinition

Path = tuple[str | int, ...]

# The contract's profile fields that are PII (names included), by their GraphQL names.
PII_FIELDS = frozenset({"displayName", "firstName", "lastName", "email", "phone", "birthday"})
# Their customers columns, which erasure clears.
PII_COLUMNS = ("display_name", "first_name", "last_name", "email", "phone", "birthday")
# Sort keys whose values are PII (they travel in cursors).
PII_SORTS = frozenset({"DISPLAY_NAME"})
# Free text a partner reads where the contract allows no null (MergeRecord.reason).
MASKED_TEXT = "[masked]"
# Keys of change-event payloads that hold free text.
FREE_TEXT_KEYS = ("reason",)
ATTRIBUTE_PREFIX = "attributes."


def tag_is_pii_by_default(value_type: str | None) -> bool:
    """A tag defined without `pii`: free text (TEXT) may hold anything, so it is PII."""
    return value_type == "TEXT"


@dataclass(frozen=True, slots=True)
class PiiPolicy:
    identity_types: frozenset[str] = frozenset()
    attributes: frozenset[str] = frozenset()  # custom attribute keys declared PII
    pii_tags: frozenset[str] = frozenset()  # tag keys whose values are PII
    segments: frozenset[str] = frozenset()  # segment keys whose condition reads PII
    rule_tags: frozenset[str] = frozenset()  # RULE tag keys whose condition reads PII
    plain_tags: frozenset[str] = frozenset()  # tag keys whose values are not PII
    segment_ids: frozenset[uuid.UUID] = frozenset()  # the ids of `segments`

    def reads_pii(self, condition: Any, path: Path = ()) -> Iterator[Path]:
        """The path of every leaf of a condition (in ConditionInput's dict shape) that reads
        PII, down to the part that does (e.g. ("and", 0, "attribute", "field"))."""
        if isinstance(condition, list):
            for index, item in enumerate(condition):
                yield from self.reads_pii(item, (*path, index))
            return
        if not isinstance(condition, Mapping):
            return
        for key in ("and", "or", "not"):
            if key in condition:
                yield from self.reads_pii(condition[key], (*path, key))
        for kind, payload in condition.items():
            if isinstance(payload, Mapping):
                part = self._leaf_reads(kind, payload)
                if part is not None:
                    yield (*path, kind, part)

    def _leaf_reads(self, kind: str, payload: Mapping[str, Any]) -> str | None:
        if kind == "attribute" and self.is_pii_field(payload.get("field")):
            return "field"
        if kind == "tag":
            key = payload.get("key")
            if key in self.rule_tags:
                return "key"
            if key in self.pii_tags and (payload.get("op") or payload.get("value") is not None):
                return "value"
        if kind == "segment" and payload.get("key") in self.segments:
            return "key"
        return None

    def is_pii_field(self, field: Any) -> bool:
        """A core PII field or a custom attribute declared PII (`attributes.<key>`)."""
        if not isinstance(field, str):
            return False
        return field in PII_FIELDS or (
            field.startswith(ATTRIBUTE_PREFIX)
            and field.removeprefix(ATTRIBUTE_PREFIX) in self.attributes
        )

    def masked_condition(self, condition: Any) -> Any:
        """A copy of a condition whose leaves that compare PII have their literals nulled."""
        if isinstance(condition, list):
            return [self.masked_condition(item) for item in condition]
        if not isinstance(condition, Mapping):
            return condition
        masked: dict[str, Any] = {}
        for kind, payload in condition.items():
            if kind in ("and", "or", "not"):
                masked[kind] = self.masked_condition(payload)
            elif isinstance(payload, Mapping) and self._leaf_reads(kind, payload) in (
                "field",
                "value",
            ):
                masked[kind] = {
                    k: (None if k in ("value", "values") else v) for k, v in payload.items()
                }
            else:
                masked[kind] = payload
        return masked

    def masked_attributes(self, attributes: Mapping[str, Any]) -> dict[str, Any]:
        """Custom attributes without those declared PII."""
        return {k: v for k, v in attributes.items() if k not in self.attributes}

    def masked_change(self, kind: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """A change event's payload without free text or a PII tag's value."""
        masked = {k: (None if k in FREE_TEXT_KEYS else v) for k, v in data.items()}
        if kind == "tag.assigned" and masked.get("tag") not in self.plain_tags:
            masked["value"] = None  # a tag defined since the policy was read counts as PII
        return masked


@dataclass(frozen=True, slots=True)
class _Tag:
    key: str
    pii: bool
    condition: Any


async def load_policy(db: Database) -> PiiPolicy:
    """The policy over the data as it is now, in four small reads."""
    async with db.read() as session:
        identity_types = frozenset(
            (await session.scalars(select(IdentityType.key).where(IdentityType.is_pii))).all()
        )
        attributes = frozenset((await session.scalars(select(PiiAttribute.key))).all())
        tags = [
            _Tag(row.key, row.pii, row.condition if row.kind == "RULE" else None)
            for row in await session.execute(
                select(
                    TagDefinition.key,
                    TagDefinition.pii,
                    TagDefinition.kind,
                    TagDefinition.condition,
                )
            )
        ]
        rows = (await session.execute(select(Segment.key, Segment.id, Segment.condition))).all()
    segments = {row.key: row.condition for row in rows}
    policy = PiiPolicy(
        identity_types,
        attributes,
        pii_tags=frozenset(t.key for t in tags if t.pii),
        plain_tags=frozenset(t.key for t in tags if not t.pii),
    )
    policy = _with_conditions_reading_pii(policy, segments, {t.key: t.condition for t in tags})
    return replace(
        policy, segment_ids=frozenset(row.id for row in rows if row.key in policy.segments)
    )


def _with_conditions_reading_pii(
    policy: PiiPolicy, segments: Mapping[str, Any], rule_tags: Mapping[str, Any]
) -> PiiPolicy:
    """Add the segments and RULE tags whose conditions read PII, through any chain of
    references (each pass adds those that refer to one found by the pass before)."""
    while True:
        more_segments = {
            key
            for key, condition in segments.items()
            if key not in policy.segments and next(policy.reads_pii(condition), None)
        }
        more_tags = {
            key
            for key, condition in rule_tags.items()
            if condition is not None
            and key not in policy.rule_tags
            and next(policy.reads_pii(condition), None)
        }
        if not more_segments and not more_tags:
            return policy
        policy = replace(
            policy,
            segments=policy.segments | more_segments,
            rule_tags=policy.rule_tags | more_tags,
        )


async def pii_identity_types(db: Database) -> frozenset[str]:
    """The keys of the identity types flagged PII (admins decide per type)."""
    return frozenset(spec.key for spec in await list_identity_types(db) if spec.is_pii)


# --- custom attributes declared PII (admin) -------------------------------------------------


async def pii_attributes(db: Database) -> list[str]:
    async with db.read() as session:
        return await _attribute_keys(session)


async def _attribute_keys(session: AsyncSession) -> list[str]:
    return list((await session.scalars(select(PiiAttribute.key).order_by(PiiAttribute.key))).all())


async def declare_attribute_pii(
    db: Database, key: str, pii: bool, *, actor: str | None = None
) -> list[str]:
    """Declare the custom attribute `key` PII or not; the keys declared PII afterwards. The key
    need not be in use yet: declaring it first keeps its first value from ever showing."""
    if not key or '"' in key or "\\" in key or not key.isprintable():
        raise InvalidInput(
            'an attribute key is printable characters, at least one, without " or \\',
            field=("key",),
            code="INVALID_VALUE",
        )
    text_for(PiiAttribute.key, key, ("key",), code="INVALID_VALUE", what="an attribute key")

    async def work(session: AsyncSession) -> list[str]:
        known = await session.get(PiiAttribute, key)
        if pii and known is None:
            session.add(PiiAttribute(key=key, declared_by=actor))
        elif not pii and known is not None:
            await session.execute(delete(PiiAttribute).where(PiiAttribute.key == key))
        await session.flush()
        return await _attribute_keys(session)

    return await db.transact(work)
