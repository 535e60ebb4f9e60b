"""`changes` subscriptions end to end: the app under uvicorn on loopback, a websocket client
speaking graphql-transport-ws, mutations over HTTP. On PostgreSQL + Redis the subscribers and
the mutations are spread over two server processes sharing the database and Redis; on SQLite
(one process, in-process pub/sub) the same test runs against one server."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from api.app import create_app
from api.ids import to_global_id
from domain.access.keys import Role, create_api_key
from service.settings import Settings
from store.db import Database
from tests.servers import c360_env, c360_process, free_port, serve_asgi, wait_for_http

PROTOCOL = "graphql-transport-ws"
CHANGES = """
subscription($kinds: [String!], $customer: ID) {
  changes(kinds: $kinds, customer: $customer) { id kind customerId at data }
}"""
IDENTIFY = """
mutation($email: String!) {
  identify(input: {identities: [{type: "email", value: $email}]}) { customer { id } errors { code } }
}"""
FAST = {"dispatch_interval_seconds": 0.02, "trigger_interval_seconds": 3600.0}
emails = (f"person{n}@example.com" for n in itertools.count())


class Subscriber:
    """One graphql-transport-ws connection with one `changes` subscription."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket

    async def subscribe(self, variables: dict[str, Any]) -> None:
        payload = {"query": CHANGES, "variables": variables}
        await self.socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))

    async def next(self, timeout: float = 5) -> dict[str, Any]:
        """The next message of the subscription (pings answered on the way)."""
        while True:
            frame = await asyncio.wait_for(self.socket.recv(), timeout)
            assert isinstance(frame, str), f"graphql-transport-ws sent a binary frame: {frame!r}"
            message = json.loads(frame)
            if message["type"] == "ping":
                await self.socket.send(json.dumps({"type": "pong"}))
                continue
            return message  # type: ignore[no-any-return]

    async def event(self, timeout: float = 5) -> dict[str, Any]:
        message = await self.next(timeout)
        assert message["type"] == "next", message
        return message["payload"]["data"]["changes"]  # type: ignore[no-any-return]


@asynccontextmanager
async def subscriber(
    base_url: str, key: str | None, *, in_headers: bool = False
) -> AsyncIterator[Subscriber]:
    """Connected and acknowledged; the key goes in connection_init unless `in_headers`."""
    headers = {"Authorization": f"Bearer {key}"} if key and in_headers else {}
    init: dict[str, Any] = {"type": "connection_init"}
    if key and not in_headers:
        init["payload"] = {"Authorization": f"Bearer {key}"}
    url = base_url.replace("http://", "ws://") + "/graphql"
    async with connect(url, subprotocols=[PROTOCOL], additional_headers=headers) as socket:
        await socket.send(json.dumps(init))
        client = Subscriber(socket)
        ack = await client.next()
        assert ack["type"] == "connection_ack", ack
        yield client


async def identify(base_url: str, key: str, email: str) -> str:
    async with httpx.AsyncClient(base_url=base_url) as client:
        response = await client.post(
            "/graphql",
            json={"query": IDENTIFY, "variables": {"email": email}},
            headers={"Authorization": f"Bearer {key}"},
        )
    payload = response.json()["data"]["identify"]
    assert payload["errors"] == [], payload
    return payload["customer"]["id"]  # type: ignore[no-any-return]


@asynccontextmanager
async def servers(settings: Settings, backend: str) -> AsyncIterator[list[str]]:
    """Two API processes sharing PostgreSQL and Redis (this one and a `c360 serve`); on SQLite
    one server in this process, twice."""
    app = create_app(settings.model_copy(update=FAST))
    async with serve_asgi(app) as here:
        if backend != "postgresql":
            yield [here, here]
            return
        env = c360_env(
            settings.database_url, settings.redis_url, **{k: str(v) for k, v in FAST.items()}
        )
        port = free_port()
        with c360_process(["serve", "--port", str(port)], env) as other:
            there = f"http://127.0.0.1:{port}"
            await wait_for_http(there + "/healthz", other)
            yield [here, there]


