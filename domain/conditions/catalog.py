"""What a condition may name: tags, lifecycle stages, identity types and segments, read once
per validation (the catalog), and which segments and tags a stored condition refers to."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Exists, exists, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import EventRollup, IdentityType, LifecycleStage, Segment, TagDefinition


@dataclass(frozen=True, slots=True)
class TagSpec:
    id: uuid.UUID
    value_type: str
    allowed_values: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class SegmentSpec:
    id: uuid.UUID
    condition: Any
    materialized: bool


@dataclass(frozen=True, slots=True)
class Catalog:
    tags: Mapping[str, TagSpec] = field(default_factory=dict)
    stages: frozenset[str] = frozenset()
    identity_types: frozenset[str] = frozenset()
    segments: Mapping[str, SegmentSpec] = field(default_factory=dict)
    # Retired months of events left rollups (domain.activity.retention): all-time event counts
    # add them in.
    events_rolled_up: bool = False


async def segment_specs(session: AsyncSession) -> dict[str, SegmentSpec]:
    """Every segment's spec by key (all a member list needs of the catalog first)."""
    rows = await session.execute(
        select(Segment.key, Segment.id, Segment.condition, Segment.materialized)
    )
    return {row.key: SegmentSpec(row.id, row.condition, row.materialized) for row in rows}


async def load_catalog(
    session: AsyncSession, segments: Mapping[str, SegmentSpec] | None = None
) -> Catalog:
    """Everything a condition may name, and whether events were rolled up, in four small
    statements (three when the caller already read the segments)."""
    tags = await session.execute(
        select(
            TagDefinition.key,
            TagDefinition.id,
            TagDefinition.value_type,
            TagDefinition.allowed_values,
        )
    )
    if segments is None:
        segments = await segment_specs(session)
    # One row at least, whatever the stages: the flag rides along with them.
    flag = select(_rolled_up().label("rolled_up")).subquery()
    stages = (
        await session.execute(
            select(flag.c.rolled_up, LifecycleStage.key)
            .select_from(flag)
            .outerjoin(LifecycleStage, true())
        )
    ).all()
    return Catalog(
        tags={
            row.key: TagSpec(row.id, row.value_type, tuple(row.allowed_values or ()) or None)
            for row in tags
        },
        stages=frozenset(row.key for row in stages if row.key is not None),
        identity_types=frozenset((await session.scalars(select(IdentityType.key))).all()),
        segments=segments,
        events_rolled_up=bool(stages[0].rolled_up),
    )


def _rolled_up() -> Exists:
    return exists().select_from(EventRollup)


async def events_rolled_up(session: AsyncSession) -> bool:
    """Whether retention has rolled up any month of events (Catalog.events_rolled_up)."""
    return bool(await session.scalar(select(_rolled_up())))


def referenced_segments(condition: Any) -> set[str]:
    """The keys of the segments a stored condition refers to (tolerant of malformed trees)."""
    found = set()
    for kind, payload in leaves(condition):
        if kind == "segment" and isinstance(payload.get("key"), str):
            found.add(payload["key"])
    return found


def referenced_tags(condition: Any) -> set[str]:
    """The keys of the tags a stored condition names directly (tolerant of malformed trees)."""
    found = set()
    for kind, payload in leaves(condition):
        if kind == "tag" and isinstance(payload.get("key"), str):
            found.add(payload["key"])
    return found


def leaves(condition: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each leaf of a stored condition as (kind, payload), tolerant of malformed trees."""
    stack = [condition]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        for kind, payload in node.items():
            if kind in ("and", "or") and isinstance(payload, list):
                stack.extend(payload)
            elif kind == "not":
                stack.append(payload)
            elif isinstance(payload, dict):
                yield kind, payload
