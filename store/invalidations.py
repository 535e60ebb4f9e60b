"""Invalidation notices: "what you hold of X is stale", told to every process of a deployment.

A process that caches rows (domain.access.key_cache) listens here and publishes here when it
changes one. With Redis, notices go through one pub/sub channel, one listening connection per
process; without it, to this process's listeners alone (the embedded default is one process;
every app this process builds on the same database hears them).

A notice is the id of what changed, or None for "everything": a listener hears None whenever
notices may have been lost (its connection dropped, or came back), so it never keeps a stale
row because a notice went missing. `live()` says whether notices are being heard right now; a
cache must not trust what it holds while they are not. This module knows nothing of what the
ids mean.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import ClassVar, Protocol
from weakref import WeakSet

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.engine import make_url

from store.pubsub import hear_channel

log = logging.getLogger("c360.invalidations")

Listener = Callable[[str | None], None]
FIRST_WAIT_SECONDS = 1.0


class Invalidations(Protocol):
    def listen(self, listener: Listener) -> None:
        """`listener(id)` for every notice from now on; `listener(None)`: forget everything."""

    async def live(self) -> bool:
        """Whether notices are heard now (the caller's cache may be trusted)."""
        ...

    async def publish(self, item: str) -> None:
        """Tell every process (this one included) that `item` changed; never raises."""

    async def close(self) -> None: ...


class LocalInvalidations:
    """One process: a notice reaches this process's listeners of the channel at once."""

    # Every channel's feeds in this process, held weakly: a feed goes with the app it serves.
    _feeds: ClassVar[dict[str, WeakSet[LocalInvalidations]]] = {}

    def __init__(self, channel: str) -> None:
        self._listeners: list[Listener] = []
        self._feeds.setdefault(channel, WeakSet()).add(self)
        self._channel = channel

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def live(self) -> bool:
        return True

    async def publish(self, item: str) -> None:
        for feed in list(self._feeds.get(self._channel, ())):
            for listener in feed._listeners:
                listener(item)

    async def close(self) -> None:
        self._feeds.get(self._channel, WeakSet()).discard(self)


class RedisInvalidations:
    """Every process: one Redis channel, heard by one task per process, started on first use
    (`live()` starts it, and waits for its first subscription up to FIRST_WAIT_SECONDS, once:
    importing or building this never connects)."""

    def __init__(self, redis: Redis, channel: str) -> None:
        self._redis = redis
        self._channel = channel
        self._listeners: list[Listener] = []
        self._task: asyncio.Task[None] | None = None
        self._subscribed = False
        self._tried = asyncio.Event()  # the listener subscribed, or failed to, at least once

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def live(self) -> bool:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._hear(), name="c360-invalidations")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FIRST_WAIT_SECONDS):
                    await self._tried.wait()
        return self._subscribed

    async def publish(self, item: str) -> None:
        self._tell(item)  # this process at once; Redis brings it back here too, harmlessly
        try:
            await self._redis.publish(self._channel, item)
        except (RedisError, OSError) as error:
            log.warning("invalidations: could not publish %s: %s", item, error)

    def _tell(self, item: str | None) -> None:
        for listener in self._listeners:
            listener(item)

    async def _hear(self) -> None:
        await hear_channel(self._redis, self._channel, self._tell, self._subscribed_now, self._lost)

    def _subscribed_now(self) -> None:
        self._tell(None)  # whatever was published before now is unknown
        self._subscribed = True
        self._tried.set()

    def _lost(self) -> None:
        self._tried.set()
        self._subscribed = False
        self._tell(None)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def create_invalidations(redis: Redis | None, topic: str, database_url: str) -> Invalidations:
    """Notices about `topic` for one database: deployments (and test runs) sharing a Redis
    never hear each other's."""
    channel = f"c360:invalidate:{topic}:{make_url(database_url).database}"
    return RedisInvalidations(redis, channel) if redis is not None else LocalInvalidations(channel)
