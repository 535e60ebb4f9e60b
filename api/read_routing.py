"""Which server an operation reads from, and the consistency token a mutation hands back.

The request's reads start on a replica when there are replicas (store.db.RequestReads picks
one at the first read, the key lookup). Once the operation is known to be a mutation or a
subscription, its reads move to the primary: a mutation reads back what it wrote, and a
subscription follows changes the primary announces. After a mutation, the primary's WAL
position goes back to the client as a consistency token, in the result's `extensions` and the
`X-Consistency-Token` header (api.graphql_router); a request that sends it back is read from
a replica only once that replica has replayed up to it (README, Read replicas).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

log = logging.getLogger("c360.api")


class ReadRouting(SchemaExtension):
    _token: str | None = None

    async def on_execute(self) -> AsyncIterator[None]:  # type: ignore[override]
        context = self.execution_context.context
        try:
            operation = self.execution_context.operation_type
        except RuntimeError:  # no document: nothing executes
            operation = None
        if operation is not None and operation is not OperationType.QUERY:
            await context.db.pin_primary()
        yield
        if operation is OperationType.MUTATION:
            try:
                self._token = await context.db.write_position()
            except Exception as error:  # the write stands; only the token is missing
                log.warning("no consistency token for request %s: %s", context.request_id, error)

    def get_results(self) -> dict[str, Any]:
        return {"consistencyToken": self._token} if self._token else {}
