"""Counted slots: how many of something (open sockets, running operations) one owner holds.

A slot is a member of its group (e.g. "the sockets of key K"); `acquire` takes one unless the
group already holds `cap`. With Redis the groups are shared by every worker: each is a sorted
set whose members score their lease's expiry, taken and counted by one atomic Lua script timed
by the Redis server's clock. A worker refreshes the leases of the slots it holds (`refresh`) well
within the lease, so the slots of a worker killed without releasing them lapse by themselves
after `lease_seconds`. Without Redis, or while it is unreachable, each process counts its own:
losing Redis must never stop the API, the caps then hold per process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("c360.slots")

LEASE_SECONDS = 30.0
RETRY_REDIS_AFTER_SECONDS = 5.0

# KEYS[1] the group; ARGV cap, lease in ms, member. Returns 1 when the member holds a slot.
ACQUIRE = """
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then
  return 1
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""

# KEYS the groups; ARGV[1] the lease in ms, ARGV[1 + i] the member held in KEYS[i].
REFRESH = """
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
local lease = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, 'XX', now + lease, ARGV[i + 1])
  redis.call('PEXPIRE', key, lease)
end
return #KEYS
"""


class Slots:
    """Slots shared through Redis when there is one, else (or while it is down) per process."""

    def __init__(
        self, redis: Redis | None, namespace: str, lease_seconds: float = LEASE_SECONDS
    ) -> None:
        self._redis = redis
        self._acquire = redis.register_script(ACQUIRE) if redis is not None else None
        self._refresh = redis.register_script(REFRESH) if redis is not None else None
        self.namespace = namespace
        self.lease_ms = int(lease_seconds * 1000)
        self._local: dict[str, set[str]] = {}
        self._redis_down_until = 0.0

    def _key(self, group: str) -> str:
        return f"{self.namespace}:{group}"

    def _use_redis(self) -> bool:
        return self._redis is not None and time.monotonic() >= self._redis_down_until

    def _redis_failed(self, error: Exception) -> None:
        log.warning("slots: Redis unreachable, counting per process: %s", error)
        self._redis_down_until = time.monotonic() + RETRY_REDIS_AFTER_SECONDS

    async def acquire(self, group: str, member: str, cap: int) -> bool:
        """Whether `member` now holds a slot of `group` (false: the group holds `cap`)."""
        if self._acquire is not None and self._use_redis():
            try:
                taken = await self._acquire(
                    keys=[self._key(group)], args=[cap, self.lease_ms, member]
                )
                return bool(int(taken))
            except (RedisError, OSError) as error:
                self._redis_failed(error)
        held = self._local.setdefault(group, set())
        if member not in held and len(held) >= cap:
            return False
        held.add(member)
        return True

    async def release(self, group: str, member: str) -> None:
        held = self._local.get(group)
        if held is not None:
            held.discard(member)
            if not held:
                del self._local[group]
        if self._redis is not None and self._use_redis():
            try:
                await self._redis.zrem(self._key(group), member)
            except (RedisError, OSError) as error:  # its lease lapses by itself
                self._redis_failed(error)

    async def refresh(self, held: Iterable[tuple[str, str]]) -> None:
        """Extend the leases of these (group, member) slots; call it every few seconds."""
        pairs = list(held)
        if not pairs or self._refresh is None or not self._use_redis():
            return
        try:
            await self._refresh(
                keys=[self._key(group) for group, _ in pairs],
                args=[self.lease_ms, *(member for _, member in pairs)],
            )
        except (RedisError, OSError) as error:
            self._redis_failed(error)
