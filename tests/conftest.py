"""Test fixtures: every database test runs on SQLite, and again on PostgreSQL + Redis when
C360_TEST_DATABASE_URL / C360_TEST_REDIS_URL are set (as `.ci/run` does).

Each run migrates its own fresh database with the real Alembic history (PostgreSQL: a new
database, dropped at the end); between tests the rows are deleted and the reference data put
back, so every test starts from the state `c360 migrate` leaves.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import delete, event, text
from sqlalchemy.engine import make_url

from api.app import create_app
from domain.access.keys import Role, create_api_key
from service.bootstrap import ensure_reference_data
from service.settings import Settings
from store.db import Database
from store.migrate import upgrade
from store.models import Base

PG_URL = os.environ.get("C360_TEST_DATABASE_URL")


def _worker_redis_url(url: str | None) -> str | None:
    """Under pytest-xdist, worker gwN uses Redis database (the given one - N), so that workers'
    channels and counters never meet (one server's fan-out would deliver another test's events)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if url is None or not worker.startswith("gw"):
        return url
    split = urlsplit(url)
    database = int(split.path.strip("/") or 0) - int(worker.removeprefix("gw"))
    return urlunsplit(split._replace(path=f"/{database}"))


REDIS_URL = _worker_redis_url(os.environ.get("C360_TEST_REDIS_URL"))
BACKENDS = ["sqlite", *(["postgresql"] if PG_URL else [])]


def pytest_sessionstart(session: pytest.Session) -> None:
    """A configured service that cannot be reached fails the run: it must never skip."""
    problems = []
    if PG_URL:
        try:
            asyncio.run(_pg_execute(PG_URL, "SELECT 1"))
        except Exception as error:
            problems.append(f"PostgreSQL at C360_TEST_DATABASE_URL unreachable: {error}")
    if REDIS_URL:
        try:
            asyncio.run(_redis_ping(REDIS_URL))
        except Exception as error:
            problems.append(f"Redis at C360_TEST_REDIS_URL unreachable: {error}")
    if problems:
        pytest.exit("\n".join(problems), returncode=3)


async def _redis_ping(url: str) -> None:
    client = Redis.from_url(url)
    try:
        await client.ping()
    finally:
        await client.aclose()


async def _pg_execute(server_url: str, *statements: str) -> None:
    url = make_url(server_url)
    connection = await asyncpg.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        database=url.database or "postgres",
    )
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


def fresh_database_url(backend: str, directory: Path) -> Iterator[str]:
    """A new, empty database of `backend`, removed afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / f'{uuid.uuid4().hex}.db'}"
        return
    assert PG_URL
    name = f"c360_test_{uuid.uuid4().hex[:12]}"
    # Tests need no durability across a crash; skipping the commit flush keeps them quick.
    asyncio.run(
        _pg_execute(
            PG_URL,
            f'CREATE DATABASE "{name}"',
            f'ALTER DATABASE "{name}" SET synchronous_commit = off',
        )
    )
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_pg_execute(PG_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One migrated database per backend for the whole run."""
    for url in fresh_database_url(request.param, tmp_path_factory.mktemp("db")):
        upgrade(url)
        yield url


@pytest.fixture
def backend(database_url: str) -> str:
    return make_url(database_url).get_backend_name()


@pytest.fixture
def settings(database_url: str, backend: str) -> Settings:
    redis_url = REDIS_URL if backend == "postgresql" else None
    # A key stays known for the whole test unless a change is announced (statement counts
    # must not depend on how fast the machine is); the expiry is pinned in test_key_cache.
    # Each write settles its own derived state (domain.derived), as the assertions expect.
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        key_cache_seconds=3600,
        derived_state_inline=True,
    )


async def reset(db: Database) -> None:
    async with db.write() as session:
        if db.dialect == "postgresql":
            tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            await session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(Base.metadata.sorted_tables):
                await session.execute(delete(table))
    await ensure_reference_data(db)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database.from_url(settings.database_url)
    # Tests read derived state right after a write: each write settles the profiles it marked
    # (domain.derived); tests of the worker itself turn this off.
    database.settle_writes = True
    await reset(database)
    yield database
    await database.dispose()


class StatementCounter:
    """Counts the SQL statements an engine sends (transaction control excluded)."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.split(None, 1)[0].upper() not in {
            "BEGIN",
            "COMMIT",
            "ROLLBACK",
            "SAVEPOINT",
            "RELEASE",
        }:
            self.statements.append(statement)

    @property
    def count(self) -> int:
        return len(self.statements)

    def reset(self) -> None:
        self.statements.clear()


class Api:
    """The app over HTTP (in process), with a key per role and a statement counter."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        keys: dict[Role, str],
        counter: StatementCounter,
        db: Database,
    ):
        self.client = client
        self.db = db
        self.keys = keys
        self.sql = counter

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, *, role: Role | None = Role.ADMIN
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[role]}"} if role else {}
        return await self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )

    async def query(
        self, query: str, variables: dict[str, Any] | None = None, *, role: Role = Role.ADMIN
    ) -> dict[str, Any]:
        """The `data` of a query that must succeed."""
        response = await self.post(query, variables, role=role)
        body = response.json()
        assert response.status_code == 200 and not body.get("errors"), body
        return body["data"]  # type: ignore[no-any-return]


@pytest.fixture
async def api(db: Database, settings: Settings) -> AsyncIterator[Api]:
    app = create_app(settings)
    state = app.state.c360
    keys = {role: (await create_api_key(db, f"test-{role.value}", role)).secret for role in Role}
    for secret in keys.values():  # known, as on a serving worker: a request looks none up
        assert await state.keys.authenticate(state.db, secret) is not None
    counter = StatementCounter()
    event.listen(state.db.engine.sync_engine, "before_cursor_execute", counter)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield Api(client, keys, counter, db)
    await state.close()
