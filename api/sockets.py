"""This process's open websockets by key: the watcher that closes a revoked key's sockets,
and the caps per key (store.slots). api.websockets holds each socket to it; api.context gives
it to every request (revokeApiKey closes the key's sockets at once). It never authenticates.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.engine import make_url

from domain.access.keys import inactive_keys
from service.settings import Settings
from store.db import Database
from store.slots import LEASE_SECONDS, Slots

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("c360.websockets")


class HeldSocket(Protocol):
    """What the registry needs of a socket (api.websockets.KeyedTransportWSHandler)."""

    socket_id: str

    async def close_revoked(self) -> None: ...


class SocketRegistry:
    """This process's open sockets by key, the watcher of their keys, and the caps."""

    def __init__(self, settings: Settings, db: Database, redis: Redis | None) -> None:
        self.settings = settings
        self.db = db
        self.slots = Slots(redis, f"c360:ws:{make_url(settings.database_url).database}")
        self._sockets: dict[uuid.UUID, set[HeldSocket]] = {}
        self._operations: set[tuple[str, str]] = set()
        self._watcher: asyncio.Task[None] | None = None

    async def admit(self, handler: HeldSocket, key_id: uuid.UUID) -> bool:
        cap = self.settings.ws_max_connections_per_key
        if not await self.slots.acquire(f"sockets:{key_id}", handler.socket_id, cap):
            return False
        self._sockets.setdefault(key_id, set()).add(handler)
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch(), name="c360-ws-keys")
        return True

    async def leave(self, handler: HeldSocket, key_id: uuid.UUID) -> None:
        held = self._sockets.get(key_id)
        if held is not None:
            held.discard(handler)
            if not held:
                del self._sockets[key_id]
        if not self._sockets and self._watcher is not None:
            self._watcher.cancel()  # nothing left to watch; `admit` starts another
            self._watcher = None
        await self.slots.release(f"sockets:{key_id}", handler.socket_id)

    async def start_operation(self, key_id: uuid.UUID, member: str) -> bool:
        group = f"operations:{key_id}"
        if not await self.slots.acquire(group, member, self.settings.ws_max_subscriptions_per_key):
            return False
        self._operations.add((group, member))
        return True

    async def end_operation(self, key_id: uuid.UUID, member: str) -> None:
        group = f"operations:{key_id}"
        self._operations.discard((group, member))
        await self.slots.release(group, member)

    async def close_key(self, key_id: uuid.UUID) -> None:
        """Close every socket of `key_id` in this process (the key was revoked)."""
        for handler in list(self._sockets.get(key_id, ())):
            await handler.close_revoked()

    def _held(self) -> list[tuple[str, str]]:
        sockets = [
            (f"sockets:{key_id}", handler.socket_id)
            for key_id, handlers in self._sockets.items()
            for handler in handlers
        ]
        return sockets + list(self._operations)

    async def _watch(self) -> None:
        refreshed = time.monotonic()
        while self._sockets:
            await asyncio.sleep(self.settings.ws_key_check_interval_seconds)
            try:
                revoked = await inactive_keys(self.db, list(self._sockets))
            except Exception as error:  # the database is down: sockets stay until it answers
                log.warning("websockets: could not re-check keys: %s", error)
                continue
            for key_id in revoked:
                await self.close_key(key_id)
            if time.monotonic() - refreshed > LEASE_SECONDS / 3:
                await self.slots.refresh(self._held())
                refreshed = time.monotonic()
