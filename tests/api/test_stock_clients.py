"""Stock GraphQL clients against a real server: gql over HTTP and over its websockets
transport (graphql-transport-ws). gql refuses a binary frame as a protocol error, as the
graphql-ws reference client and GraphiQL do, so these tests pin text frames."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Any

from gql import Client, GraphQLRequest, gql
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport

from api.app import create_app
from domain.access.keys import Role, create_api_key
from service.settings import Settings
from store.db import Database
from tests.servers import serve_asgi

FAST = {"dispatch_interval_seconds": 0.02, "trigger_interval_seconds": 3600.0}
CHANGES = gql('subscription { changes(kinds: ["customer.created"]) { kind customerId } }')
IDENTIFY = gql(
    """mutation($email: String!) {
      identify(input: {identities: [{type: "email", value: $email}]}) {
        customer { id } errors { code } } }"""
)
emails = (f"stock{n}@example.com" for n in itertools.count())


async def test_gql_subscribes_over_websockets_and_mutates_over_http(
    db: Database, settings: Settings
) -> None:
    key = (await create_api_key(db, "gql", Role.ADMIN)).secret
    app = create_app(settings.model_copy(update=FAST))
    async with serve_asgi(app) as url:
        socket = WebsocketsTransport(
            url=url.replace("http://", "ws://") + "/graphql",
            init_payload={"Authorization": f"Bearer {key}"},
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        )
        http = HTTPXAsyncTransport(url=url + "/graphql", headers={"Authorization": f"Bearer {key}"})
        events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        async with Client(transport=socket) as ws, Client(transport=http) as client:

            async def listen() -> None:
                async for result in ws.subscribe(CHANGES):
                    await events.put(result["changes"])

            listener = asyncio.create_task(listen())
            try:
                made: set[str] = set()
                for _ in range(50):  # until the subscription is live
                    request = GraphQLRequest(IDENTIFY, variable_values={"email": next(emails)})
                    answer = await client.execute(request)
                    assert answer["identify"]["errors"] == []
                    made.add(answer["identify"]["customer"]["id"])
                    with contextlib.suppress(TimeoutError):
                        event = await asyncio.wait_for(events.get(), 0.2)
                        break
                else:
                    raise AssertionError("no event reached gql's subscription")
            finally:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
    assert event["kind"] == "customer.created"
    assert event["customerId"] in made
