"""Faults, with real services: the app reaches PostgreSQL or Redis through a TCP proxy on
loopback that the test cuts (every connection dropped, nothing listening) and restores, or
through a closed port. Nothing is mocked.

- Redis down: the API keeps serving (rate limits per process) and /readyz says degraded.
- PostgreSQL down: requests get SERVICE_UNAVAILABLE (HTTP 503); when it is back the service
  recovers by itself (the pool pre-pings and reconnects).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from graphql import GraphQLError
from sqlalchemy.engine import make_url

from api.errors import ErrorShaping
from domain.access.keys import Role
from service.settings import Settings
from tests.api.test_limits import client_of, post
from tests.conftest import Api
from tests.servers import free_port

QUERY = "{ identityTypes { key } }"


class Proxy:
    """Forwards a loopback port to a real service until cut."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.streams: set[asyncio.StreamWriter] = set()

    async def restore(self) -> None:
        self.server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.streams):
            writer.transport.abort()
        self.streams.clear()
        await self.server.wait_closed()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.streams |= {writer, up_writer}

        async def copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.transport.abort()

        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))


@asynccontextmanager
async def proxy_to(url: str) -> AsyncIterator[tuple[Proxy, str]]:
    """A proxy in front of the service at `url`, and the same URL through the proxy."""
    parsed = make_url(url)
    proxy = Proxy(parsed.host or "127.0.0.1", parsed.port or 0)
    await proxy.restore()
    try:
        yield proxy, parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(False)
    finally:
        with contextlib.suppress(AssertionError):
            await proxy.cut()


async def test_with_redis_unreachable_the_api_serves_and_is_degraded(
    api: Api, settings: Settings
) -> None:
    down = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    async with client_of(down) as client:
        for _ in range(3):  # rate limits fall back to this process's buckets
            response = await post(client, api.keys[Role.PARTNER], QUERY)
            assert response.status_code == 200 and not response.json().get("errors")
        ready = await client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert (body["status"], body["database"], body["redis"]) == ("degraded", "ok", "unreachable")


async def test_redis_going_down_and_coming_back(api: Api, settings: Settings) -> None:
    if not settings.redis_url:
        pytest.skip("Redis is configured on the PostgreSQL backend only")
    async with (
        proxy_to(settings.redis_url) as (redis, url),
        client_of(settings.model_copy(update={"redis_url": url})) as client,
    ):
        assert (await client.get("/readyz")).json()["status"] == "ready"
        await redis.cut()
        assert (await client.get("/readyz")).json()["status"] == "degraded"
        assert (await post(client, api.keys[Role.ADMIN], QUERY)).status_code == 200
        await redis.restore()
        assert (await client.get("/readyz")).json()["status"] == "ready"


async def test_with_the_database_unreachable_requests_get_503(api: Api, settings: Settings) -> None:
    down = settings.model_copy(
        update={"database_url": "postgresql://postgres@127.0.0.1:1/c360", "redis_url": None}
    )
    async with client_of(down) as client:
        response = await post(client, api.keys[Role.ADMIN], QUERY)
        ready = await client.get("/readyz")
    assert response.status_code == 503, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert "127.0.0.1" not in response.text and "Traceback" not in response.text
    assert ready.status_code == 503 and ready.json()["database"] == "unreachable"


async def test_the_service_recovers_by_itself_when_the_database_returns(
    api: Api, settings: Settings, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("an embedded SQLite file cannot go down")
    key = api.keys[Role.ADMIN]
    async with (
        proxy_to(settings.database_url) as (database, url),
        client_of(settings.model_copy(update={"database_url": url})) as client,
    ):
        assert (await post(client, key, QUERY)).status_code == 200
        await database.cut()
        down = await post(client, key, QUERY)
        assert down.status_code == 503, down.text
        assert down.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert (await client.get("/readyz")).status_code == 503
        await database.restore()
        back = await post(client, key, QUERY)
        assert back.status_code == 200 and not back.json().get("errors"), back.text
        assert (await client.get("/readyz")).json()["status"] in {"ready", "degraded"}


def test_a_lost_database_inside_a_resolver_is_service_unavailable_not_a_bug() -> None:
    lost = GraphQLError("x", original_error=ConnectionResetError("connection reset by peer"))
    shaped = ErrorShaping._shape(lost, "req-1")
    assert shaped.extensions == {"code": "SERVICE_UNAVAILABLE", "requestId": "req-1"}
    assert "reset" not in shaped.message
