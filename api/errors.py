"""Where errors become answers, in one place.

- A DomainError in a mutation becomes `errors: [UserError]` in its payload (`user_errors`).
- A DomainError in a query becomes a GraphQL error with `extensions.code` and `field`.
- Anything else is a bug: logged with its stack and a request id, answered as INTERNAL_ERROR
  with that id and nothing more (no message, no SQL, no host names).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from domain.errors import DomainError

log = logging.getLogger("c360.api")


class ErrorShaping(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if not result or not result.errors:
            return
        request_id = getattr(self.execution_context.context, "request_id", None)
        result.errors = [self._shape(error, request_id) for error in result.errors]

    @staticmethod
    def _shape(error: GraphQLError, request_id: str | None) -> GraphQLError:
        original = error.original_error
        if original is None or isinstance(original, GraphQLError):
            return error  # a validation or parse error: the message is meant for the client
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
