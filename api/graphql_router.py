"""The GraphQL router, with websocket connections authenticated like HTTP requests.

A graphql-transport-ws client names its key in the upgrade request's `Authorization` header,
or — browsers cannot set headers on a websocket — in the connection_init payload
`{"Authorization": "Bearer <key>"}`. Without a valid key there is no connection_ack (the
socket closes with 4403), and nothing can be subscribed to or executed over it.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from strawberry.exceptions import ConnectionRejectionError
from strawberry.fastapi import GraphQLRouter
from strawberry.types.unset import UNSET, UnsetType

from api.auth import bearer_token
from api.context import Context
from api.websockets import KeyedTransportWSHandler
from domain.access import authenticate


def _authorization(params: Any) -> str | None:
    if not isinstance(params, dict):
        return None
    value = params.get("Authorization", params.get("authorization"))
    return value if isinstance(value, str) else None


class KeyedGraphQLRouter(GraphQLRouter[Context, None]):
    graphql_transport_ws_handler_class = KeyedTransportWSHandler

    def encode_json(self, data: object) -> str | bytes:
        """orjson, several times faster than json on a page of profiles; json still takes
        what orjson refuses (integers beyond 64 bits in a custom attribute)."""
        try:
            return orjson.dumps(data)
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            return json.dumps(data, separators=(",", ":"))

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        if context.principal is None:
            token = bearer_token(_authorization(context.connection_params))
            context.principal = await authenticate(context.db, token) if token else None
        if context.principal is None:
            raise ConnectionRejectionError(
                {"code": "UNAUTHENTICATED", "message": "send `Authorization: Bearer <key>`"}
            )
        return UNSET
