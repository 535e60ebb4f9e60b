"""API keys and the roles they carry.

A key is shown once, when created; only its SHA-256 is stored. Keys are 32 random bytes, so a
fast hash is enough (there is nothing to brute-force), and lookup is one indexed equality.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.errors import InvalidInput, NotFound
from domain.values import text_for
from store.db import Database
from store.models import ApiKey, AuditEntry
from store.types import utcnow

KEY_PREFIX = "c360"


class Role(Enum):
    ADMIN = "admin"
    INTEGRATION = "integration"
    FRONTEND = "frontend"
    PARTNER = "partner"


# The most a key's own budget may be: what a GraphQL Int holds, far beyond any traffic.
MAX_BUDGET_PER_MINUTE = 2**31 - 1


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's id, name and role, and its own cost budget per minute
    (None: the service's default)."""

    key_id: uuid.UUID
    name: str
    role: Role
    budget_per_minute: int | None = None

    @property
    def actor(self) -> str:
        return actor_of(self.role, self.name)


def actor_of(role: Role, name: str) -> str:
    """Who did it, as audit entries, histories and merge records keep it."""
    return f"{role.value}:{name}"


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: uuid.UUID
    name: str
    role: Role
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    budget_per_minute: int | None = None


@dataclass(frozen=True, slots=True)
class NewApiKey:
    record: ApiKeyRecord
    secret: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _record(row: ApiKey) -> ApiKeyRecord:
    return ApiKeyRecord(
        row.id,
        row.name,
        Role(row.role),
        row.prefix,
        row.created_at,
        row.revoked_at,
        row.cost_budget_per_minute,
    )


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        roles = ", ".join(role.value for role in Role)
        raise InvalidInput(f"role must be one of {roles}", field=["role"]) from None


def parse_key_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidInput("not an API key id", field=["id"]) from None


async def create_api_key(db: Database, name: str, role: Role) -> NewApiKey:
    name = text_for(ApiKey.name, name.strip(), ["name"], what="a key's name")
    if not name:
        raise InvalidInput("a key needs a name", field=["name"])
    # Everything the key does is recorded under its actor, "<role>:<name>", in columns of the
    # same length as audit_log.actor (tests/unit/test_text_columns.py): it must fit them too.
    actor = actor_of(role, name)
    text_for(AuditEntry.actor, actor, ["name"], what=f'"{role.value}:" and the name')
    prefix = secrets.token_hex(4)
    secret = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"

    async def work(session: AsyncSession) -> NewApiKey:
        row = ApiKey(name=name, role=role.value, prefix=prefix, secret_hash=hash_secret(secret))
        session.add(row)
        await session.flush()
        return NewApiKey(_record(row), secret)

    return await db.transact(work)


async def authenticate(db: Database, secret: str) -> Principal | None:
    """The caller a secret names, or None (unknown or revoked); a request's key check goes
    through domain.access.key_cache, which remembers what this reads."""
    return await authenticate_hash(db, hash_secret(secret))


async def authenticate_hash(db: Database, secret_hash: str) -> Principal | None:
    async with db.read() as session:
        row = (
            await session.execute(
                select(ApiKey.id, ApiKey.name, ApiKey.role, ApiKey.cost_budget_per_minute).where(
                    ApiKey.secret_hash == secret_hash, ApiKey.revoked_at.is_(None)
                )
            )
        ).first()
    if row is None:
        return None
    return Principal(row.id, row.name, Role(row.role), row.cost_budget_per_minute)


async def list_api_keys(db: Database) -> list[ApiKeyRecord]:
    async with db.read() as session:
        rows = await session.scalars(select(ApiKey).order_by(ApiKey.created_at))
        return [_record(row) for row in rows]


async def revoke_api_key(db: Database, key_id: uuid.UUID) -> ApiKeyRecord:
    async def work(session: AsyncSession) -> ApiKeyRecord:
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        row = await session.get(ApiKey, key_id)
        if row is None:
            raise NotFound("no such API key", field=["id"])
        return _record(row)

    return await db.transact(work)


async def set_api_key_budget(
    db: Database, key_id: uuid.UUID, budget_per_minute: int | None
) -> ApiKeyRecord:
    """Give a key its own cost budget per minute, or (None) the service's default again. It
    holds from the key's next request on once the workers hear of it: the API changes it
    through domain.access.key_cache's KnownKeys, which tells them."""
    if budget_per_minute is not None and not 1 <= budget_per_minute <= MAX_BUDGET_PER_MINUTE:
        raise InvalidInput(
            f"a budget is 1 to {MAX_BUDGET_PER_MINUTE:,} per minute, or null for the default",
            field=["costBudgetPerMinute"],
        )

    async def work(session: AsyncSession) -> ApiKeyRecord:
        row = await session.get(ApiKey, key_id)
        if row is None:
            raise NotFound("no such API key", field=["id"])
        row.cost_budget_per_minute = budget_per_minute
        await session.flush()
        return _record(row)

    return await db.transact(work)


async def inactive_keys(db: Database, key_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    """Which of `key_ids` no longer authenticate (revoked, or gone): what an open websocket,
    authenticated once, must re-check while it lives."""
    if not key_ids:
        return set()
    async with db.read() as session:
        active = set(
            await session.scalars(
                select(ApiKey.id).where(ApiKey.id.in_(list(key_ids)), ApiKey.revoked_at.is_(None))
            )
        )
    return set(key_ids) - active
