"""Token buckets: how much each API key may spend per minute.

A bucket holds up to `capacity` tokens (the key's budget per minute) and refills at capacity/60
per second. A request is admitted while the bucket holds what it may cost (`need`, its static
cost, api.limits); what it did cost is known only after it ran, and is owed (`settle`) until the
key's next request in this process pays it with its own admission. So each request is one round
trip, never two: with Redis the buckets are shared by every worker (one atomic Lua script per
request, timed by the Redis server's clock so workers' clocks do not matter); without it, or
while Redis is unreachable, each process keeps its own. A bucket may go below zero (a request
cost more than was left): the key then waits until it refills. Losing Redis must never stop the
API: the limit then holds per process instead of across them.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("c360.ratelimit")

# KEYS[1] bucket; ARGV capacity, refill per millisecond, need, owed. Pays what is owed, then
# returns the milliseconds to wait until the bucket holds `need` (0: admitted now). Floats do
# not survive the trip back from Lua, hence the rounding up to an integer. The bucket expires
# once it would have refilled (a bucket in debt lives until its debt is paid back).
TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local need = tonumber(ARGV[3])
local owed = tonumber(ARGV[4])
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate) - owed
local wait = 0
if tokens < need then
  wait = math.ceil((need - tokens) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate) + 1000)
return wait
"""
RETRY_REDIS_AFTER_SECONDS = 5.0


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class LocalBuckets:
    """Buckets in this process's memory."""

    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, capacity: int, need: int, owed: int) -> float:
        """Pay `owed`; seconds to wait until the bucket holds `need` (0: admitted now)."""
        now = time.monotonic()
        rate = capacity / 60.0  # tokens per second
        bucket = self._buckets.setdefault(key, _Bucket(float(capacity), now))
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.at) * rate) - owed
        bucket.at = now
        return 0.0 if bucket.tokens >= need else (need - bucket.tokens) / rate


class RateLimiter:
    """Shared buckets in Redis when there is one, falling back to this process's own."""

    def __init__(self, redis: Redis | None, namespace: str = "c360") -> None:
        self._script = redis.register_script(TAKE) if redis is not None else None
        self.local = LocalBuckets()
        self.namespace = namespace
        self._redis_down_until = 0.0
        self._owed: dict[str, int] = {}

    def settle(self, key: str, cost: int) -> None:
        """What a request of `key` did cost: paid with the key's next admission here."""
        self._owed[key] = self._owed.get(key, 0) + cost

    async def admit(self, key: str, capacity: int, need: int) -> int:
        """Whole seconds to wait (for Retry-After) before a request that may cost `need` is
        admitted; 0: admitted now. Pays what the key owes from its requests before."""
        need = min(need, capacity)  # a request as large as the whole budget is admitted full
        owed = self._owed.pop(key, 0)
        if self._script is not None and time.monotonic() >= self._redis_down_until:
            try:
                wait_ms = await self._script(
                    keys=[f"{self.namespace}:rate:{key}"],
                    args=[capacity, capacity / 60_000.0, need, owed],
                )
                return math.ceil(int(wait_ms) / 1000)
            except (RedisError, OSError) as error:
                # Try Redis again only after a pause, so an outage costs one failed attempt
                # per few seconds rather than one per request.
                log.warning("rate limits: Redis unreachable, per-process buckets: %s", error)
                self._redis_down_until = time.monotonic() + RETRY_REDIS_AFTER_SECONDS
        return math.ceil(self.local.take(key, capacity, need, owed))
