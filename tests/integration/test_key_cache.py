"""domain.access.key_cache: a known key is not looked up again; a change made without a
notice (a role set by SQL) holds once the key's time is up; a notice makes it hold at once,
and a lookup that a notice overtook is not kept."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from domain.access import key_cache
from domain.access.key_cache import KnownKeys
from domain.access.keys import Role, create_api_key
from store.db import Database
from store.invalidations import LocalInvalidations
from store.models import ApiKey


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class CountedLookups:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = key_cache.authenticate_hash

        async def counted(db: Database, secret_hash: str):  # type: ignore[no-untyped-def]
            self.count += 1
            return await original(db, secret_hash)

        monkeypatch.setattr(key_cache, "authenticate_hash", counted)


async def set_role(db: Database, name: str, role: Role) -> None:
    async with db.write() as session:
        await session.execute(update(ApiKey).where(ApiKey.name == name).values(role=role.value))


async def test_a_role_changed_by_sql_holds_once_the_key_is_a_second_old(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = (await create_api_key(db, "crm", Role.PARTNER)).secret
    clock, lookups = Clock(), CountedLookups(monkeypatch)
    keys = KnownKeys(LocalInvalidations("test:role"), ttl_seconds=1.0, clock=clock)
    roles = []
    for now in (0.0, 0.5, 0.99, 1.0, 1.5):
        clock.now = now
        if now == 0.5:
            await set_role(db, "crm", Role.FRONTEND)
        principal = await keys.authenticate(db, secret)
        assert principal is not None
        roles.append(principal.role)
    assert roles == [Role.PARTNER] * 3 + [Role.FRONTEND] * 2
    assert lookups.count == 2  # at 0 and at 1.0


async def test_a_notice_makes_a_change_hold_at_once_in_every_cache_of_the_process(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await create_api_key(db, "crm", Role.PARTNER)
    lookups = CountedLookups(monkeypatch)
    one = KnownKeys(LocalInvalidations("test:notice"), ttl_seconds=3600)
    other = KnownKeys(LocalInvalidations("test:notice"), ttl_seconds=3600)
    for keys in (one, other, one, other):
        assert await keys.authenticate(db, created.secret) is not None
    assert lookups.count == 2
    await set_role(db, "crm", Role.FRONTEND)
    await one.changed(created.record.id)
    for keys in (one, other):
        principal = await keys.authenticate(db, created.secret)
        assert principal is not None and principal.role is Role.FRONTEND
    assert lookups.count == 4


async def test_a_lookup_overtaken_by_a_notice_is_not_kept(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await create_api_key(db, "crm", Role.PARTNER)
    keys = KnownKeys(LocalInvalidations("test:race"), ttl_seconds=3600)
    original = key_cache.authenticate_hash
    lookups = 0

    async def overtaken(db: Database, secret_hash: str):  # type: ignore[no-untyped-def]
        nonlocal lookups
        lookups += 1
        found = await original(db, secret_hash)
        if lookups == 1:  # the key changes while its first lookup is on its way back
            await keys.changed(created.record.id)
        return found

    monkeypatch.setattr(key_cache, "authenticate_hash", overtaken)
    for _ in range(3):
        assert await keys.authenticate(db, created.secret) is not None
    assert lookups == 2  # the first answer was not kept; the second was
