"""Merging two profiles into one, and undoing it.

A merge (written by `domain.identity.merge_batch`) moves everything the merged-away profile
holds to the survivor and writes a merge record whose snapshot is enough to undo it: `unmerge`
gives the merged profile back its rows as they were at the merge, while whatever arrived
later stays with the survivor. Both rebuild the two profiles' metrics (their orders and events
moved); a manual merge and an unmerge then mark both profiles dirty, so that RULE tags, stages
and materialized segments follow through the derived-state worker (domain.derived; a stage a
rule moved after the merge is not moved back by the unmerge: the rules decide from the
restored data).

Callers hold row locks on the profiles (`lock_profiles`) before merging them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

import domain.activity.channels as channels
import domain.activity.metrics as metrics
from domain.changes import Change, record_changes
from domain.derived.batches import transact
from domain.derived.marks import mark
from domain.errors import InvalidInput, NotFound
from domain.identity.merge_batch import MergeRequest, merge_all
from domain.identity.merge_snapshot import MOVED_TABLES, SURVIVOR_COLUMNS, from_json
from domain.identity.resolution import ProfileState, violation
from domain.identity.types import load_identity_types
from domain.profile import MergeView, resolve_live_id
from store.db import Database
from store.models import Customer, Identity, MergeRecord, SegmentMembership, TagAssignment
from store.types import utcnow


async def lock_profiles(session: AsyncSession, ids: set[uuid.UUID]) -> None:
    """Row locks in id order, so two writers never wait on each other in a cycle (PostgreSQL;
    on SQLite the write transaction already excludes every other writer)."""
    if ids:
        await session.execute(
            select(Customer.id).where(Customer.id.in_(ids)).order_by(Customer.id).with_for_update()
        )


@dataclass(frozen=True, slots=True)
class UnmergeResult:
    restored_id: uuid.UUID
    survivor_id: uuid.UUID


async def merge_customers(
    db: Database,
    survivor_id: uuid.UUID,
    merged_id: uuid.UUID,
    reason: str | None,
    actor: str | None,
    *,
    via: str = "manual",
) -> MergeView:
    """An explicit merge, under the same protection as identify: refused (nothing written)
    when the two profiles hold different values of a unique type or would pass a limit.
    `via`: manual (mergeCustomers), or duplicate (an accepted duplicate suggestion)."""

    async def work(session: AsyncSession) -> MergeView:
        live_survivor = await resolve_live_id(session, survivor_id)
        live_merged = await resolve_live_id(session, merged_id)
        if live_survivor is None:
            raise NotFound("no such customer", field=["survivor"])
        if live_merged is None:
            raise NotFound("no such customer", field=["merged"])
        if live_survivor == live_merged:
            raise InvalidInput(
                "these are already one profile", field=["merged"], code="INVALID_MERGE"
            )
        await lock_profiles(session, {live_survivor, live_merged})
        statuses = dict(
            (
                await session.execute(
                    select(Customer.id, Customer.status).where(
                        Customer.id.in_([live_survivor, live_merged])
                    )
                )
            ).all()
        )
        for name, customer_id in (("survivor", live_survivor), ("merged", live_merged)):
            if statuses.get(customer_id) != "ACTIVE":
                raise InvalidInput(
                    "only live profiles can be merged", field=[name], code="INVALID_MERGE"
                )
        types = await load_identity_types(session)
        profiles = await profile_states(session, [live_survivor, live_merged])
        found = violation(types, profiles, ())
        if found:
            code, _, message = found
            raise InvalidInput(f"not merged: {message}", field=["merged"], code=code)
        [merged] = await merge_all(
            session,
            [MergeRequest(live_survivor, live_merged, reason or f"{via} merge", via=via)],
            actor,
        )
        # The survivor's data changed: its RULE tags, stage and materialized segments follow
        # (the merged-away profile is no longer live and keeps what it had).
        await mark(session, [live_survivor, live_merged], actor)
        return merged

    return await transact(db, work)


async def profile_states(session: AsyncSession, ids: list[uuid.UUID]) -> list[ProfileState]:
    """What resolution needs to know of these profiles: age and identities."""
    if not ids:
        return []
    created = dict(
        (
            await session.execute(
                select(Customer.id, Customer.created_at).where(Customer.id.in_(ids))
            )
        ).all()
    )
    states = {i: ProfileState(i, created[i]) for i in ids if i in created}
    rows = await session.execute(
        select(Identity.customer_id, Identity.type, Identity.value).where(
            Identity.customer_id.in_(ids)
        )
    )
    for customer_id, type_key, value in rows:
        states[customer_id].identities.setdefault(type_key, set()).add(value)
    return list(states.values())


async def unmerge(db: Database, merge_id: uuid.UUID, actor: str | None) -> UnmergeResult:
    async def work(session: AsyncSession) -> UnmergeResult:
        record = await session.get(MergeRecord, merge_id, with_for_update=True)
        if record is None:
            raise NotFound("no such merge", field=["merge"])
        if record.undone_at is not None:
            raise InvalidInput(
                "this merge was already undone", field=["merge"], code="UNMERGE_NOT_POSSIBLE"
            )
        await lock_profiles(session, {record.survivor_id, record.merged_id})
        survivor = await session.get(Customer, record.survivor_id, populate_existing=True)
        loser = await session.get(Customer, record.merged_id, populate_existing=True)
        assert survivor is not None and loser is not None
        if (
            survivor.status != "ACTIVE"
            or loser.status != "MERGED"
            or loser.merged_into_id != survivor.id
        ):
            raise InvalidInput(
                "the survivor has changed since (merged or erased): undo the later merge first",
                field=["merge"],
                code="UNMERGE_NOT_POSSIBLE",
            )
        now = utcnow()
        await _restore(session, record, survivor, loser)
        record.undone_at = now
        # Both profiles' data changed: RULE tags, stages and materialized segments follow.
        await mark(session, [survivor.id, loser.id], actor, now)
        await record_changes(
            session,
            [
                Change(
                    "customer.unmerged",
                    loser.id,
                    {
                        "mergeId": str(record.id),
                        "survivorId": str(survivor.id),
                        "restoredId": str(loser.id),
                    },
                )
            ],
        )
        return UnmergeResult(loser.id, survivor.id)

    return await transact(db, work)


async def _restore(
    session: AsyncSession, record: MergeRecord, survivor: Customer, loser: Customer
) -> None:
    snap = record.snapshot
    for table in MOVED_TABLES:
        ids = snap.get(table.key)  # absent from snapshots written before the table was moved
        if ids:
            model = table.model
            cleared = {table.merge_column: None} if table.merge_column else {}
            await session.execute(
                update(model)
                .where(model.id.in_(ids), model.customer_id == survivor.id)
                .values(customer_id=loser.id, **cleared)
            )
    tags = snap["tags"]
    if tags["moved"]:
        await session.execute(
            update(TagAssignment)
            .where(TagAssignment.id.in_(tags["moved"]), TagAssignment.customer_id == survivor.id)
            .values(customer_id=loser.id)
        )
    if tags["dropped"]:
        await session.execute(
            insert(TagAssignment),
            [{**from_json(TagAssignment, row), "customer_id": loser.id} for row in tags["dropped"]],
        )
    winners = {row["tag_id"]: row for row in tags["dropped"]}
    for old in tags["replaced"]:
        current = await session.scalar(
            select(TagAssignment).where(
                TagAssignment.customer_id == survivor.id,
                TagAssignment.tag_id == uuid.UUID(old["tag_id"]),
            )
        )
        won = winners[old["tag_id"]]
        if current is not None and current.assigned_at.isoformat() == won["assigned_at"]:
            for name, value in from_json(TagAssignment, old).items():
                setattr(current, name, value)
    if snap["memberships"]:
        await session.execute(
            insert(SegmentMembership),
            [
                {
                    "segment_id": uuid.UUID(s),
                    "customer_id": loser.id,
                    "entered_at": datetime.fromisoformat(t),
                }
                for s, t in snap["memberships"]
            ],
        )
    after = from_json(Customer, snap["survivor_after"])
    before = from_json(Customer, snap["survivor_before"])
    for name in SURVIVOR_COLUMNS:
        if getattr(survivor, name) == after[name]:
            setattr(survivor, name, before[name])
    survivor.version += 1
    survivor.updated_at = utcnow()
    for name, value in from_json(Customer, snap["merged"]).items():
        setattr(loser, name, value)
    loser.status, loser.merged_into_id = "ACTIVE", None
    loser.version += 1
    await session.flush()
    await metrics.recompute(session, [survivor.id, loser.id])  # their orders and events moved
    await channels.rebuild(session, [survivor.id, loser.id])
