"""Merging two profiles into one, and undoing it.

A merge moves everything the merged-away profile holds (identities, tags, events, orders, stage
history) to the survivor, applies field survivorship, marks the loser MERGED with
`merged_into_id`, and writes a merge record whose snapshot is enough to undo it: `unmerge`
gives the merged profile back its rows as they were at the merge, while whatever arrived
later stays with the survivor. Both rebuild the two profiles' metrics (their orders and events
moved); a manual merge and an unmerge then mark both profiles dirty, so that RULE tags, stages
and materialized segments follow through the derived-state worker (domain.derived; a stage a
rule moved after the merge is not moved back by the unmerge: the rules decide from the
restored data).

Callers hold row locks on both profiles (`lock_profiles`) before calling `merge_into`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

import domain.activity.channels as channels
import domain.activity.metrics as metrics
from domain.changes import Change, record_changes
from domain.derived.batches import transact
from domain.derived.marks import mark
from domain.errors import InvalidInput, NotFound
from domain.identity.resolution import ProfileState, violation
from domain.identity.survivorship import load_survivorship
from domain.identity.traits import COLUMNS, ProfileValues, Survivorship
from domain.identity.types import load_identity_types
from domain.profile import MergeView, resolve_live_id
from store.db import Database
from store.models import (
    Customer,
    Event,
    EventRollup,
    Identity,
    MergeRecord,
    Order,
    SegmentMembership,
    StageTransition,
    TagAssignment,
)
from store.sqlfuncs import pair_in
from store.types import UTCDateTime, utcnow

# Survivor columns a merge may change, restored on unmerge if nothing changed them since.
SURVIVOR_COLUMNS = (
    *COLUMNS,
    "attributes",
    "field_times",
    "field_sources",
    "email",
    "phone",
    "first_seen_at",
    "last_seen_at",
)
TAG_COLUMNS = ("tag_id", "value", "source", "confidence", "actor", "assigned_at", "expires_at")


def _to_json(model: Any, obj: Any, columns: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in columns:
        value = getattr(obj, name)
        out[name] = (
            value.isoformat()
            if isinstance(value, date | datetime)
            else (str(value) if isinstance(value, uuid.UUID) else value)
        )
    return out


def _from_json(model: Any, data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in data.items():
        column_type = model.__table__.c[name].type
        if value is not None and isinstance(column_type, UTCDateTime):
            value = datetime.fromisoformat(value)
        elif value is not None and isinstance(column_type, Date):
            value = date.fromisoformat(value)
        elif value is not None and name.endswith("_id") and isinstance(value, str):
            value = uuid.UUID(value)
        out[name] = value
    return out


CUSTOMER_COLUMNS = tuple(c.name for c in Customer.__table__.columns if c.name != "id")


async def lock_profiles(session: AsyncSession, ids: set[uuid.UUID]) -> None:
    """Row locks in id order, so two writers never wait on each other in a cycle (PostgreSQL;
    on SQLite the write transaction already excludes every other writer)."""
    if ids:
        await session.execute(
            select(Customer.id).where(Customer.id.in_(ids)).order_by(Customer.id).with_for_update()
        )


def _values(customer: Customer) -> ProfileValues:
    return ProfileValues(
        fields={column: getattr(customer, column) for column in COLUMNS},
        attributes=dict(customer.attributes or {}),
        times=dict(customer.field_times or {}),
        sources=dict(customer.field_sources or {}),
    )


async def _move(
    session: AsyncSession, model: Any, loser_id: uuid.UUID, survivor_id: uuid.UUID, **extra: Any
) -> list[int]:
    """Move the loser's rows of `model` to the survivor; the ids moved, for the snapshot."""
    moved = await session.scalars(
        update(model)
        .where(model.customer_id == loser_id)
        .values(customer_id=survivor_id, **extra)
        .returning(model.id)
    )
    return list(moved.all())


