"""What counts as PII on a profile, and the inputs that would let a caller infer it.

Partners read profiles with PII masked to null. Masking alone would still leak PII through
what a caller may ask: a filter (`email STARTS_WITH "a"` answers yes or no per profile), a sort
(the cursor carries the sort value) or a lookup by a PII identity (it confirms that the person
is a customer). These functions name such inputs; the API refuses them for callers without PII
access. Nothing here knows about roles or GraphQL.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from domain.identity_types import list_identity_types
from store.db import Database

Path = tuple[str | int, ...]

# The contract's profile fields that are PII (names included), by their GraphQL names.
PII_FIELDS = frozenset({"displayName", "firstName", "lastName", "email", "phone", "birthday"})
# Their customers columns, which erasure clears.
PII_COLUMNS = ("display_name", "first_name", "last_name", "email", "phone", "birthday")
# Sort keys whose values are PII (they travel in cursors).
PII_SORTS = frozenset({"DISPLAY_NAME"})


def pii_condition_paths(condition: Any, path: Path = ()) -> Iterator[Path]:
    """The paths of every leaf of a condition (in ConditionInput's dict shape) that compares a
    PII field. Identity conditions only test presence, which reveals no value, so they pass."""
    if isinstance(condition, list):
        for index, item in enumerate(condition):
            yield from pii_condition_paths(item, (*path, index))
        return
    if not isinstance(condition, Mapping):
        return
    for key in ("and", "or", "not"):
        if key in condition:
            yield from pii_condition_paths(condition[key], (*path, key))
    attribute = condition.get("attribute")
    if isinstance(attribute, Mapping) and attribute.get("field") in PII_FIELDS:
        yield (*path, "attribute", "field")


async def pii_identity_types(db: Database) -> frozenset[str]:
    """The keys of the identity types flagged PII (admins decide per type)."""
    return frozenset(spec.key for spec in await list_identity_types(db) if spec.is_pii)