async def until_live(base_url: str, key: str, *subscribers: Subscriber) -> None:
    """A subscription answers nothing when it starts: identify probes until every subscriber
    has seen one, then drop what the probes caused."""

    async def drained(sub: Subscriber) -> bool:
        seen = False
        with contextlib.suppress(TimeoutError):
            while True:
                await sub.event(timeout=0.15)
                seen = True
        return seen

    live = [False] * len(subscribers)
    for _ in range(50):
        await identify(base_url, key, next(emails))
        found = await asyncio.gather(*(drained(sub) for sub in subscribers))
        live = [was or now for was, now in zip(live, found, strict=True)]
        if all(live):
            return
    raise AssertionError("subscriptions never went live")


@pytest.fixture
async def key(db: Database) -> str:
    return (await create_api_key(db, "subscriber", Role.ADMIN)).secret


async def test_an_identify_on_one_worker_reaches_subscribers_on_every_worker_once(
    db: Database, settings: Settings, backend: str, key: str
) -> None:
    async with (
        servers(settings, backend) as (first, second),
        subscriber(first, key) as on_first,
        subscriber(second, key, in_headers=True) as on_second,
    ):
        for sub in (on_first, on_second):
            await sub.subscribe({"kinds": ["customer.created"]})
        await until_live(first, key, on_first, on_second)

        made = [await identify(second if n % 2 else first, key, next(emails)) for n in range(6)]
        got_first = [await on_first.event() for _ in made]
        got_second = [await on_second.event() for _ in made]
        for sub in (on_first, on_second):  # and nothing more: each event once
            with pytest.raises(TimeoutError):
                await sub.event(timeout=0.3)

    # Order is kept per customer; across customers, two dispatchers may publish in either
    # order, but every subscriber sees the one order the broker carried.
    assert sorted(e["customerId"] for e in got_first) == sorted(made)
    assert got_second == got_first
    assert {e["kind"] for e in got_first} == {"customer.created"}
    assert len({e["id"] for e in got_first}) == len(made)


async def move(base_url: str, key: str, email: str, city: str) -> None:
    """identify with a new city: a customer.updated event for that profile."""
    async with httpx.AsyncClient(base_url=base_url) as client:
        response = await client.post(
            "/graphql",
            headers={"Authorization": f"Bearer {key}"},
            json={
                "query": """mutation($e: String!, $t: JSON) {
                    identify(input: {identities: [{type: "email", value: $e}], traits: $t}) {
                    errors { code } } }""",
                "variables": {"e": email, "t": {"city": city}},
            },
        )
    assert response.json()["data"]["identify"]["errors"] == []


async def test_a_subscription_filtered_by_customer_sees_only_that_profile(
    db: Database, settings: Settings, key: str
) -> None:
    app = create_app(settings.model_copy(update=FAST))
    async with serve_asgi(app) as url, subscriber(url, key) as one:
        watched = await identify(url, key, "watched@example.com")
        await one.subscribe({"customer": watched})
        seen = []
        for n in range(50):  # until the subscription is live
            await identify(url, key, next(emails))
            await move(url, key, "watched@example.com", f"City {n}")
            with contextlib.suppress(TimeoutError):
                seen.append(await one.event(timeout=0.2))
                break
        await identify(url, key, next(emails))  # published before the move below
        await move(url, key, "watched@example.com", "Hangzhou")
        with contextlib.suppress(TimeoutError):
            while True:
                seen.append(await one.event(timeout=0.5))
    assert len(seen) >= 2
    assert {e["customerId"] for e in seen} == {watched}
    assert "customer.updated" in {e["kind"] for e in seen}
    assert watched == to_global_id("Customer", seen[-1]["data"]["customerId"])


async def test_a_websocket_without_a_valid_key_is_refused(db: Database, settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"dispatcher": False}))
    async with serve_asgi(app) as url:
        for key in (None, "c360_nope_nope"):
            with pytest.raises(ConnectionClosed) as closed:
                async with subscriber(url, key):
                    pass
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
        with pytest.raises(InvalidStatus) as refused:  # a bad key in the upgrade request
            async with subscriber(url, "c360_nope_nope", in_headers=True):
                pass
        assert refused.value.response.status_code == 401


async def test_a_partner_may_not_subscribe_to_birthdays(db: Database, settings: Settings) -> None:
    partner = (await create_api_key(db, "partner", Role.PARTNER)).secret
    app = create_app(settings.model_copy(update={"dispatcher": False}))
    async with serve_asgi(app) as url, subscriber(url, partner) as sub:
        await sub.subscribe({"kinds": ["customer.birthday"]})
        message = await sub.next()
    assert message["type"] == "next"
    [error] = message["payload"]["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN"
