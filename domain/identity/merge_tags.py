"""Tags in a merge: the survivor keeps the union of tags; where both carry a tag, the later
assignment wins (its values overwrite the survivor's row, and the merged-away row goes).

The merges of one call are played in order in Python over one read of every tag the profiles
carry, then written in at most two statements: a merge that follows another sees the tags the
first one left.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.identity.merge_snapshot import TAG_COLUMNS, to_json
from store.models import TagAssignment

TAGS = cast(Table, TagAssignment.__table__)


async def merge_tags(
    session: AsyncSession,
    pairs: Sequence[tuple[uuid.UUID, uuid.UUID]],
    profiles: Sequence[uuid.UUID],
) -> list[dict[str, Any]]:
    """Play the merges `pairs` ((survivor, merged away), in order) on the tags of `profiles`
    (every profile in the pairs); per merge, what its snapshot records: the ids of the rows it
    moved, the survivor's rows as they were before a later one overwrote them (`replaced`),
    and the merged-away rows it dropped (`dropped`)."""
    held: dict[uuid.UUID, dict[uuid.UUID, dict[str, Any]]] = {}
    for stored in await session.execute(select(TAGS).where(TAGS.c.customer_id.in_(profiles))):
        found = dict(stored._mapping)
        held.setdefault(found["customer_id"], {})[found["tag_id"]] = found
    deleted: set[int] = set()
    changed: dict[int, dict[str, Any]] = {}  # rows still there whose values or owner changed
    snapshots = []
    for survivor_id, merged_id in pairs:
        kept = held.setdefault(survivor_id, {})
        moved, replaced, dropped = [], [], []
        for row in held.pop(merged_id, {}).values():
            theirs = kept.get(row["tag_id"])
            if theirs is None:
                moved.append(row["id"])
                row["customer_id"] = survivor_id
                kept[row["tag_id"]] = changed[row["id"]] = row
                continue
            dropped.append(to_json(row, TAG_COLUMNS))
            if row["assigned_at"] > theirs["assigned_at"]:
                replaced.append(to_json(theirs, TAG_COLUMNS))
                theirs.update({name: row[name] for name in TAG_COLUMNS[1:]})
                changed[theirs["id"]] = theirs
            deleted.add(row["id"])
            changed.pop(row["id"], None)
        snapshots.append({"moved": moved, "replaced": replaced, "dropped": dropped})
    # Deletes first: a row moving to a profile never meets one leaving it (rows only ever move
    # to the profile the last merge leaves them on, which keeps its own), so the unique
    # (customer_id, tag_id) holds after each row written.
    if deleted:
        await session.execute(delete(TAGS).where(TAGS.c.id.in_(deleted)))
    if changed:
        columns = ("id", "customer_id", *TAG_COLUMNS[1:])
        await session.execute(
            update(TagAssignment),
            [{name: row[name] for name in columns} for row in changed.values()],
        )
    return snapshots
