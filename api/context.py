"""The request context: who is calling, the database, settings and per-request loaders."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from functools import cached_property

from redis.asyncio import Redis
from strawberry.fastapi import BaseContext

from api.resolvers.loaders import Loaders
from domain.access import Principal
from domain.erasure import ErasurePolicy
from domain.settings import Settings
from store.db import Database
from store.pubsub import Broker, InProcessBroker
from store.ratelimit import RateLimiter


@dataclass
class AppState:
    """What the app factory builds once and every request shares."""

    settings: Settings
    db: Database
    redis: Redis | None
    broker: Broker = field(default_factory=InProcessBroker)

    @cached_property
    def limiter(self) -> RateLimiter:
        """Per-key cost budgets, shared through Redis when there is one."""
        return RateLimiter(self.redis, self.settings.cost_budget_per_minute)


class Context(BaseContext):
    def __init__(
        self, state: AppState, principal: Principal | None, *, request_scoped: bool = False
    ) -> None:
        """`request_scoped`: an HTTP request's reads share one connection until `close()`
        (store.db.RequestReads); a websocket's context lives too long to hold one."""
        super().__init__()
        self.state = state
        self.principal = principal
        self.request_id = uuid.uuid4().hex
        self._db = state.db.request_scope() if request_scoped else state.db

    @property
    def db(self) -> Database:
        return self._db

    async def close(self) -> None:
        await self._db.close()

    @property
    def settings(self) -> Settings:
        return self.state.settings

    @property
    def erasure(self) -> ErasurePolicy:
        """How identify treats identities of erased customers, as configured."""
        settings = self.state.settings
        return ErasurePolicy(settings.erasure_salt, settings.erased_reidentify == "allow")

    @property
    def actor(self) -> str | None:
        return self.principal.actor if self.principal else None

    @cached_property
    def loaders(self) -> Loaders:
        return Loaders(self.db)
