"""Writing merges, all of one call in a fixed number of statements whatever their count.

A merge moves everything the merged-away profile holds (the tables of `MOVED_TABLES`, and its
tags) to the survivor, drops its segment memberships, applies field survivorship, marks it
MERGED with `merged_into_id`, and writes a merge record whose snapshot is enough to undo it
(`domain.identity.merging.unmerge`). It rebuilds both profiles' metrics and channels (their
orders and events moved) and records a customer.merged change.

The merges of a call take effect as if written one after another, in order: an identify batch
may merge B into A, then A into C. Rows move in one statement per table straight to the
profile the last merge leaves them on, and each record's snapshot lists what its own merge
moved (A into C: A's rows and those B's merge had given A). Profile values and tags are played
in order in Python over one read, then written in one statement each.

Callers hold row locks on every profile named (`domain.identity.merging.lock_profiles`), and
pass merges that could happen in that order: no profile is merged away twice, or takes part in
a merge after it was merged away.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

import domain.activity.channels as channels
import domain.activity.metrics as metrics
from domain.changes import Change, record_changes
from domain.identity.merge_snapshot import (
    CUSTOMER_COLUMNS,
    MOVED_TABLES,
    SURVIVOR_COLUMNS,
    to_json,
)
from domain.identity.merge_tags import merge_tags
from domain.identity.survivorship import load_survivorship
from domain.identity.traits import COLUMNS, ProfileValues, Survivorship
from domain.profile import MergeView
from store.bulk_rows import copy_rows, move_rows
from store.models import Customer, Identity, MergeRecord, SegmentMembership
from store.sqlfuncs import pair_in
from store.types import utcnow

CUSTOMERS = cast(Table, Customer.__table__)
MERGE_RECORDS = cast(Table, MergeRecord.__table__)
# What a merge writes on each profile it touches, survivor or merged away (one may be both).
WRITTEN = (*SURVIVOR_COLUMNS, "status", "merged_into_id", "updated_at", "version")


@dataclass(frozen=True, slots=True)
class MergeRequest:
    """Merge `merged_id` into `survivor_id`. `via` says what decided it (identify, manual,
    duplicate); `linked_by` names the (type, value) identifiers that joined the two, recorded
    as identity ids so that the record holds no identity value."""

    survivor_id: uuid.UUID
    merged_id: uuid.UUID
    reason: str
    via: str = "manual"
    linked_by: Sequence[tuple[str, str]] = ()


class _Chain:
    """Where the merges of one call leave each merged-away profile's rows, and which merges
    moved them on the way."""

    def __init__(self, requests: Sequence[MergeRequest]) -> None:
        self.into: dict[uuid.UUID, tuple[uuid.UUID, int]] = {}  # merged -> (survivor, merge)
        for index, r in enumerate(requests):
            if r.survivor_id == r.merged_id or {r.survivor_id, r.merged_id} & self.into.keys():
                raise ValueError(f"merge {index} names a profile already merged away")
            self.into[r.merged_id] = (r.survivor_id, index)
        named = (p for r in requests for p in (r.survivor_id, r.merged_id))
        self.profiles = list(dict.fromkeys(named))

    def path(self, profile: uuid.UUID) -> list[int]:
        """The merges, in order, that moved rows `profile` held when the call began."""
        merges = []
        while profile in self.into:
            profile, index = self.into[profile]
            merges.append(index)
        return merges

    def final(self, profile: uuid.UUID) -> uuid.UUID:
        """The live profile the merges leave `profile`'s rows on."""
        while profile in self.into:
            profile = self.into[profile][0]
        return profile


async def merge_all(
    session: AsyncSession,
    requests: Sequence[MergeRequest],
    actor: str | None,
    *,
    policy: Survivorship | None = None,
) -> list[MergeView]:
    """Write `requests` in order (field values survive by `policy`, read from the database
    when not given); one view per merge, in order."""
    if not requests:
        return []
    chain = _Chain(requests)
    now = utcnow()
    merge_ids = [uuid.uuid4() for _ in requests]
    profiles = await _load_customers(session, chain.profiles)
    links = await _identities_named(session, [key for r in requests for key in r.linked_by])
    named = [[(i, t) for i, t, key in links if key in set(r.linked_by)] for r in requests]
    linked_by = [[i for i, _ in found] for found in named]
    snapshots = _absorb_all(requests, profiles, policy or await load_survivorship(session), now)
    await copy_rows(
        session,
        MERGE_RECORDS,
        [
            {
                "id": merge_id,
                "survivor_id": r.survivor_id,
                "merged_id": r.merged_id,
                "reason": r.reason,
                "actor": actor,
                "merged_at": now,
                "snapshot": {},
                "via": r.via,
                "linked_by": ids,
            }
            for merge_id, r, ids in zip(merge_ids, requests, linked_by, strict=True)
        ],
    )
    await _move_rows(session, chain, merge_ids, snapshots)
    pairs = [(r.survivor_id, r.merged_id) for r in requests]
    tags = await merge_tags(session, pairs, chain.profiles)
    for snapshot, played in zip(snapshots, tags, strict=True):
        snapshot["tags"] = played
    await _drop_memberships(session, chain, snapshots)
    await session.execute(
        update(Customer),
        [{"id": i, **{name: profiles[i][name] for name in WRITTEN}} for i in chain.profiles],
    )
    await session.execute(
        update(MergeRecord),
        [{"id": i, "snapshot": s} for i, s in zip(merge_ids, snapshots, strict=True)],
    )
    await metrics.recompute(session, chain.profiles)  # their orders and events moved
    await channels.rebuild(session, chain.profiles)
    await record_changes(
        session,
        [
            Change(
                "customer.merged",
                r.survivor_id,
                {
                    "mergeId": str(merge_id),
                    "survivorId": str(r.survivor_id),
                    "mergedId": str(r.merged_id),
                    "reason": r.reason,
                    "via": r.via,
                    "linkedBy": sorted({t for _, t in found}),  # types: no PII
                },
            )
            for merge_id, r, found in zip(merge_ids, requests, named, strict=True)
        ],
    )
    return [
        MergeView(merge_id, r.survivor_id, r.merged_id, r.reason, actor, now, None, r.via, ids)
        for merge_id, r, ids in zip(merge_ids, requests, linked_by, strict=True)
    ]


