"""store.ratelimit's buckets: admission on what a request may cost, payment of what the
requests before it did cost, in one call (one Redis round trip), on Redis and in process."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from service.settings import Settings
from store.ratelimit import RateLimiter


@pytest.fixture
async def limiter(settings: Settings) -> AsyncIterator[RateLimiter]:
    """On Redis with the PostgreSQL backend, in process on SQLite."""
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    namespace = f"c360test{uuid.uuid4().hex[:8]}"
    yield RateLimiter(redis, namespace)
    if redis is not None:
        await redis.delete(*[key async for key in redis.scan_iter(f"{namespace}:*")] or ["-"])
        await redis.aclose()


async def test_admission_pays_what_is_owed_and_waits_for_what_it_needs(
    limiter: RateLimiter,
) -> None:
    assert await limiter.admit("k", 60, 50) == 0  # 60 held
    limiter.settle("k", 30)
    assert await limiter.admit("k", 60, 20) == 0  # 30 held after paying 30
    limiter.settle("k", 30)
    wait = await limiter.admit("k", 60, 20)  # 0 held after paying 30: 20 s at 1 a second
    assert 19 <= wait <= 21
    assert await limiter.admit("other", 60, 60) == 0, "each key has its own bucket"


async def test_a_request_as_large_as_the_budget_is_admitted_on_a_full_bucket(
    limiter: RateLimiter,
) -> None:
    assert await limiter.admit("k", 60, 10_000) == 0
    limiter.settle("k", 10_000)
    assert await limiter.admit("k", 60, 1) > 60, "the debt is paid back at 1 a second"


async def test_a_bucket_in_debt_outlives_a_minute_on_redis(
    limiter: RateLimiter, settings: Settings
) -> None:
    if not settings.redis_url:
        pytest.skip("Redis only")
    limiter.settle("k", 600)
    assert await limiter.admit("k", 60, 1) > 0
    redis = Redis.from_url(settings.redis_url)
    try:
        ttl = await redis.pttl(f"{limiter.namespace}:rate:k")
    finally:
        await redis.aclose()
    assert ttl > 500_000  # 540 in debt at 1 a second: refilled in 600 s, not 60