async def merge_into(
    session: AsyncSession,
    survivor_id: uuid.UUID,
    loser_id: uuid.UUID,
    reason: str,
    actor: str | None,
    *,
    via: str = "manual",
    linked_by: Sequence[tuple[str, str]] = (),
    policy: Survivorship | None = None,
) -> MergeView:
    """Merge `loser_id` into `survivor_id`. `via` says what decided it (identify, manual,
    duplicate); `linked_by` names the (type, value) identifiers that joined the two, recorded
    as identity ids so that the record holds no identity value. Field values survive by the
    survivorship rules (`policy`, read from the database when not given)."""
    survivor = await session.get(Customer, survivor_id, populate_existing=True)
    loser = await session.get(Customer, loser_id, populate_existing=True)
    assert survivor is not None and loser is not None
    now = utcnow()
    merge_id = uuid.uuid4()
    links = await _identities_named(session, linked_by)
    session.add(
        MergeRecord(
            id=merge_id,
            survivor_id=survivor_id,
            merged_id=loser_id,
            reason=reason,
            actor=actor,
            merged_at=now,
            snapshot={},
            via=via,
            linked_by=[i for i, _ in links],
        )
    )
    await session.flush()
    snapshot: dict[str, Any] = {
        "merged": _to_json(Customer, loser, CUSTOMER_COLUMNS),
        "survivor_before": _to_json(Customer, survivor, SURVIVOR_COLUMNS),
        "identities": await _move(session, Identity, loser_id, survivor_id),
        "events": await _move(session, Event, loser_id, survivor_id),
        "rollups": await _move(session, EventRollup, loser_id, survivor_id),
        "orders": await _move(session, Order, loser_id, survivor_id),
        "transitions": await _move(
            session, StageTransition, loser_id, survivor_id, merge_id=merge_id
        ),
        "tags": await _merge_tags(session, survivor_id, loser_id),
    }
    left = await session.execute(
        delete(SegmentMembership)
        .where(SegmentMembership.customer_id == loser_id)
        .returning(SegmentMembership.segment_id, SegmentMembership.entered_at)
    )
    snapshot["memberships"] = [[str(m.segment_id), m.entered_at.isoformat()] for m in left]

    values = _values(survivor)
    values.absorb(_values(loser), policy or await load_survivorship(session))
    for column in COLUMNS:
        setattr(survivor, column, values.fields.get(column))
    survivor.attributes = values.attributes
    survivor.field_times = values.times
    survivor.field_sources = values.sources
    survivor.email = survivor.email or loser.email
    survivor.phone = survivor.phone or loser.phone
    survivor.first_seen_at = min(
        (t for t in (survivor.first_seen_at, loser.first_seen_at) if t), default=None
    )
    survivor.last_seen_at = max(
        (t for t in (survivor.last_seen_at, loser.last_seen_at) if t), default=None
    )
    survivor.updated_at = now
    survivor.version += 1
    loser.status, loser.merged_into_id, loser.updated_at = "MERGED", survivor_id, now
    loser.version += 1
    await session.flush()
    snapshot["survivor_after"] = _to_json(Customer, survivor, SURVIVOR_COLUMNS)
    await session.execute(
        update(MergeRecord).where(MergeRecord.id == merge_id).values(snapshot=snapshot)
    )
    await metrics.recompute(session, [survivor_id, loser_id])  # their orders and events moved
    await channels.rebuild(session, [survivor_id, loser_id])
    await record_changes(
        session,
        [
            Change(
                "customer.merged",
                survivor_id,
                {
                    "mergeId": str(merge_id),
                    "survivorId": str(survivor_id),
                    "mergedId": str(loser_id),
                    "reason": reason,
                    "via": via,
                    "linkedBy": sorted({type_key for _, type_key in links}),  # types: no PII
                },
            )
        ],
    )
    return MergeView(
        merge_id, survivor_id, loser_id, reason, actor, now, None, via, [i for i, _ in links]
    )


async def _identities_named(
    session: AsyncSession, keys: Sequence[tuple[str, str]]
) -> list[tuple[int, str]]:
    """(id, type) of the identities with these (type, value) keys, in id order."""
    if not keys:
        return []
    rows = await session.execute(
        select(Identity.id, Identity.type)
        .where(pair_in(session, Identity.type, Identity.value, list(keys)))
        .order_by(Identity.id)
    )
    return [(i, t) for i, t in rows]


async def _merge_tags(
    session: AsyncSession, survivor_id: uuid.UUID, loser_id: uuid.UUID
) -> dict[str, Any]:
    """The survivor keeps the union of tags; where both carry a tag, the later assignment wins."""
    rows = (
        await session.scalars(
            select(TagAssignment).where(TagAssignment.customer_id.in_([survivor_id, loser_id]))
        )
    ).all()
    kept = {row.tag_id: row for row in rows if row.customer_id == survivor_id}
    moved, replaced, dropped = [], [], []
    for row in (r for r in rows if r.customer_id == loser_id):
        theirs = kept.get(row.tag_id)
        if theirs is None:
            moved.append(row.id)
            continue
        dropped.append(_to_json(TagAssignment, row, TAG_COLUMNS))
        if row.assigned_at > theirs.assigned_at:
            replaced.append(_to_json(TagAssignment, theirs, TAG_COLUMNS))
            for name in TAG_COLUMNS[1:]:
                setattr(theirs, name, getattr(row, name))
        await session.delete(row)
    await session.flush()
    if moved:
        await session.execute(
            update(TagAssignment).where(TagAssignment.id.in_(moved)).values(customer_id=survivor_id)
        )
    return {"moved": moved, "replaced": replaced, "dropped": dropped}


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
        merged = await merge_into(
            session, live_survivor, live_merged, reason or f"{via} merge", actor, via=via
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
    moved = (
        (Identity, "identities"),
        (Event, "events"),
        (EventRollup, "rollups"),
        (Order, "orders"),
    )
    for model, key in moved:
        if snap.get(key):  # merges recorded before rollups existed have no "rollups"
            await session.execute(
                update(model)
                .where(model.id.in_(snap[key]), model.customer_id == survivor.id)
                .values(customer_id=loser.id)
            )
    if snap["transitions"]:
        await session.execute(
            update(StageTransition)
            .where(
                StageTransition.id.in_(snap["transitions"]),
                StageTransition.customer_id == survivor.id,
            )
            .values(customer_id=loser.id, merge_id=None)
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
            [
                {**_from_json(TagAssignment, row), "customer_id": loser.id}
                for row in tags["dropped"]
            ],
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
            for name, value in _from_json(TagAssignment, old).items():
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
    after = _from_json(Customer, snap["survivor_after"])
    before = _from_json(Customer, snap["survivor_before"])
    for name in SURVIVOR_COLUMNS:
        if getattr(survivor, name) == after[name]:
            setattr(survivor, name, before[name])
    survivor.version += 1
    survivor.updated_at = utcnow()
    for name, value in _from_json(Customer, snap["merged"]).items():
        setattr(loser, name, value)
    loser.status, loser.merged_into_id = "ACTIVE", None
    loser.version += 1
    await session.flush()
    await metrics.recompute(session, [survivor.id, loser.id])  # their orders and events moved
    await channels.rebuild(session, [survivor.id, loser.id])