async def _move_rows(
    session: AsyncSession,
    chain: _Chain,
    merge_ids: list[uuid.UUID],
    snapshots: list[dict[str, Any]],
) -> None:
    """Move the merged-away profiles' rows of every moved table to their final survivor, in
    one statement per table; each merge's snapshot lists the rows it moved."""
    for table in MOVED_TABLES:
        for snapshot in snapshots:
            snapshot[table.key] = []
        moves: dict[uuid.UUID, dict[str, Any]] = {}
        for merged in chain.into:
            moves[merged] = {"customer_id": chain.final(merged)}
            if table.merge_column:  # the last merge that moved the row
                moves[merged][table.merge_column] = merge_ids[chain.path(merged)[-1]]
        moved = await move_rows(session, table.model.__table__, "customer_id", moves)
        for row_id, held_by in sorted(moved):
            for index in chain.path(held_by):
                snapshots[index][table.key].append(row_id)


async def _drop_memberships(
    session: AsyncSession, chain: _Chain, snapshots: list[dict[str, Any]]
) -> None:
    """A merged-away profile leaves its segments (a profile that absorbed another before it
    was merged away has no memberships of the absorbed one to leave: those went already)."""
    left = await session.execute(
        delete(SegmentMembership)
        .where(SegmentMembership.customer_id.in_(list(chain.into)))
        .returning(
            SegmentMembership.customer_id,
            SegmentMembership.segment_id,
            SegmentMembership.entered_at,
        )
    )
    for snapshot in snapshots:
        snapshot["memberships"] = []
    for m in left:
        snapshot = snapshots[chain.into[m.customer_id][1]]
        snapshot["memberships"].append([str(m.segment_id), m.entered_at.isoformat()])


async def _load_customers(
    session: AsyncSession, ids: list[uuid.UUID]
) -> dict[uuid.UUID, dict[str, Any]]:
    rows = await session.execute(select(CUSTOMERS).where(CUSTOMERS.c.id.in_(ids)))
    found = {row.id: dict(row._mapping) for row in rows}
    assert found.keys() == set(ids), "a merged profile is missing"
    return found


async def _identities_named(
    session: AsyncSession, keys: Sequence[tuple[str, str]]
) -> list[tuple[int, str, tuple[str, str]]]:
    """(id, type, (type, value)) of the identities with these (type, value) keys, in id order."""
    if not keys:
        return []
    rows = await session.execute(
        select(Identity.id, Identity.type, Identity.value)
        .where(pair_in(session, Identity.type, Identity.value, list(set(keys))))
        .order_by(Identity.id)
    )
    return [(i, t, (t, v)) for i, t, v in rows]


def _values(customer: dict[str, Any]) -> ProfileValues:
    return ProfileValues(
        fields={column: customer[column] for column in COLUMNS},
        attributes=dict(customer["attributes"] or {}),
        times=dict(customer["field_times"] or {}),
        sources=dict(customer["field_sources"] or {}),
    )


def _absorb_all(
    requests: Sequence[MergeRequest],
    profiles: dict[uuid.UUID, dict[str, Any]],
    policy: Survivorship,
    now: datetime,
) -> list[dict[str, Any]]:
    """Play the merges on the profiles' values, in order; per merge, the snapshot of both
    profiles as the merge found and left them."""
    snapshots = []
    for r in requests:
        survivor, merged = profiles[r.survivor_id], profiles[r.merged_id]
        snapshot = {
            "merged": to_json(merged, CUSTOMER_COLUMNS),
            "survivor_before": to_json(survivor, SURVIVOR_COLUMNS),
        }
        values = _values(survivor)
        values.absorb(_values(merged), policy)
        survivor.update({column: values.fields.get(column) for column in COLUMNS})
        survivor["attributes"] = values.attributes
        survivor["field_times"] = values.times
        survivor["field_sources"] = values.sources
        survivor["email"] = survivor["email"] or merged["email"]
        survivor["phone"] = survivor["phone"] or merged["phone"]
        survivor["first_seen_at"] = min(
            (t for t in (survivor["first_seen_at"], merged["first_seen_at"]) if t), default=None
        )
        survivor["last_seen_at"] = max(
            (t for t in (survivor["last_seen_at"], merged["last_seen_at"]) if t), default=None
        )
        survivor["updated_at"] = now
        survivor["version"] += 1
        merged.update(status="MERGED", merged_into_id=r.survivor_id, updated_at=now)
        merged["version"] += 1
        snapshot["survivor_after"] = to_json(survivor, SURVIVOR_COLUMNS)
        snapshots.append(snapshot)
    return snapshots
