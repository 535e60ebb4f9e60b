"""Publish/subscribe for live change feeds: Redis across processes, or in process.

Either broker hands each published message to each local subscriber exactly once. With Redis,
a publisher does not also deliver locally: its message comes back from Redis to the one
listener of each process, which fans it out to that process's subscribers.

Feeds are live: a subscriber sees what is published while it is subscribed, nothing before,
and (Redis) nothing published while the connection was down. Durable, at-least-once delivery
is what webhooks are for. This module knows nothing of what the messages mean.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.engine import make_url

log = logging.getLogger("c360.pubsub")

DEFAULT_CAPACITY = 1000
READY_TIMEOUT_SECONDS = 5.0
RECONNECT_MAX_SECONDS = 5.0


class PublishError(Exception):
    """The broker could not take the messages (Redis unreachable)."""


class SubscriberLagged(Exception):
    """The subscriber fell `capacity` messages behind: its feed ends rather than skip any."""


class Subscription:
    """The messages published to one subscriber, in order, as an async iterator."""

    def __init__(self, capacity: int) -> None:
        self._queue: asyncio.Queue[str] = asyncio.Queue(capacity)
        self._lagged = False

    def offer(self, message: str) -> None:
        if self._lagged:
            return
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            self._lagged = True

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> str:
        if self._lagged:
            raise SubscriberLagged("the subscriber could not keep up with the feed")
        return await self._queue.get()


class _LocalFanout:
    """This process's subscribers."""

    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()

    @asynccontextmanager
    async def attach(self, capacity: int) -> AsyncIterator[Subscription]:
        subscription = Subscription(capacity)
        self._subscribers.add(subscription)
        try:
            yield subscription
        finally:
            self._subscribers.discard(subscription)

    def deliver(self, message: str) -> None:
        for subscription in list(self._subscribers):
            subscription.offer(message)

    def __len__(self) -> int:
        return len(self._subscribers)


class Broker(Protocol):
    async def publish(self, messages: Sequence[str]) -> None: ...

    @property
    def local_subscribers(self) -> int:
        """Subscribers in this process."""
        ...

    def subscribe(
        self, capacity: int = DEFAULT_CAPACITY
    ) -> AbstractAsyncContextManager[Subscription]: ...

    async def close(self) -> None: ...


class InProcessBroker:
    """The embedded default: publishers and subscribers share one process."""

    def __init__(self) -> None:
        self._local = _LocalFanout()

    @property
    def local_subscribers(self) -> int:
        return len(self._local)

    async def publish(self, messages: Sequence[str]) -> None:
        for message in messages:
            self._local.deliver(message)

    def subscribe(
        self, capacity: int = DEFAULT_CAPACITY
    ) -> AbstractAsyncContextManager[Subscription]:
        return self._local.attach(capacity)

    async def close(self) -> None:
        return None


class RedisBroker:
    """One Redis channel shared by every process; one listening connection per process."""

    def __init__(self, redis: Redis, channel: str) -> None:
        self._redis = redis
        self._channel = channel
        self._local = _LocalFanout()
        self._listener: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    @property
    def local_subscribers(self) -> int:
        return len(self._local)

    async def publish(self, messages: Sequence[str]) -> None:
        if not messages:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for message in messages:
                    pipe.publish(self._channel, message)
                await pipe.execute()
        except (RedisError, OSError) as error:
            raise PublishError(str(error)) from error

    @asynccontextmanager
    async def subscribe(self, capacity: int = DEFAULT_CAPACITY) -> AsyncIterator[Subscription]:
        """A subscription that is live on return: what is published after it arrives."""
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._listen(), name="c360-pubsub-listener")
        async with self._local.attach(capacity) as subscription:
            await asyncio.wait_for(self._ready.wait(), READY_TIMEOUT_SECONDS)
            yield subscription

    async def _listen(self) -> None:
        await hear_channel(
            self._redis, self._channel, self._local.deliver, self._ready.set, self._ready.clear
        )

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None


async def hear_channel(
    redis: Redis,
    channel: str,
    hear: Callable[[str], None],
    subscribed: Callable[[], None],
    lost: Callable[[], None],
) -> None:
    """Until cancelled: `hear` every message on `channel`, `subscribed` each time the
    subscription is in place, `lost` each time it ends; reconnecting with a growing delay.
    (Shared by the change-event broker and store.invalidations.)"""
    delay = 0.1
    while True:
        try:
            async with redis.pubsub() as pubsub:
                await pubsub.subscribe(channel)
                async for message in pubsub.listen():
                    if message["type"] == "subscribe":
                        subscribed()
                        delay = 0.1
                    elif message["type"] == "message":
                        data = message["data"]
                        hear(data.decode() if isinstance(data, bytes) else data)
        except (RedisError, OSError) as error:
            log.warning(
                "pub/sub on %s: lost Redis (%s); reconnecting in %.1fs", channel, error, delay
            )
        finally:
            lost()
        await asyncio.sleep(delay)
        delay = min(delay * 2, RECONNECT_MAX_SECONDS)


def create_broker(redis: Redis | None, channel: str) -> Broker:
    """Redis pub/sub when a Redis client is configured, else the in-process broker."""
    return RedisBroker(redis, channel) if redis is not None else InProcessBroker()


def changes_channel(database_url: str) -> str:
    """One channel per database: deployments (and test runs) sharing a Redis never mix."""
    return f"c360:changes:{make_url(database_url).database}"
