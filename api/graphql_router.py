"""The GraphQL router, with websocket connections authenticated like HTTP requests, and a
deadline on each HTTP request's execution.

A graphql-transport-ws client names its key in the upgrade request's `Authorization` header,
or — browsers cannot set headers on a websocket — in the connection_init payload
`{"Authorization": "Bearer <key>"}`. Without a valid key there is no connection_ack (the
socket closes with 4403), and nothing can be subscribed to or executed over it.

An HTTP request executes for at most C360_REQUEST_TIMEOUT_SECONDS: the execution checks the
deadline as objects complete (api.execution), and an asyncio timeout cuts short whatever it
awaits (a database statement is cancelled on the server with it, and its transaction rolled
back). Either way the answer is one TIMEOUT error, never a 500.

Every graphql-transport-ws message goes out as a text frame: the protocol says so, and stock
clients (gql, graphql-ws, GraphiQL) drop binary frames. `encode_json` returns orjson's bytes,
which strawberry's adapter would send as binary; `_TextFrames` sends them as text.

A request the view cannot read (api.request_body says what it may be) gets HTTP 400 with a
GraphQL-shaped JSON body and a code, as every other refusal of the view (405, 404, 406): never
a 500 and never plain text. The media type of the answer, its status code and whether it has a
`data` entry follow the GraphQL-over-HTTP specification (api.http_media). With read replicas,
the answer says where its reads went (`X-Read-Source`) and carries the consistency token a
mutation returned (`X-Consistency-Token`, api.read_routing).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.exceptions import ConnectionRejectionError
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData, process_result
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from api import graphiql, json_text
from api.auth import bearer_token, wants_graphiql
from api.context import CONSISTENCY_HEADER, READ_SOURCE_HEADER, Context
from api.execution import DeadlineExceeded
from api.http_media import GRAPHQL_RESPONSE, JSON, content_type, is_request_error, negotiate
from api.metrics import count_refusal
from api.request_body import check_request, code_of, decode_json, error_body
from api.request_ids import request_id_of
from api.websockets import KeyedTransportWSHandler
from domain.access.keys import authenticate

log = logging.getLogger("c360.api")


def _authorization(params: Any) -> str | None:
    if not isinstance(params, dict):
        return None
    value = params.get("Authorization", params.get("authorization"))
    return value if isinstance(value, str) else None


class _TextFrames(ASGIWebSocketAdapter):
    """graphql-transport-ws messages as text frames, whatever `encode_json` returns."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        try:
            await self.ws.send_text(self.view.encode_json_string(message))
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


def _refusal(
    request: Request,
    status: int,
    message: str,
    media: str,
    headers: dict[str, str] | None = None,
) -> Response:
    count_refusal(request.scope, code_of(status))
    return Response(
        error_body(status, message, request_id_of(request.scope)),
        status_code=status,
        headers=headers,
        media_type=content_type(media),
    )


def _routing_headers(request: Request, response: Response) -> None:
    """Where the request's reads went and, after a mutation, its consistency token
    (api.read_routing): only when there are replicas to route to."""
    db = getattr(request.state, "c360_db", None)
    if db is None or db.replicas is None:
        return
    response.headers[READ_SOURCE_HEADER] = db.read_source
    token = getattr(db, "consistency_token", None)
    if token:
        response.headers[CONSISTENCY_HEADER] = token


class KeyedGraphQLRouter(GraphQLRouter[Context, None]):
    graphql_transport_ws_handler_class = KeyedTransportWSHandler
    websocket_adapter_class = _TextFrames  # type: ignore[assignment]

    async def run(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(request, Request) or wants_graphiql(request):
            return await super().run(request, *args, **kwargs)  # a websocket, or the IDE page
        media = negotiate(request.headers.get("accept"))
        if media is None:
            message = f"answers are {GRAPHQL_RESPONSE} or {JSON}: accept one of them"
            return _refusal(request, 406, message, JSON)
        try:
            response = await super().run(request, *args, **kwargs)
        except HTTPException as error:
            if isinstance(error.__cause__, InvalidOperationTypeError) and request.method == "GET":
                return _refusal(request, 405, error.reason, media, {"Allow": "POST"})
            return _refusal(request, error.status_code, error.reason, media)
        response.headers["content-type"] = content_type(media)
        _routing_headers(request, response)
        request_error = getattr(request.state, "c360_request_error", False)
        if media == GRAPHQL_RESPONSE and request_error and response.status_code == 200:
            response.status_code = 400
        return response

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        """A request error has no `data` entry at all (never `"data": null`)."""
        body = process_result(result)
        if is_request_error(result):
            body.pop("data", None)
            request.state.c360_request_error = True
        return body

    @property
    def graphql_ide_html(self) -> str:
        """GraphiQL from the service's own assets (api.graphiql), never a CDN."""
        return graphiql.page()

    def decode_json(self, data: str | bytes) -> object:
        return decode_json(data)

    async def parse_http_body(self, request: Any) -> Any:
        parsed = await super().parse_http_body(request)
        for item in parsed if isinstance(parsed, list) else [parsed]:
            assert isinstance(item, GraphQLRequestData)
            check_request(item.query, item.variables, item.operation_name)
        return parsed

    async def execute_single(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        context = kwargs["context"]
        timeout = context.settings.request_timeout_seconds
        context.deadline = time.monotonic() + timeout
        try:
            async with asyncio.timeout(timeout):
                return await super().execute_single(*args, **kwargs)
        except TimeoutError:
            log.warning("request %s cut short at its deadline", context.request_id)
            return ExecutionResult(data=None, errors=[DeadlineExceeded()])

    def encode_json(self, data: object) -> str | bytes:
        """api.json_text's: compiled answers spliced in as they are."""
        return json_text.encode(data)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        if context.principal is None:
            token = bearer_token(_authorization(context.connection_params))
            context.principal = await authenticate(context.db, token) if token else None
        if context.principal is None:
            raise ConnectionRejectionError(
                {
                    "code": "UNAUTHENTICATED",
                    "message": "send `Authorization: Bearer <key>`",
                    "requestId": context.request_id,
                }
            )
        return UNSET
