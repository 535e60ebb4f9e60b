"""Per-request DataLoaders: every nested list of a profile is read for the whole page at once.

Each batch function opens its own session (inside the domain call): an AsyncSession is not safe
for the concurrent tasks strawberry runs while resolving one page.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from datetime import datetime
from functools import cached_property
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader

from domain import profile, profile_bundle, tags
from domain.access import privacy
from domain.activity import channels as activity_channels
from domain.activity import ingest as activity
from domain.activity import metrics
from domain.derived import marks as derived
from domain.history import HistoryQuery
from domain.identity import survivorship
from domain.lifecycle import model as lifecycle
from domain.pagination import Page
from domain.segments import definitions as segments
from domain.segments import history as segment_history
from domain.segments.definitions import SegmentRecord
from domain.segments.history import SegmentHistoryRecord
from store.db import Database
from store.types import utcnow

# Customer fields whose lists domain.profile_bundle reads, and the part each needs.
BUNDLED = {
    "identities": "identities",
    "tags": "tags",
    "stageHistory": "history",
    "metrics": "metrics",
}

K = TypeVar("K")
V = TypeVar("V")


def _grouped(
    fetch: Callable[[Database, Sequence[K]], Awaitable[Mapping[K, list[V]]]], db: Database
) -> DataLoader[K, list[V]]:
    async def load(keys: list[K]) -> list[list[V]]:
        found = await fetch(db, keys)
        return [found.get(key, []) for key in keys]

    return DataLoader(load_fn=load)


def _single(
    fetch: Callable[[Database, Sequence[K]], Awaitable[Mapping[K, V]]], db: Database
) -> DataLoader[K, V | None]:
    async def load(keys: list[K]) -> list[V | None]:
        found = await fetch(db, keys)
        return [found.get(key) for key in keys]

    return DataLoader(load_fn=load)


def _paged(
    fetch: Callable[[Database, Sequence[K]], Awaitable[list[V]]], db: Database
) -> DataLoader[K, V]:
    async def load(keys: list[K]) -> list[V]:
        return await fetch(db, keys)

    return DataLoader(load_fn=load)


class Loaders:
    """Created lazily, one set per request, so their caches never outlive a request."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @cached_property
    def identities(self) -> DataLoader[uuid.UUID, list[profile.IdentityRecord]]:
        return _grouped(profile.identities_of, self.db)

    @cached_property
    def identities_by_id(self) -> DataLoader[int, profile.IdentityRecord | None]:
        return _single(profile.identities_by_id, self.db)

    @cached_property
    def field_sources(self) -> DataLoader[uuid.UUID, list[survivorship.FieldProvenance]]:
        return _grouped(survivorship.field_provenance, self.db)

    @cached_property
    def merges(self) -> DataLoader[uuid.UUID, list[profile.MergeView]]:
        return _grouped(profile.merges_into, self.db)

    @cached_property
    def tag_assignments(self) -> DataLoader[uuid.UUID, list[tags.AssignmentRecord]]:
        return _grouped(tags.assignments_of, self.db)

    @cached_property
    def tag_definitions(self) -> DataLoader[uuid.UUID, tags.TagDefinitionRecord | None]:
        return _single(tags.definitions_by_id, self.db)

    @cached_property
    def tag_customer_counts(self) -> DataLoader[uuid.UUID, int]:
        async def load(keys: list[uuid.UUID]) -> list[int]:
            counts = await tags.customer_counts(self.db, keys)
            return [counts.get(key, 0) for key in keys]

        return DataLoader(load_fn=load)

    @cached_property
    def tag_history(self) -> DataLoader[HistoryQuery, Page[tags.TagHistoryRecord]]:
        return _paged(tags.history_pages, self.db)

    @cached_property
    def merge_records(self) -> DataLoader[uuid.UUID, profile.MergeView | None]:
        return _single(profile.merges_by_id, self.db)

    @cached_property
    def stage_history(self) -> DataLoader[uuid.UUID, list[lifecycle.TransitionRecord]]:
        return _grouped(lifecycle.history_of, self.db)

    @cached_property
    def metrics(self) -> DataLoader[uuid.UUID, metrics.MetricsRecord | None]:
        return _single(metrics.metrics_of, self.db)

    @cached_property
    def derived_behind(self) -> DataLoader[uuid.UUID, datetime | None]:
        return _single(derived.behind_since, self.db)

    @cached_property
    def segments(self) -> DataLoader[uuid.UUID, list[segments.SegmentRecord]]:
        return _grouped(segments.segments_of, self.db)

    @cached_property
    def channels(self) -> DataLoader[uuid.UUID, list[activity_channels.ChannelRecord]]:
        return _grouped(activity_channels.channels_of, self.db)

    @cached_property
    def events(self) -> DataLoader[HistoryQuery, Page[activity.EventRecord]]:
        return _paged(activity.event_pages, self.db)

    @cached_property
    def orders(self) -> DataLoader[HistoryQuery, Page[activity.OrderRecord]]:
        return _paged(activity.order_pages, self.db)

    @cached_property
    def segments_by_id(self) -> DataLoader[uuid.UUID, SegmentRecord | None]:
        return _single(segments.segments_by_id, self.db)

    @cached_property
    def segment_history(
        self,
    ) -> DataLoader[HistoryQuery, Page[SegmentHistoryRecord]]:
        """By segment: Segment.history."""
        return _paged(segment_history.segment_pages, self.db)

    @cached_property
    def customer_segment_history(
        self,
    ) -> DataLoader[HistoryQuery, Page[SegmentHistoryRecord]]:
        """By customer: Customer.segmentHistory."""
        return _paged(segment_history.customer_pages, self.db)

    @cached_property
    def segment_member_counts(self) -> DataLoader[uuid.UUID, int | None]:
        return _single(segments.member_counts, self.db)

    @cached_property
    def customers(self) -> DataLoader[uuid.UUID, profile.CustomerRecord | None]:
        return _single(profile.customers_by_id, self.db)

    async def prefetch(self, customer_ids: Sequence[uuid.UUID], fields: Collection[str]) -> None:
        """Prime the loaders with what `fields` (a profile's selected GraphQL fields) will read
        for a page of profiles, before graphql-core walks the page: the lists then come in
        one statement on PostgreSQL (domain.profile_bundle); elsewhere one statement per
        list, as the loaders would read them."""
        parts = {part for field, part in BUNDLED.items() if field in fields}
        loads: list[Awaitable[Any]] = []
        if parts and profile_bundle.supported(self.db):
            loads.append(self._bundled(customer_ids, parts))
        else:
            if "identities" in parts:
                loads.append(self.identities.load_many(customer_ids))
            if "tags" in parts:
                loads.append(self.tag_assignments.load_many(customer_ids))
            if "history" in parts:
                loads.append(self.stage_history.load_many(customer_ids))
            if "metrics" in parts:
                loads.append(self.metrics.load_many(customer_ids))
        if "stage" in fields or "stageHistory" in fields:
            loads.append(self.stages())
        if "segments" in fields:
            loads.append(self.segments.load_many(customer_ids))
        await asyncio.gather(*loads)
        if "tags" in parts:
            found = await self.tag_assignments.load_many(customer_ids)
            await self.tag_definitions.load_many(list({a.tag_id for each in found for a in each}))

    async def _bundled(self, customer_ids: Sequence[uuid.UUID], parts: set[str]) -> None:
        found = await profile_bundle.bundles_of(self.db, customer_ids, parts, utcnow())
        empty = profile_bundle.Bundle(identities=[], tags=[], history=[])
        bundles = {customer_id: found.get(customer_id, empty) for customer_id in customer_ids}
        if "identities" in parts:
            self.identities.prime_many({k: b.identities or [] for k, b in bundles.items()})
        if "tags" in parts:
            self.tag_assignments.prime_many({k: b.tags or [] for k, b in bundles.items()})
        if "history" in parts:
            self.stage_history.prime_many({k: b.history or [] for k, b in bundles.items()})
        if "metrics" in parts:
            self.metrics.prime_many({k: b.metrics for k, b in bundles.items()})

    @cached_property
    def _stages(self) -> DataLoader[None, dict[str, lifecycle.StageRecord]]:
        async def load(keys: list[None]) -> list[dict[str, lifecycle.StageRecord]]:
            stages = await lifecycle.get_stages(self.db)
            return [stages for _ in keys]

        return DataLoader(load_fn=load)

    async def stages(self) -> dict[str, lifecycle.StageRecord]:
        """The lifecycle stages by key, read once per request (many fields of a page show a
        stage)."""
        return await self._stages.load(None)

    @cached_property
    def _pii_identity_types(self) -> DataLoader[None, frozenset[str]]:
        async def load(keys: list[None]) -> list[frozenset[str]]:
            found = await privacy.pii_identity_types(self.db)
            return [found for _ in keys]

        return DataLoader(load_fn=load)

    async def pii_identity_types(self) -> frozenset[str]:
        """Masking asks for every profile of a page: read once per request."""
        return await self._pii_identity_types.load(None)

    @cached_property
    def _pii_policy(self) -> DataLoader[None, privacy.PiiPolicy]:
        async def load(keys: list[None]) -> list[privacy.PiiPolicy]:
            found = await privacy.load_policy(self.db)
            return [found for _ in keys]

        return DataLoader(load_fn=load)

    async def pii_policy(self) -> privacy.PiiPolicy:
        """What a partner may read and ask (domain.access.privacy): read once per request."""
        return await self._pii_policy.load(None)
