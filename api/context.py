"""The request context: who is calling, the database, settings and per-request loaders."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import cached_property

from redis.asyncio import Redis
from strawberry.fastapi import BaseContext

from api.resolvers.loaders import Loaders
from domain.access import Principal
from domain.settings import Settings
from store.db import Database


@dataclass
class AppState:
    """What the app factory builds once and every request shares."""

    settings: Settings
    db: Database
    redis: Redis | None


class Context(BaseContext):
    def __init__(self, state: AppState, principal: Principal | None) -> None:
        super().__init__()
        self.state = state
        self.principal = principal
        self.request_id = uuid.uuid4().hex

    @property
    def db(self) -> Database:
        return self.state.db

    @property
    def settings(self) -> Settings:
        return self.state.settings

    @property
    def actor(self) -> str | None:
        return self.principal.actor if self.principal else None

    @cached_property
    def loaders(self) -> Loaders:
        return Loaders(self.state.db)
