"""Readiness and the database's failures at the door, with real services and nothing mocked:

- a database that accepts connections and never answers: /readyz says 503 within its timeout;
- a database that refuses connections (PostgreSQL's "too many clients" for a role with
  CONNECTION LIMIT 0; a SQLite file that cannot be opened): 503 SERVICE_UNAVAILABLE, for the
  key lookup and for /readyz;
- a database that is not migrated, or not to the end: /readyz says 503 and names the missing
  revisions; requests get SERVICE_UNAVAILABLE with reason NOT_MIGRATED, never a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from domain.access.keys import Role, hash_secret
from service.settings import Settings
from store.db import Database
from store.migrate import head_revisions, missing_revisions, upgrade
from store.types import UTCDateTime
from tests.api.test_limits import client_of, post
from tests.conftest import PG_URL, Api, _pg_execute, fresh_database_url

QUERY = "{ identityTypes { key } }"
KEY_COLUMNS = [
    ("id", sa.Uuid()),
    ("name", sa.String()),
    ("role", sa.String()),
    ("prefix", sa.String()),
    ("secret_hash", sa.String()),
    ("created_at", UTCDateTime()),
]


@asynccontextmanager
async def stalled_listener() -> AsyncIterator[int]:
    """A loopback port that accepts connections and never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in held:
            writer.transport.abort()
        with contextlib.suppress(Exception):
            await server.wait_closed()


async def test_readyz_answers_503_within_its_timeout_when_the_database_stalls(
    settings: Settings,
) -> None:
    async with stalled_listener() as port:
        stalled = settings.model_copy(
            update={
                "database_url": f"postgresql://postgres@127.0.0.1:{port}/c360",
                "redis_url": f"redis://127.0.0.1:{port}/0",
                "ready_timeout_seconds": 0.3,
            }
        )
        async with client_of(stalled) as client:
            ready = await asyncio.wait_for(client.get("/readyz"), 10)
    assert ready.status_code == 503
    assert ready.json() == {"status": "unavailable", "database": "timeout", "redis": "unreachable"}


@pytest.fixture
def refusing_url(backend: str, database_url: str, tmp_path: Path) -> Iterator[str]:
    """A database that refuses every connection at the door."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'missing-directory' / 'c360.db'}"
        return
    assert PG_URL
    role = f"c360_full_{uuid.uuid4().hex[:8]}"
    asyncio.run(_pg_execute(PG_URL, f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 0'))
    try:
        yield make_url(database_url).set(username=role, password=None).render_as_string(False)
    finally:
        asyncio.run(_pg_execute(PG_URL, f'DROP ROLE IF EXISTS "{role}"'))


async def test_a_database_refusing_connections_is_503_not_500(
    api: Api, settings: Settings, refusing_url: str
) -> None:
    refusing = settings.model_copy(update={"database_url": refusing_url, "redis_url": None})
    async with client_of(refusing) as client:
        response = await post(client, api.keys[Role.ADMIN], QUERY)
        ready = await client.get("/readyz")
    assert response.status_code == 503, response.text
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert "too many" not in response.text and "Traceback" not in response.text
    assert ready.status_code == 503 and ready.json()["database"] == "unreachable"


@pytest.fixture
def unmigrated_url(backend: str, tmp_path: Path) -> Iterator[str]:
    yield from fresh_database_url(backend, tmp_path)


def test_missing_revisions_are_counted_from_the_database_s_revision_to_head() -> None:
    everything = missing_revisions(())
    assert everything[0] in head_revisions() and len(everything) == len(set(everything))
    assert missing_revisions(head_revisions()) == ()
    assert missing_revisions((everything[1],)) == (everything[0],)


async def test_an_unmigrated_database_is_not_ready_and_requests_get_a_coded_503(
    unmigrated_url: str, settings: Settings
) -> None:
    bare = settings.model_copy(update={"database_url": unmigrated_url, "redis_url": None})
    async with client_of(bare) as client:
        ready = await client.get("/readyz")
        response = await post(client, "c360_not_a_real_key", QUERY)
    assert ready.status_code == 503
    body = ready.json()
    assert (body["status"], body["database"]) == ("unavailable", "not migrated")
    assert body["migrations"] == {
        "current": [],
        "head": list(head_revisions()),
        "missing": list(missing_revisions(())),
    }
    assert response.status_code == 503, response.text
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert error["extensions"]["reason"] == "NOT_MIGRATED"
    assert head_revisions()[0] in error["message"] and "c360 migrate" in error["message"]


@pytest.fixture
def behind_url(unmigrated_url: str) -> str:
    """A database one revision short of head."""
    upgrade(unmigrated_url, missing_revisions(())[1])
    return unmigrated_url


async def test_a_database_one_revision_behind_names_the_missing_revision(
    behind_url: str, settings: Settings
) -> None:
    behind = settings.model_copy(update={"database_url": behind_url, "redis_url": None})
    async with client_of(behind) as client:
        ready = await client.get("/readyz")
    assert ready.status_code == 503
    migrations = ready.json()["migrations"]
    assert migrations["missing"] == [head_revisions()[0]]
    assert migrations["current"] == [missing_revisions(())[1]]


async def test_a_migrated_database_is_ready(api: Api) -> None:
    ready = await api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"


@pytest.fixture
def before_webhooks_url(unmigrated_url: str) -> str:
    """A database migrated up to, not including, the webhook tables."""
    upgrade(unmigrated_url, "c8_access")
    return unmigrated_url


async def test_a_request_meeting_a_missing_table_or_column_is_a_coded_503(
    before_webhooks_url: str, settings: Settings
) -> None:
    """The key lookup reads a column of the newest revision (a key's own budget): on a
    database behind, every request is answered at the door, coded, never a 500."""
    behind = settings.model_copy(update={"database_url": before_webhooks_url, "redis_url": None})
    db = Database.from_url(before_webhooks_url)
    key = "c360_00000000_old-database-key"
    keys = sa.table(
        "api_keys",
        *(sa.column(name, kind) for name, kind in KEY_COLUMNS),
    )
    try:
        async with db.write() as session:
            await session.execute(
                sa.insert(keys).values(
                    id=uuid.uuid4(),
                    name="ops",
                    role="admin",
                    prefix="00000000",
                    secret_hash=hash_secret(key),
                    created_at=datetime.now(UTC),
                )
            )
    finally:
        await db.dispose()
    async with client_of(behind) as client:
        responses = [await post(client, key, query) for query in (QUERY, "{ webhooks { id } }")]
        ready = await client.get("/readyz")
    for response in responses:
        assert response.status_code == 503, response.text
        [error] = response.json()["errors"]
        assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert error["extensions"]["reason"] == "NOT_MIGRATED"
        assert "api_keys" not in error["message"], "no SQL or table names reach the client"
    assert ready.json()["migrations"]["missing"] == list(missing_revisions(("c8_access",)))
