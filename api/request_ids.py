"""Request ids: every HTTP response and websocket handshake carries `X-Request-Id`, and every
log line written while the request runs carries it too (structlog's context variables).

`RequestIds` is the outermost middleware, so refusals made by other middleware (413 from
api.request_body) carry the header as well. A client may send its own id (a proxy's, to tie
the logs together); one that is not 1-128 characters of letters, digits and `-_.:` is ignored
and a new one made, lest a log line or a header carry what the client injected. The id lives in
the ASGI scope's state (`request_id_of`), where api.context and the error answers read it.

A client that disconnects before its body has arrived (starlette's `ClientDisconnect`) is
logged here as one info line: it is not an error of the service, and there is no one to answer.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import structlog
from starlette.requests import ClientDisconnect

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HEADER = b"x-request-id"
_ACCEPTABLE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_STATE_KEY = "c360_request_id"

log = structlog.get_logger("c360.api")


def request_id_of(scope: MutableMapping[str, Any]) -> str | None:
    """The id `RequestIds` gave this request (None outside the middleware)."""
    return scope.get("state", {}).get(_STATE_KEY)  # type: ignore[no-any-return]


def _incoming(scope: Scope) -> str | None:
    for name, value in scope.get("headers") or ():
        if name == HEADER:
            text = value.decode("latin-1")
            return text if _ACCEPTABLE.fullmatch(text) else None
    return None


class RequestIds:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = _incoming(scope) or uuid.uuid4().hex
        scope.setdefault("state", {})[_STATE_KEY] = request_id
        header = (HEADER, request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                headers = [h for h in message.get("headers") or () if h[0].lower() != HEADER]
                message["headers"] = [*headers, header]
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except ClientDisconnect:
                log.info("client disconnected", path=scope.get("path"))


__all__ = ["RequestIds", "request_id_of"]
