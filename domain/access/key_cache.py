"""API keys as this process last read them, so that a request's key check makes no database
round trip while its key is known.

The invalidation rule, beside the cache. What a key authenticates as is trusted:
- only while this process hears change notices (store.invalidations' `live()`): a process that
  cannot hear them (Redis lost, or not yet subscribed) reads the database for every request;
- until a notice names the key: `changed(key_id)` forgets it in this process at once and tells
  every other one; `revoke` and `set_budget` change a key and announce it, and so must any
  other change of a key (its role);
- for at most `ttl_seconds` after it was read (C360_KEY_CACHE_SECONDS, 1 s by default): the
  bound on a change that sends no notice (SQL by hand, the CLI in a process of its own).
A read that a notice overtook is not kept (the generation count): it may predate the change.
Only keys that authenticate are kept, at most MAX_KEYS of them; an unknown or revoked secret
is looked up each time, as before.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from domain.access.keys import (
    ApiKeyRecord,
    Principal,
    authenticate_hash,
    hash_secret,
    revoke_api_key,
    set_api_key_budget,
)
from store.db import Database
from store.invalidations import Invalidations

MAX_KEYS = 10_000


@dataclass(frozen=True, slots=True)
class _Known:
    principal: Principal
    until: float  # on `clock`'s scale


class KnownKeys:
    """The keys this process has seen authenticate, by their secret's hash."""

    def __init__(
        self,
        notices: Invalidations,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._notices = notices
        self._ttl = ttl_seconds
        self._clock = clock
        self._known: dict[str, _Known] = {}
        self._generation = 0
        notices.listen(self._forget)

    async def authenticate(self, db: Database, secret: str) -> Principal | None:
        """The caller `secret` names, or None (unknown or revoked)."""
        secret_hash = hash_secret(secret)
        trusted = await self._notices.live()
        known = self._known.get(secret_hash)
        read_at = self._clock()
        if trusted and known is not None and read_at < known.until:
            return known.principal
        generation = self._generation
        principal = await authenticate_hash(db, secret_hash)
        if principal is None or not trusted or generation != self._generation:
            self._known.pop(secret_hash, None)
        else:
            if secret_hash not in self._known and len(self._known) >= MAX_KEYS:
                del self._known[next(iter(self._known))]  # the longest known goes
            self._known[secret_hash] = _Known(principal, read_at + self._ttl)
        return principal

    async def revoke(self, db: Database, key_id: uuid.UUID) -> ApiKeyRecord:
        """keys.revoke_api_key, heard by every process."""
        record = await revoke_api_key(db, key_id)
        await self.changed(key_id)
        return record

    async def set_budget(
        self, db: Database, key_id: uuid.UUID, budget_per_minute: int | None
    ) -> ApiKeyRecord:
        """keys.set_api_key_budget, heard by every process."""
        record = await set_api_key_budget(db, key_id, budget_per_minute)
        await self.changed(key_id)
        return record

    async def changed(self, key_id: uuid.UUID) -> None:
        """`key_id` changed (revoked, its budget or role): every process forgets it."""
        await self._notices.publish(str(key_id))

    async def close(self) -> None:
        await self._notices.close()

    def _forget(self, key_id: str | None) -> None:
        self._generation += 1
        if key_id is None:
            self._known.clear()
            return
        for secret_hash, known in list(self._known.items()):
            if str(known.principal.key_id) == key_id:
                del self._known[secret_hash]
