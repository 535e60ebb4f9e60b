"""store.slots: capped groups of slots, in Redis across processes (PostgreSQL runs, which have
Redis) or in process (SQLite runs). Two `Slots` stand for two workers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from service.settings import Settings
from store.slots import Slots


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis | None]:
    if settings.redis_url is None:
        yield None
        return
    client = Redis.from_url(settings.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def namespace() -> str:
    return f"c360:test-slots:{uuid.uuid4().hex}"


async def test_a_group_holds_at_most_its_cap_and_a_release_frees_a_slot(
    redis: Redis | None, namespace: str
) -> None:
    slots = Slots(redis, namespace)
    assert [await slots.acquire("g", m, 2) for m in ("a", "b", "c")] == [True, True, False]
    assert await slots.acquire("g", "a", 2)  # a holder asking again still holds its slot
    assert await slots.acquire("other", "c", 2)  # groups are counted apart
    await slots.release("g", "b")
    assert await slots.acquire("g", "c", 2)
    assert not await slots.acquire("g", "d", 2)


async def test_with_redis_the_cap_holds_across_workers_and_a_dead_workers_slots_lapse(
    redis: Redis | None, namespace: str
) -> None:
    if redis is None:  # without Redis each process counts its own: nothing is shared
        one, other = Slots(None, namespace), Slots(None, namespace)
        assert await one.acquire("g", "a", 1)
        assert await other.acquire("g", "b", 1)
        return
    alive = Slots(redis, namespace, lease_seconds=0.3)
    dying = Slots(redis, namespace, lease_seconds=0.3)
    assert await dying.acquire("g", "dead", 2)
    assert await alive.acquire("g", "live", 2)
    assert not await alive.acquire("g", "more", 2)
    for _ in range(4):  # `alive` refreshes its slot; `dying` was killed and never does
        await asyncio.sleep(0.15)
        await alive.refresh([("g", "live")])
    assert await alive.acquire("g", "more", 2)  # the dead worker's slot lapsed, not `live`
    assert not await alive.acquire("g", "yet more", 2)
