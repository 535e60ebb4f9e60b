"""Live feeds filtered by segment: the members' events at the time, and the segment's own
entries and exits."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from domain.delivery.dispatch import ChangeRecord
from domain.delivery.feed import FeedFilter, watch
from domain.errors import NotFound
from domain.segments.definitions import SegmentDraft, define_segment
from store.db import Database
from store.pubsub import InProcessBroker
from store.types import utcnow
from tests.builders import make_customer
from tests.servers import wait_until

HANGZHOU = {"attribute": {"field": "city", "op": "EQ", "value": "Hangzhou"}}


def event(kind: str, customer: uuid.UUID, **data: str) -> str:
    record = ChangeRecord(1, uuid.uuid4(), kind, customer, utcnow(), dict(data))
    return record.to_json().decode()


async def test_a_segment_feed_carries_its_members_events_and_its_exits(db: Database) -> None:
    segment = await define_segment(db, SegmentDraft("hangzhou", "Hangzhou", None, HANGZHOU))
    member = await make_customer(db, city="Hangzhou")
    outsider = await make_customer(db, city="Shanghai")
    broker = InProcessBroker()
    feed: AsyncIterator[ChangeRecord] = watch(
        db, broker, FeedFilter.of(None, None, segment.id, sees_pii=True)
    )
    first = asyncio.create_task(anext(feed))
    await wait_until(lambda: broker.local_subscribers == 1, what="the feed to subscribe")
    await broker.publish(
        [
            event("customer.updated", outsider, customerId=str(outsider)),
            event("customer.updated", member, customerId=str(member)),
            event("segment.exited", outsider, segmentId=str(segment.id)),
        ]
    )
    got = [await first, await anext(feed)]
    await feed.aclose()  # type: ignore[attr-defined]
    assert [(e.kind, e.customer_id) for e in got] == [
        ("customer.updated", member),
        ("segment.exited", outsider),
    ]


async def test_a_feed_of_an_unknown_segment_is_refused(db: Database) -> None:
    feed = watch(db, InProcessBroker(), FeedFilter.of(None, None, uuid.uuid4(), sees_pii=True))
    with pytest.raises(NotFound) as refused:
        await anext(feed)
    assert refused.value.field == ("segment",)
