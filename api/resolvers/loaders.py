"""Per-request DataLoaders: every nested list of a profile is read for the whole page at once.

Each batch function opens its own session (inside the domain call): an AsyncSession is not safe
for the concurrent tasks strawberry runs while resolving one page.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import cached_property
from typing import TypeVar

from strawberry.dataloader import DataLoader

from domain import activity, lifecycle, metrics, privacy, profile, segments, tags
from domain.history import HistoryQuery
from domain.pagination import Page
from store.db import Database

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
    def segments(self) -> DataLoader[uuid.UUID, list[segments.SegmentRecord]]:
        return _grouped(segments.segments_of, self.db)

    @cached_property
    def events(self) -> DataLoader[HistoryQuery, Page[activity.EventRecord]]:
        return _paged(activity.event_pages, self.db)

    @cached_property
    def orders(self) -> DataLoader[HistoryQuery, Page[activity.OrderRecord]]:
        return _paged(activity.order_pages, self.db)

    @cached_property
    def segment_member_counts(self) -> DataLoader[uuid.UUID, int | None]:
        return _single(segments.member_counts, self.db)

    @cached_property
    def customers(self) -> DataLoader[uuid.UUID, profile.CustomerRecord | None]:
        return _single(profile.customers_by_id, self.db)

    @cached_property
    def _model(self) -> DataLoader[None, lifecycle.LifecycleModelRecord]:
        async def load(keys: list[None]) -> list[lifecycle.LifecycleModelRecord]:
            model = await lifecycle.get_model(self.db)
            return [model for _ in keys]

        return DataLoader(load_fn=load)

    async def lifecycle_model(self) -> lifecycle.LifecycleModelRecord:
        """The model is small and read by many fields of a page: once per request."""
        return await self._model.load(None)

    @cached_property
    def _pii_identity_types(self) -> DataLoader[None, frozenset[str]]:
        async def load(keys: list[None]) -> list[frozenset[str]]:
            found = await privacy.pii_identity_types(self.db)
            return [found for _ in keys]

        return DataLoader(load_fn=load)

    async def pii_identity_types(self) -> frozenset[str]:
        """Masking asks for every profile of a page: read once per request."""
        return await self._pii_identity_types.load(None)
