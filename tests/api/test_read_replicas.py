"""Read replicas against a real streaming replica of the test cluster (tests.replica_cluster):
query operations read from it, mutations from the primary; a consistency token is honoured;
a replica that lags or is gone is skipped and the primary answers.

The replica copies the whole cluster, so these tests use a database of their own, created with
the server's default synchronous_commit (the suite's databases commit without waiting for the
WAL flush, which a replica would see only up to wal_writer_delay later).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from api.app import create_app
from domain.access.keys import Role, create_api_key
from service.bootstrap import ensure_reference_data
from service.settings import Settings
from store.db import Database
from store.migrate import upgrade
from store.replicas import parse_position
from tests.conftest import PG_URL, _pg_execute
from tests.replica_cluster import ReplicaServer, streaming_replica, wait_until_replayed

needs_postgres = pytest.mark.skipif(not PG_URL, reason="replicas are PostgreSQL's")

CREATE = """mutation($value: String!) { identify(input: {identities: [{type: "email", value: $value}]})
  { customer { id } errors { code } } }"""
READ = "query($id: ID!) { customer(id: $id) { id } }"


@pytest.fixture(scope="module")
def replica() -> Iterator[ReplicaServer]:
    assert PG_URL
    with streaming_replica(PG_URL) as server:
        yield server


@pytest.fixture(scope="module")
def primary_url(replica: ReplicaServer) -> Iterator[str]:
    assert PG_URL
    name = f"c360_test_replicas_{uuid.uuid4().hex[:8]}"
    asyncio.run(_pg_execute(PG_URL, f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        upgrade(url)
        yield url
    finally:
        asyncio.run(_pg_execute(PG_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


class Client:
    def __init__(self, client: httpx.AsyncClient, key: str, url: str, replica_port: int) -> None:
        self.client, self.key, self.url, self.replica_port = client, key, url, replica_port

    async def post(self, query: str, variables: dict[str, Any], token: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self.key}"}
        if token:
            headers["X-Consistency-Token"] = token
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        assert response.status_code == 200 and not response.json().get("errors"), response.text
        return response

    async def create(self) -> tuple[str, str]:
        """A new customer's id and the consistency token of its creation."""
        response = await self.post(CREATE, {"value": f"{uuid.uuid4().hex}@x.com"})
        body = response.json()
        assert response.headers["X-Read-Source"] == "primary"
        token = body["extensions"]["consistencyToken"]
        assert response.headers["X-Consistency-Token"] == token
        return body["data"]["identify"]["customer"]["id"], token

    async def read(self, customer_id: str, token: str | None = None) -> tuple[str, bool]:
        """Where the read went, and whether it found the customer."""
        response = await self.post(READ, {"id": customer_id}, token)
        return response.headers["X-Read-Source"], response.json()["data"]["customer"] is not None

    async def replica_sql(self, statement: str) -> Any:
        replica_url = make_url(self.url).set(port=self.replica_port)
        connection = await asyncpg.connect(
            host=replica_url.host,
            port=replica_url.port,
            user=replica_url.username,
            database=replica_url.database,
        )
        try:
            return await connection.fetchval(statement)
        finally:
            await connection.close()

    async def pause_replay(self) -> None:
        await self.replica_sql("SELECT pg_wal_replay_pause()")
        while await self.replica_sql("SELECT pg_get_wal_replay_pause_state()") != "paused":
            await asyncio.sleep(0.01)


async def _client(
    primary_url: str, replica: ReplicaServer, max_lag: float
) -> AsyncIterator[Client]:
    replica_url = make_url(primary_url).set(port=replica.port).render_as_string(False)
    settings = Settings(
        database_url=primary_url,
        database_replica_urls=replica_url,
        replica_max_lag_seconds=max_lag,
        replica_check_interval_seconds=0.05,
        replica_wait_seconds=0.5,
    )
    db = Database.from_url(primary_url)
    await ensure_reference_data(db)
    key = (await create_api_key(db, f"replicas-{uuid.uuid4().hex[:6]}", Role.ADMIN)).secret
    await db.dispose()
    assert PG_URL
    await wait_until_replayed(primary_url, replica.port)
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield Client(client, key, primary_url, replica.port)
    await app.state.c360.close()


@pytest.fixture
async def api(primary_url: str, replica: ReplicaServer) -> AsyncIterator[Client]:
    """Lag never skips the replica here (an hour allowed)."""
    async for client in _client(primary_url, replica, 3600.0):
        yield client


@needs_postgres
async def test_queries_read_from_the_replica_and_mutations_from_the_primary(api: Client) -> None:
    customer_id, token = await api.create()
    assert parse_position(token)
    assert await api.read(customer_id, token) == ("replica", True)


@needs_postgres
async def test_a_token_waits_for_replay_and_the_primary_answers_meanwhile(api: Client) -> None:
    await api.pause_replay()
    try:
        customer_id, token = await api.create()
        # The replica has not replayed the write: without the token, a stale answer from it;
        # with the token, the primary's (after the bounded wait).
        assert await api.read(customer_id) == ("replica", False)
        assert await api.read(customer_id, token) == ("primary", True)
        assert await api.read(customer_id, "not a position") == ("primary", True)
    finally:
        await api.replica_sql("SELECT pg_wal_replay_resume()")
    assert await api.read(customer_id, token) == ("replica", True)


async def _first_source(api: Client, customer_id: str, wanted: str) -> str:
    """Read until the answer comes from `wanted` (a few hundred tries at most); the last source."""
    for _ in range(300):
        source, found = await api.read(customer_id)
        assert found
        if source == wanted:
            break
        await asyncio.sleep(0.02)
    return source


@needs_postgres
async def test_a_lagging_replica_is_skipped(primary_url: str, replica: ReplicaServer) -> None:
    async for api in _client(primary_url, replica, 0.5):
        customer_id, _ = await api.create()
        await wait_until_replayed(primary_url, replica.port)
        assert await _first_source(api, customer_id, "replica") == "replica"
        await api.pause_replay()
        try:
            await api.create()  # received, not replayed: the replica falls behind
            assert await _first_source(api, customer_id, "primary") == "primary"
        finally:
            await api.replica_sql("SELECT pg_wal_replay_resume()")
        assert await _first_source(api, customer_id, "replica") == "replica"


@needs_postgres
async def test_the_primary_answers_when_the_replica_is_gone(
    api: Client, replica: ReplicaServer
) -> None:
    customer_id, token = await api.create()
    assert await api.read(customer_id, token) == ("replica", True)
    await asyncio.to_thread(replica.stop)
    try:
        for _ in range(3):
            assert await api.read(customer_id, token) == ("primary", True)
            assert await api.read(customer_id) == ("primary", True)
    finally:
        await asyncio.to_thread(replica.start)
    assert PG_URL
    await wait_until_replayed(api.url, replica.port)
