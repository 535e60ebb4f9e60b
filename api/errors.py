"""Where errors become answers, in one place.

- A DomainError in a mutation becomes `errors: [UserError]` in its payload (api.payloads).
- A DomainError in a query becomes a GraphQL error with `extensions.code` and `field`.
- The database being unreachable (or refusing connections: too many clients, login refused)
  becomes SERVICE_UNAVAILABLE (HTTP 503): retry later. So does a database that lacks tables
  or columns of this code's schema, with `reason: NOT_MIGRATED` and the head revision it
  must be migrated to; `/readyz` names every missing revision.
- Parse and validation errors keep their message and get GRAPHQL_PARSE_FAILED /
  GRAPHQL_VALIDATION_FAILED unless a limit (api.limits) gave them a code.
- Anything else is a bug: logged with its stack and a request id, answered as INTERNAL_ERROR
  with that id and nothing more (no message, no SQL, no host names).
- Every error carries `requestId` in its extensions: the `X-Request-Id` of its response
  (api.request_ids), or of the websocket's handshake.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from fastapi import HTTPException, status
from graphql import GraphQLError, GraphQLSyntaxError
from starlette.responses import Response
from strawberry.extensions import SchemaExtension

from domain.errors import DomainError
from store.db import is_not_migrated, is_unavailable
from store.migrate import head_revisions

log = logging.getLogger("c360.api")


class ErrorShaping(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        try:
            yield
        except GraphQLError as error:
            # Raised by a hook (api.limits, the parser cache on a syntax error) before there
            # is a result: strawberry answers with the error that leaves here.
            raise self._shape_all([error])[0] from None
        self._shape_errors(self.execution_context.result)

    def on_stream_result(self, result: Any) -> Iterator[None]:
        """Each result of a subscription (and anything sent over a websocket) alike."""
        self._shape_errors(result)
        yield

    def _shape_errors(self, result: Any) -> None:
        if result and getattr(result, "errors", None):
            result.errors = self._shape_all(result.errors)

    def _shape_all(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        context = self.execution_context.context
        request_id = getattr(context, "request_id", None)
        shaped = [with_request_id(self._shape(error, request_id), request_id) for error in errors]
        response = getattr(context, "response", None)
        codes = {(error.extensions or {}).get("code") for error in shaped}
        if isinstance(response, Response) and "SERVICE_UNAVAILABLE" in codes:
            response.status_code = 503
        return shaped

    @staticmethod
    def _shape(error: GraphQLError, request_id: str | None) -> GraphQLError:
        original = error.original_error
        if original is None or isinstance(original, GraphQLError):
            return _coded(error)  # a validation or parse error: the message is meant for the client
        unavailable = unavailable_answer(original, request_id)
        if unavailable is not None:
            message, extensions = unavailable
            return GraphQLError(message, nodes=error.nodes, path=error.path, extensions=extensions)
        if isinstance(original, DomainError):
            extensions = {"code": original.code}
            if original.field:
                extensions["field"] = list(original.field)  # type: ignore[assignment]
            return GraphQLError(
                original.message, nodes=error.nodes, path=error.path, extensions=extensions
            )
        log.error("unexpected error [request %s]", request_id, exc_info=original)
        return GraphQLError(
            "Internal error",
            nodes=error.nodes,
            path=error.path,
            extensions={"code": "INTERNAL_ERROR", "requestId": request_id},
        )


class UnavailableError(HTTPException):
    """HTTP 503 before GraphQL runs (the key lookup), carrying the GraphQL error's extensions."""

    def __init__(self, message: str, extensions: dict[str, Any]) -> None:
        super().__init__(status.HTTP_503_SERVICE_UNAVAILABLE, message)
        self.extensions = extensions


def unavailable_answer(
    error: BaseException, request_id: str | None
) -> tuple[str, dict[str, Any]] | None:
    """The message and extensions of SERVICE_UNAVAILABLE when `error` says the database can't
    serve (unreachable, refusing connections, or not migrated); None for any other error."""
    if is_not_migrated(error):
        head = ", ".join(head_revisions())
        log.error("database not migrated [request %s]: %s", request_id, error)
        message = f"The database is not migrated to {head}; run `c360 migrate`"
        return message, {
            "code": "SERVICE_UNAVAILABLE",
            "reason": "NOT_MIGRATED",
            "requestId": request_id,
        }
    if is_unavailable(error):
        log.warning("database unavailable [request %s]: %s", request_id, error)
        return "The service is unavailable; try again shortly", {
            "code": "SERVICE_UNAVAILABLE",
            "requestId": request_id,
        }
    return None


def with_request_id(error: GraphQLError, request_id: str | None) -> GraphQLError:
    """Every error names the request it answers (the `X-Request-Id` of its response), so a
    client's report can be found in the logs."""
    if request_id is not None:
        error.extensions = {**(error.extensions or {}), "requestId": request_id}
    return error


def _coded(error: GraphQLError) -> GraphQLError:
    """Every error carries a code; graphql-core's own parse and validation errors have none."""
    if (error.extensions or {}).get("code"):
        return error
    syntax = isinstance(error, GraphQLSyntaxError)
    code = "GRAPHQL_PARSE_FAILED" if syntax else "GRAPHQL_VALIDATION_FAILED"
    error.extensions = {**(error.extensions or {}), "code": code}
    return error
