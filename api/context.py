"""The request context: who is calling, the database, settings and per-request loaders."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from functools import cached_property

from opentelemetry.trace import Tracer
from redis.asyncio import Redis
from starlette.requests import HTTPConnection
from strawberry.fastapi import BaseContext

from api.loaders import Loaders
from api.metrics import Metrics
from api.sockets import SocketRegistry
from domain.access.erasure import ErasurePolicy
from domain.access.key_cache import KnownKeys
from domain.access.keys import Principal
from service.settings import Settings
from store.db import Database
from store.invalidations import create_invalidations
from store.pubsub import Broker, InProcessBroker
from store.ratelimit import RateLimiter


@dataclass
class AppState:
    """What the app factory builds once and every request shares."""

    settings: Settings
    db: Database
    redis: Redis | None
    broker: Broker = field(default_factory=InProcessBroker)
    metrics: Metrics = field(default_factory=Metrics)
    tracer: Tracer | None = None  # service.tracing: None while tracing is off

    @cached_property
    def limiter(self) -> RateLimiter:
        """Per-key cost budgets, shared through Redis when there is one."""
        return RateLimiter(self.redis)

    @cached_property
    def keys(self) -> KnownKeys:
        """The API keys this process knows, told of changes made by any worker."""
        notices = create_invalidations(self.redis, "keys", self.settings.database_url)
        return KnownKeys(notices, self.settings.key_cache_seconds)

    async def close(self) -> None:
        """Stop hearing key notices, then let go of the database and Redis: the notices'
        listener reads through the Redis client, so it must stop first."""
        await self.keys.close()
        await self.db.dispose()
        if self.redis is not None:
            await self.redis.aclose()

    @cached_property
    def sockets(self) -> SocketRegistry:
        """This process's open websockets by key, held to their key while they live."""
        return SocketRegistry(self.settings, self.db, self.redis)


CONSISTENCY_HEADER = "X-Consistency-Token"
READ_SOURCE_HEADER = "X-Read-Source"


def request_db(connection: HTTPConnection) -> Database:
    """The database as one connection sees it, made on first use: an HTTP request's reads,
    from the key lookup to the last list of the response, share one pooled connection until
    the context closes it (store.db.RequestReads), on a replica that has replayed up to the
    request's consistency token (CONSISTENCY_HEADER) when there are replicas; a websocket lives
    too long to hold one, and reads from the primary."""
    found = getattr(connection.state, "c360_db", None)
    if found is None:
        db = connection.app.state.c360.db
        if connection.scope["type"] == "http":
            found = db.request_scope(connection.headers.get(CONSISTENCY_HEADER))
        else:
            found = db
        connection.state.c360_db = found
    return found  # type: ignore[no-any-return]


class Context(BaseContext):
    def __init__(
        self,
        state: AppState,
        principal: Principal | None,
        db: Database | None = None,
        request_id: str | None = None,
        splices_json: bool = False,
    ) -> None:
        """`db`: the request's own (`request_db`); `close()` gives back what it holds.
        `request_id`: the one api.request_ids gave the request (a new one without it).
        `splices_json`: its answer is written by orjson, which splices compiled JSON
        (api.compiled_reads): an HTTP request's."""
        super().__init__()
        self.state = state
        self.principal = principal
        self.request_id = request_id or uuid.uuid4().hex
        self.splices_json = splices_json
        self.deadline: float | None = None  # time.monotonic(); set per HTTP request's execution
        self._db = db or state.db

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
