"""Websockets held to their key: revocation closes them (from this process, another worker or
the CLI's path), operations re-check the key, and connections and operations are capped per
key. On PostgreSQL + Redis two server processes share the database and Redis, so revocation
and the caps are shown across workers; on SQLite one server plays both."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from api.app import create_app
from api.ids import to_global_id
from domain.access.keys import NewApiKey, Role, create_api_key, revoke_api_key
from service.settings import Settings
from store.db import Database
from tests.api.test_subscriptions import FAST, Subscriber, subscriber, until_live
from tests.servers import c360_env, c360_process, free_port, serve_asgi, wait_for_http

QUERY = "{ customers(first: 1) { edges { node { id } } } }"
CHANGES = 'subscription { changes(kinds: ["customer.created"]) { id kind } }'


@asynccontextmanager
async def servers(
    settings: Settings, backend: str, **overrides: Any
) -> AsyncIterator[tuple[str, str]]:
    """Two API processes sharing PostgreSQL and Redis (this one and a `c360 serve`), both with
    `overrides`; on SQLite one server in this process, twice."""
    update = FAST | overrides
    app = create_app(settings.model_copy(update=update))
    async with serve_asgi(app) as here:
        if backend != "postgresql":
            yield here, here
            return
        env = c360_env(
            settings.database_url, settings.redis_url, **{k: str(v) for k, v in update.items()}
        )
        port = free_port()
        with c360_process(["serve", "--port", str(port)], env) as other:
            there = f"http://127.0.0.1:{port}"
            await wait_for_http(there + "/healthz", other)
            yield here, there


async def send(sub: Subscriber, id: str, query: str) -> None:
    await sub.socket.send(json.dumps({"id": id, "type": "subscribe", "payload": {"query": query}}))


async def closed_within(sub: Subscriber, seconds: float) -> ConnectionClosed:
    """The close the server sent within `seconds` (messages before it are skipped)."""
    deadline = time.monotonic() + seconds
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await sub.next(timeout=max(0.01, deadline - time.monotonic()))
    return closed.value


def close_code(closed: ConnectionClosed) -> tuple[int, str]:
    assert closed.rcvd is not None, "the client closed, not the server"
    return closed.rcvd.code, closed.rcvd.reason


async def revoke_over_api(base_url: str, admin: str, key: NewApiKey) -> None:
    async with httpx.AsyncClient(base_url=base_url) as client:
        response = await client.post(
            "/graphql",
            headers={"Authorization": f"Bearer {admin}"},
            json={
                "query": "mutation($id: ID!) { revokeApiKey(id: $id) { errors { code } } }",
                "variables": {"id": to_global_id("ApiKey", str(key.record.id))},
            },
        )
    assert response.json()["data"]["revokeApiKey"]["errors"] == [], response.text


@pytest.fixture
async def admin(db: Database) -> str:
    return (await create_api_key(db, "admin", Role.ADMIN)).secret


@pytest.fixture
async def doomed(db: Database) -> NewApiKey:
    return await create_api_key(db, "doomed", Role.INTEGRATION)


async def test_revoking_a_key_through_the_api_closes_its_sockets_on_every_worker(
    db: Database, settings: Settings, backend: str, admin: str, doomed: NewApiKey
) -> None:
    async with (
        servers(settings, backend) as (first, second),
        subscriber(first, doomed.secret) as here,
        subscriber(second, doomed.secret, in_headers=True) as there,
        subscriber(first, admin) as bystander,
    ):
        await send(here, "1", CHANGES)
        await send(there, "1", CHANGES)
        await revoke_over_api(first, admin, doomed)
        for sub in (here, there):
            assert close_code(await closed_within(sub, 3)) == (
                4403,
                "UNAUTHENTICATED: the API key was revoked",
            )
        await send(bystander, "q", QUERY)  # another key's socket is untouched
        answer = await bystander.next()
        assert answer["type"] == "next" and "errors" not in answer["payload"], answer


async def test_a_key_revoked_outside_the_service_loses_its_socket_within_a_second(
    db: Database, settings: Settings, backend: str, doomed: NewApiKey
) -> None:
    """`c360 apikey revoke` writes the database from its own process: no API call is made."""
    async with (
        servers(settings, backend) as (_, second),
        subscriber(second, doomed.secret) as sub,
    ):
        await send(sub, "1", CHANGES)
        await revoke_api_key(db, doomed.record.id)
        assert close_code(await closed_within(sub, 3))[0] == 4403


async def test_an_operation_over_the_socket_of_a_revoked_key_is_refused(
    db: Database, settings: Settings, doomed: NewApiKey
) -> None:
    """Even before the periodic check notices (here: never), the operation re-checks."""
    app = create_app(
        settings.model_copy(update={"dispatcher": False, "ws_key_check_interval_seconds": 3600})
    )
    async with serve_asgi(app) as url, subscriber(url, doomed.secret) as sub:
        await send(sub, "before", QUERY)
        assert (await sub.next())["type"] == "next"
        assert (await sub.next())["type"] == "complete"
        await revoke_api_key(db, doomed.record.id)
        await send(sub, "after", QUERY)
        assert close_code(await closed_within(sub, 3))[0] == 4403


async def test_sockets_over_the_cap_of_their_key_are_refused_with_a_code(
    db: Database, settings: Settings, backend: str, admin: str, doomed: NewApiKey
) -> None:
    limits = {"ws_max_connections_per_key": 2}
    async with servers(settings, backend, **limits) as (first, second):
        async with subscriber(first, doomed.secret), subscriber(second, doomed.secret):
            with pytest.raises(ConnectionClosed) as refused:
                async with subscriber(first, doomed.secret):
                    pass
            code, reason = close_code(refused.value)
            assert code == 4429 and reason.startswith("TOO_MANY_CONNECTIONS"), reason
            async with subscriber(second, admin):  # the cap is per key
                pass
        # closed sockets give their slots back (released as each socket's handler ends)
        for _ in range(50):
            try:
                async with subscriber(second, doomed.secret), subscriber(first, doomed.secret):
                    return
            except ConnectionClosed:
                await asyncio.sleep(0.05)
        raise AssertionError("the slots of closed sockets were never given back")


async def test_operations_over_the_cap_of_their_key_get_an_error_with_a_code(
    db: Database, settings: Settings, backend: str, doomed: NewApiKey
) -> None:
    limits = {"ws_max_subscriptions_per_key": 1}
    async with (
        servers(settings, backend, **limits) as (first, second),
        subscriber(first, doomed.secret) as watching,
        subscriber(second, doomed.secret) as asking,
    ):
        for n in range(3):  # queries that finish give their slot back
            await send(asking, f"q{n}", QUERY)
            assert (await asking.next())["type"] == "next"
            assert (await asking.next())["type"] == "complete"
        await watching.subscribe({"kinds": ["customer.created"]})
        await until_live(first, doomed.secret, watching)

        await send(asking, "over", QUERY)
        refused = await asking.next()
        assert refused["type"] == "error" and refused["id"] == "over", refused
        assert [e["extensions"]["code"] for e in refused["payload"]] == ["TOO_MANY_SUBSCRIPTIONS"]

        await watching.socket.send(json.dumps({"id": "1", "type": "complete"}))
        for n in range(50):  # the completed subscription's slot comes back
            await send(asking, f"again{n}", QUERY)
            answer = await asking.next()
            if answer["type"] == "next":
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the completed subscription kept its slot")


async def test_a_rate_limited_operation_over_a_socket_gets_an_error_message(
    db: Database, settings: Settings, doomed: NewApiKey
) -> None:
    app = create_app(settings.model_copy(update={"dispatcher": False, "cost_budget_per_minute": 1}))
    async with serve_asgi(app) as url, subscriber(url, doomed.secret) as sub:
        await send(sub, "first", QUERY)  # a full bucket admits it; it is charged 1
        assert (await sub.next())["type"] == "next"
        assert (await sub.next())["type"] == "complete"
        for id, query in (("q", QUERY), ("s", CHANGES)):
            await send(sub, id, query)
            message = await sub.next()
            assert message["type"] == "error" and message["id"] == id, message
            [error] = message["payload"]
            assert error["extensions"]["code"] == "RATE_LIMITED"
            assert error["extensions"]["retryAfter"] > 0
