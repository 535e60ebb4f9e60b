"""What an HTTP request to the API may carry: its size, its encoding and the shape of its JSON.

- `BodyLimit`, an ASGI middleware: a body over C360_MAX_BODY_BYTES gets HTTP 413
  REQUEST_TOO_LARGE before the rest of it is read (a `Content-Length` over the limit is refused
  before any of it; a chunked body is counted as it arrives). A body within the limit is read
  whole and handed on: the GraphQL view reads it whole anyway.
- `decode_json` and `check_request`, used by api.graphql_router: a body (or a GET request's
  `variables`) that is not UTF-8, not JSON, nested deeper than MAX_JSON_DEPTH, holds NaN or
  Infinity or a number no float can hold, or a lone surrogate in any text, and a request whose
  `operationName` is not a string, is refused with HTTP 400 BAD_REQUEST.

Every refusal is a GraphQL-shaped JSON body, `{"errors": [{"message", "extensions": {"code"}}]}`,
never a 500 and never plain text. This module must never read more than the limit of a body.
"""

from __future__ import annotations

import json

from cross_web import HTTPException

from api.metrics import count_refusal
from api.request_ids import ASGIApp, Message, Receive, Scope, Send, request_id_of

# JSON nesting (objects and lists) a request may hold: a condition tree nests two levels per
# `and`/`or`, far below this; deeper is a probe, and would reach Python's recursion limit.
MAX_JSON_DEPTH = 64

CODES = {
    400: "BAD_REQUEST",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    413: "REQUEST_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


def code_of(status: int) -> str:
    return CODES.get(status, "BAD_REQUEST" if status < 500 else "HTTP_ERROR")


def error_body(status: int, message: str, request_id: str | None = None) -> bytes:
    code = code_of(status)
    extensions = {"code": code, "requestId": request_id} if request_id else {"code": code}
    return json.dumps({"errors": [{"message": message, "extensions": extensions}]}).encode()


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._too_large(scope, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        whole = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([whole], receive), send)

    async def _too_large(self, scope: Scope, send: Send) -> None:
        message = f"the request body is larger than {self.max_bytes} bytes"
        body = error_body(413, message, request_id_of(scope))
        count_refusal(scope, code_of(413))
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed one; counted as it comes otherwise
    return None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


def decode_json(data: str | bytes) -> object:
    """JSON in UTF-8, nested within MAX_JSON_DEPTH."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise HTTPException(400, "the request body is not valid UTF-8") from error
    try:
        # NaN, Infinity and 1e400 (read as infinity) are values, not syntax: they reach the
        # operation, whose value checks refuse them with the field's path (domain.values)
        value = json.loads(data)
    except RecursionError as error:
        raise HTTPException(400, f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from error
    except json.JSONDecodeError:
        raise  # the view answers "Unable to parse request body as JSON"
    except ValueError as error:  # an integer of more digits than Python converts
        raise HTTPException(400, "the request holds a number too large to represent") from error
    if not isinstance(value, dict | list):
        raise HTTPException(400, "the request must be a JSON object")
    check_json(value)
    return value


def check_json(value: object) -> None:
    """No nesting deeper than MAX_JSON_DEPTH; iterative, so any depth is refused without
    recursion."""
    pending: list[tuple[object, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise HTTPException(400, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
            inner = item.values() if isinstance(item, dict) else item
            pending.extend((value, depth + 1) for value in inner)


def _check_text(text: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise HTTPException(400, "text may not hold a lone surrogate") from error


def check_request(query: object, variables: object, operation_name: object) -> None:
    """What strawberry leaves unchecked in a request it has parsed (a GET request's too)."""
    if not isinstance(operation_name, str | None):
        raise HTTPException(400, "`operationName` must be a string or null, if provided.")
    for text in (query, operation_name):
        if isinstance(text, str):
            _check_text(text)  # in variables, a lone surrogate is refused with its field's path
    check_json(variables)


__all__ = ["BodyLimit", "check_request", "decode_json", "error_body"]
