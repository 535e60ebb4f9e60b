"""Live change feeds: the events a subscriber of `changes(kinds, customer, segment)` sees.

A feed is the broker's stream (`store.pubsub`) filtered here, in the process that holds the
subscriber, so one published event reaches every matching subscriber of every worker once.
Filters:

- kinds: any of these kinds (all when not given);
- customer: events of that profile, including the merge that absorbs it and the unmerge that
  restores it;
- segment: events of the segment's members at the time (evaluated per event with the
  segment's own SQL, `domain.segments.definitions.members_filter`), and its segment.entered /
  segment.exited events, the exit included.

Payloads carry ids, not PII; a kind whose mere existence reveals PII (a birthday today) is
withheld from callers that may not see PII.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from sqlalchemy import select

from domain.conditions.sql import CustomerFilter
from domain.delivery.dispatch import ChangeRecord
from domain.delivery.webhooks import validate_kinds
from domain.errors import DomainError, Forbidden, NotFound
from domain.segments.definitions import members_filter
from store.db import Database
from store.models import Customer
from store.pubsub import Broker, SubscriberLagged

PII_KINDS = frozenset({"customer.birthday"})
CUSTOMER_KEYS = ("customerId", "survivorId", "mergedId", "restoredId")
# A segment's condition is compiled again this often: edits and time-relative conditions
# ("ordered within 30 days") are followed without compiling it for every event.
SEGMENT_RECOMPILE_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class FeedFilter:
    kinds: frozenset[str] | None = None
    customer_id: uuid.UUID | None = None
    segment_id: uuid.UUID | None = None
    sees_pii: bool = True

    @classmethod
    def of(
        cls,
        kinds: Sequence[str] | None,
        customer_id: uuid.UUID | None,
        segment_id: uuid.UUID | None,
        *,
        sees_pii: bool,
    ) -> FeedFilter:
        """Validated: unknown kinds are refused, and so are PII kinds for those without PII."""
        wanted = frozenset(validate_kinds(kinds)) if kinds is not None else None
        if not sees_pii and wanted and wanted & PII_KINDS:
            refused = ", ".join(sorted(wanted & PII_KINDS))
            raise Forbidden(f"your API key may not see {refused} events", field=["kinds"])
        return cls(wanted, customer_id, segment_id, sees_pii)

    def matches(self, event: ChangeRecord) -> bool:
        """Everything but segment membership, which needs the database (`_Members`)."""
        if self.kinds is not None and event.kind not in self.kinds:
            return False
        if not self.sees_pii and event.kind in PII_KINDS:
            return False
        return self.customer_id is None or _involves(event, self.customer_id)


def _involves(event: ChangeRecord, customer_id: uuid.UUID) -> bool:
    if event.customer_id == customer_id:
        return True
    return str(customer_id) in {event.data.get(key) for key in CUSTOMER_KEYS}


class _Members:
    """Whether an event belongs to a segment's feed."""

    def __init__(self, db: Database, segment_id: uuid.UUID) -> None:
        self._db = db
        self._segment_id = segment_id
        self._filter: CustomerFilter | None = None
        self._compiled_at = 0.0

    async def compile(self) -> None:
        try:
            self._filter = await members_filter(self._db, self._segment_id)
        except NotFound:
            raise NotFound("no such segment", field=["segment"]) from None
        self._compiled_at = time.monotonic()

    async def include(self, event: ChangeRecord) -> bool:
        if event.data.get("segmentId") == str(self._segment_id):
            return True
        if event.customer_id is None:
            return False
        if self._filter is None or time.monotonic() - self._compiled_at > SEGMENT_RECOMPILE_SECONDS:
            await self.compile()
        assert self._filter is not None
        member = self._filter.apply(select(Customer.id).where(Customer.id == event.customer_id))
        async with self._db.read() as session:
            return await session.scalar(member) is not None


async def watch(db: Database, broker: Broker, feed: FeedFilter) -> AsyncIterator[ChangeRecord]:
    """The matching events published from now on, until the caller stops iterating. A
    subscriber that falls too far behind is cut off with FEED_OVERFLOW rather than miss
    events silently; it may subscribe again."""
    members = _Members(db, feed.segment_id) if feed.segment_id else None
    if members is not None:
        await members.compile()  # an unknown segment is refused before anything is sent
    async with broker.subscribe() as subscription:
        try:
            async for message in subscription:
                event = ChangeRecord.from_json(message)
                if feed.matches(event) and (members is None or await members.include(event)):
                    yield event
        except SubscriberLagged as error:
            raise DomainError(str(error), code="FEED_OVERFLOW") from None
