"""Bearer API keys: every GraphQL request names a key, except the GraphiQL page itself."""

from __future__ import annotations

from fastapi import HTTPException, status
from starlette.requests import HTTPConnection, Request

from api.context import AppState, request_db
from api.errors import UnavailableError, unavailable_answer
from domain.access.keys import Principal

UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def wants_graphiql(request: HTTPConnection) -> bool:
    """A browser opening /graphql gets the IDE page (which holds no data) without a key."""
    return (
        isinstance(request, Request)
        and request.method == "GET"
        and "text/html" in request.headers.get("accept", "")
        and "query" not in request.query_params
    )


def key_comes_later(request: HTTPConnection) -> bool:
    """A websocket may name its key in connection_init instead (api.graphql_router)."""
    return request.scope["type"] == "websocket" and "authorization" not in request.headers


async def principal_of(request: HTTPConnection) -> Principal | None:
    """The caller behind a request, or HTTP 401. None for the IDE page, and for a websocket
    that will name its key in connection_init."""
    if wants_graphiql(request) or key_comes_later(request):
        return None
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing API key: send `Authorization: Bearer <key>`",
            UNAUTHORIZED,
        )
    db = request_db(request)
    state: AppState = request.app.state.c360
    principal = None
    try:
        principal = await state.keys.authenticate(db, token)
    except Exception as error:
        unavailable = unavailable_answer(error, None)
        if unavailable is None:
            raise
        raise UnavailableError(*unavailable) from None
    finally:
        if principal is None:  # the request ends here: no context will give the connection back
            await db.close()
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "unknown or revoked API key", UNAUTHORIZED
        )
    return principal
