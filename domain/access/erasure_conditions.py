"""Admin-defined conditions that name an erased person's values.

A segment, RULE tag or lifecycle rule such as `email EQ "ann@example.com"` holds the person's
value in the admin's own definition. Erasure reports each such condition (so that an admin can
rewrite it) and replaces every literal that *is* one of the person's values with a redaction
marker: the person's profile no longer holds the value, so the leaf matches the same profiles
as before for everyone else, and the value leaves the database. Literals that merely contain a
value (a CONTAINS pattern, say) are reported but kept: they describe other people too, and
what they should become is the admin's call.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.access.erasure_scrub import REDACTED, Needles
from store.models import LifecycleRule, Segment, TagDefinition

LITERAL_KEYS = ("value", "values")
LEAF_KINDS = ("attribute", "tag")


class ConditionOwner(Enum):
    SEGMENT = "SEGMENT"
    TAG = "TAG"
    LIFECYCLE_RULE = "LIFECYCLE_RULE"


@dataclass(frozen=True, slots=True)
class ConditionReference:
    """A condition that named the person: whose it is and whether erasure redacted it."""

    owner: ConditionOwner
    id: uuid.UUID | None
    key: str
    name: str
    redacted: bool


def _literal_slots(condition: Any) -> Iterator[tuple[dict[str, Any], str, int | None]]:
    """Each literal of an attribute or tag leaf, as (holder, key, index in a list or None)."""
    stack = [condition]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        for kind, payload in node.items():
            if kind in ("and", "or", "not"):
                stack.append(payload)
            elif kind in LEAF_KINDS and isinstance(payload, dict):
                for key in LITERAL_KEYS:
                    literal = payload.get(key)
                    if isinstance(literal, str):
                        yield payload, key, None
                    elif isinstance(literal, list):
                        for index, item in enumerate(literal):
                            if isinstance(item, str):
                                yield payload, key, index


def redact_condition(condition: Any, needles: Needles) -> tuple[bool, bool]:
    """Redact, in place, the literals equal to a needle. Returns (named, redacted): whether
    any literal holds a needle, and whether any was replaced."""
    named = redacted = False
    for holder, key, index in list(_literal_slots(condition)):
        literal = holder[key] if index is None else holder[key][index]
        if not needles.within(literal):
            continue
        named = True
        if needles.whole(literal):
            redacted = True
            if index is None:
                holder[key] = REDACTED
            else:
                holder[key][index] = REDACTED
    return named, redacted


async def conditions_naming(session: AsyncSession, needles: Needles) -> list[ConditionReference]:
    """Find, report and redact the admin-defined conditions that name the person."""
    sources: tuple[tuple[ConditionOwner, Any, Any, Any], ...] = (
        (ConditionOwner.SEGMENT, Segment.id, Segment.key, Segment.name),
        (ConditionOwner.TAG, TagDefinition.id, TagDefinition.key, TagDefinition.name),
        (ConditionOwner.LIFECYCLE_RULE, LifecycleRule.key, LifecycleRule.key, LifecycleRule.key),
    )
    found: list[ConditionReference] = []
    for owner, row_key, key, name in sources:
        model = row_key.class_
        rows = await session.execute(select(row_key, key, name, model.condition))
        for row_id, row_name_key, row_name, condition in rows.all():
            named, redacted = redact_condition(condition, needles)
            if named:
                node = row_id if isinstance(row_id, uuid.UUID) else None
                found.append(ConditionReference(owner, node, row_name_key, row_name, redacted))
            if redacted:
                await session.execute(
                    update(model).where(row_key == row_id).values(condition=condition)
                )
    return sorted(found, key=lambda r: (r.owner.value, r.key))
