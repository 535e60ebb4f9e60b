"""Token buckets: how much each API key may spend per minute.

A bucket holds up to `capacity` tokens and refills at capacity/60 per second; a request takes
its cost from it or is told how long to wait. With Redis the buckets are shared by every worker
(one atomic Lua script per request, timed by the Redis server's clock so workers' clocks do not
matter); without it, or while Redis is unreachable, each process keeps its own. Losing Redis
must never stop the API: the limit then holds per process instead of across them.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("c360.ratelimit")

# KEYS[1] bucket; ARGV capacity, refill per millisecond, cost. Returns the milliseconds to wait
# (0: taken). Floats do not survive the trip back from Lua, hence the rounding up to an integer.
TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
else
  wait = math.ceil((cost - tokens) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate) + 1000)
return wait
"""
RETRY_REDIS_AFTER_SECONDS = 5.0


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class LocalBuckets:
    """Buckets in this process's memory."""

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens per second
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, cost: int) -> float:
        """Seconds to wait before `cost` can be spent; 0 when it was spent now."""
        now = time.monotonic()
        bucket = self._buckets.setdefault(key, _Bucket(self.capacity, now))
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return 0.0
        return (cost - bucket.tokens) / self.rate


class RateLimiter:
    """Shared buckets in Redis when there is one, falling back to this process's own."""

    def __init__(self, redis: Redis | None, per_minute: int, namespace: str = "c360") -> None:
        self._script = redis.register_script(TAKE) if redis is not None else None
        self.local = LocalBuckets(per_minute)
        self.namespace = namespace
        self._redis_down_until = 0.0

    async def take(self, key: str, cost: int) -> int:
        """Whole seconds to wait (for Retry-After) before `cost` can be spent; 0: spent now."""
        if self._script is not None and time.monotonic() >= self._redis_down_until:
            try:
                wait_ms = await self._script(
                    keys=[f"{self.namespace}:rate:{key}"],
                    args=[self.local.capacity, self.local.rate / 1000.0, cost],
                )
                return math.ceil(int(wait_ms) / 1000)
            except (RedisError, OSError) as error:
                # Try Redis again only after a pause, so an outage costs one failed attempt
                # per few seconds rather than one per request.
                log.warning("rate limits: Redis unreachable, per-process buckets: %s", error)
                self._redis_down_until = time.monotonic() + RETRY_REDIS_AFTER_SECONDS
        return math.ceil(self.local.take(key, cost))
