"""Websockets held to their API key for as long as they live, and capped per key.

A socket is authenticated once, at connection_init (api.graphql_router); a key revoked after
that must not keep it. Each process keeps a `SocketRegistry` (api.sockets) of its open sockets
by key:

- `revokeApiKey` closes the key's sockets in its own process at once (`close_key`);
- a watcher re-checks the keys of the process's open sockets against the database every
  `ws_key_check_interval_seconds` (one indexed query per tick, only while sockets are open).
  That covers revocations made by another worker or by `c360 apikey revoke`, with or without
  Redis, within the interval;
- every operation sent over a socket re-checks its key before it runs.

The socket of a revoked key has its operations cancelled and is closed with 4403, reason
`UNAUTHENTICATED: …`. Caps per key (store.slots: across workers with Redis, per process
without):

    TOO_MANY_CONNECTIONS    over `ws_max_connections_per_key`: closed with 4429 instead of
                            acknowledged
    TOO_MANY_SUBSCRIPTIONS  over `ws_max_subscriptions_per_key` operations running at once
                            over the key's sockets: the operation gets an `error` message

A refusal raised before execution (RATE_LIMITED, QUERY_TOO_COSTLY, …, from api.limits) reaches
the client as an `error` message carrying its code, where strawberry would send a bare
`complete`. This module never authenticates: it only holds sockets to what was authenticated.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import TYPE_CHECKING, Any

import structlog
from graphql import GraphQLError
from starlette.requests import ClientDisconnect
from starlette.websockets import WebSocketDisconnect
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    Message,
)

from api.context import Context
from api.sockets import SocketRegistry
from domain.access.keys import inactive_keys
from store.db import is_unavailable

if TYPE_CHECKING:
    from strawberry.schema.schema import StreamResult

log = structlog.get_logger("c360.websockets")

CLOSE_UNAUTHENTICATED = 4403
CLOSE_TOO_MANY_CONNECTIONS = 4429
REVOKED_REASON = "UNAUTHENTICATED: the API key was revoked"


class _Refused(Exception):
    """The socket is closed with `close_code` and `reason` instead of acknowledged."""

    def __init__(self, close_code: int, reason: str) -> None:
        super().__init__(reason)
        self.close_code = close_code
        self.reason = reason


def _name_request(message: Any, request_id: str) -> None:
    payload = message.get("payload")
    errors = payload if message["type"] == "error" else (payload or {}).get("errors")
    for error in errors or ():
        if isinstance(error, dict):
            error["extensions"] = {**(error.get("extensions") or {}), "requestId": request_id}


def _coded(code: str, message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


class KeyedTransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws, with each socket registered under its key while it is open."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.socket_id = uuid.uuid4().hex
        self.key_id: uuid.UUID | None = None  # set once admitted

    @property
    def registry(self) -> SocketRegistry:
        return self.context.state.sockets

    async def send_message(self, message: Message) -> None:
        """The ack is where a socket is admitted: it counts against its key's cap from then.
        Every error sent names the socket's request id (its handshake's X-Request-Id)."""
        if message["type"] == "connection_ack" and self.key_id is None:
            await self._admit()
        if message["type"] in ("error", "next"):
            _name_request(message, self.context.request_id)
        await super().send_message(message)

    async def handle_task_exception(self, error: Exception) -> None:
        """A client gone mid-operation is no error of the service: one info line."""
        if isinstance(error, WebSocketDisconnected | WebSocketDisconnect | ClientDisconnect):
            log.info("websocket client disconnected mid-operation")
            return
        await super().handle_task_exception(error)

    async def _admit(self) -> None:
        principal = self.context.principal
        assert principal is not None  # on_ws_connect refused the socket otherwise
        if not await self.registry.admit(self, principal.key_id):
            cap = self.context.settings.ws_max_connections_per_key
            raise _Refused(
                CLOSE_TOO_MANY_CONNECTIONS,
                f"TOO_MANY_CONNECTIONS: at most {cap} open websockets per key",
            )
        self.key_id = principal.key_id
        self.context.state.metrics.websockets.inc()

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        try:
            await super().handle_connection_init(message)
        except _Refused as refused:
            await self.websocket.close(code=refused.close_code, reason=refused.reason)

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        key_id = self.key_id
        assert key_id is not None  # strawberry runs nothing before the ack
        try:
            revoked = bool(await inactive_keys(self.context.db, [key_id]))
        except Exception as error:
            if not is_unavailable(error):
                raise
            message = "the service is unavailable; try again shortly"
            await operation.send_initial_errors([_coded("SERVICE_UNAVAILABLE", message)])
            return
        if revoked:
            self.operations.pop(operation.id, None)  # lest closing cancel this very task
            await self.close_revoked()
            return
        member = f"{self.socket_id}:{uuid.uuid4().hex}"
        if not await self.registry.start_operation(key_id, member):
            cap = self.context.settings.ws_max_subscriptions_per_key
            refusal = _coded(
                "TOO_MANY_SUBSCRIPTIONS",
                f"at most {cap} operations at once over one key's websockets",
            )
            await operation.send_initial_errors([refusal])
            return
        try:
            await super().run_operation(operation)
        finally:
            await self.registry.end_operation(key_id, member)

    async def _send_result_stream(
        self, operation: Operation[Context, None], result_source: StreamResult
    ) -> None:
        """A refusal raised by an extension hook (api.limits) escapes strawberry's stream;
        it is answered as the operation's `error` message, with its code."""
        try:
            await super()._send_result_stream(operation, result_source)
        except GraphQLError as error:
            await operation.send_initial_errors([error])

    async def close_revoked(self) -> None:
        for operation_id in list(self.operations):
            await self.cleanup_operation(operation_id)
        with contextlib.suppress(Exception):  # the client may be gone already
            await self.websocket.close(code=CLOSE_UNAUTHENTICATED, reason=REVOKED_REASON)

    async def shutdown(self) -> None:
        """The socket is gone (the client closed it or vanished): one info line, saying how
        many of its operations were still running; they are cancelled, never errors."""
        running = len(self.operations)
        if self.connection_acknowledged:
            log.info("websocket closed", running_operations=running)
        try:
            await super().shutdown()
        finally:
            if self.key_id is not None:
                self.context.state.metrics.websockets.dec()
                await self.registry.leave(self, self.key_id)
