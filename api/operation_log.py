"""One log line, one latency observation and one span per GraphQL operation.

The line (structlog, service.logs) carries the request id (bound by api.request_ids), the
key's id (never its secret), the operation's name and type, its duration in milliseconds, the
SQL statements it sent (store.statements), its cost (api.costs) and its outcome: `ok`, or
`error` with the codes of its errors. A client's mistake is an info line without a traceback;
only an INTERNAL_ERROR is logged at error level, and its traceback is written once, where
api.errors shapes it. The same figures go to the metrics (api.metrics) and, when tracing is
on (service.tracing), to a span named for the operation, parent of its statements' spans.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import structlog
from graphql import GraphQLError
from opentelemetry.trace import Span, Status, StatusCode
from strawberry.extensions import SchemaExtension

from api import costs
from store.statements import count_statements

log = structlog.get_logger("c360.operations")


def error_codes(errors: list[GraphQLError] | None) -> list[str]:
    return [str((error.extensions or {}).get("code", "INTERNAL_ERROR")) for error in errors or ()]


class OperationLog(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        started = time.perf_counter()
        tally = count_statements()
        tracer = context.state.tracer
        principal = context.principal
        key_id = str(principal.key_id) if principal is not None else None
        bound = structlog.contextvars.bind_contextvars(key_id=key_id)
        spanning = (
            tracer.start_as_current_span("graphql.operation", end_on_exit=True)
            if tracer is not None
            else contextlib.nullcontext()
        )
        raised: list[GraphQLError] = []
        try:
            with spanning as span:
                try:
                    yield
                except GraphQLError as error:  # a hook refused it; api.errors shaped it
                    raised.append(error)
                    raise
                finally:
                    errors = raised or getattr(self.execution_context.result, "errors", None)
                    codes = error_codes(errors)
                    name, kind = self._name_and_type()
                    if span is not None:
                        _describe(span, name, kind, codes)
        finally:
            seconds = time.perf_counter() - started
            context.state.metrics.observe_operation(name, kind, seconds, codes)
            _log_line(key_id, name, kind, seconds, tally.statements, codes)
            structlog.contextvars.reset_contextvars(**bound)

    def _name_and_type(self) -> tuple[str | None, str]:
        """The operation's name and type; `unknown` when the document did not parse."""
        try:
            kind = self.execution_context.operation_type.value
        except Exception:  # strawberry parses here when nothing did before: a broken document
            return self.execution_context.operation_name, "unknown"
        return self.execution_context.operation_name, kind


def _log_line(
    key_id: str | None,
    name: str | None,
    kind: str,
    seconds: float,
    statements: int,
    codes: list[str],
) -> None:
    fields: dict[str, Any] = {
        "key_id": key_id,
        "operation_name": name,
        "operation_type": kind,
        "duration_ms": round(seconds * 1000, 2),
        "statements": statements,
        "outcome": "error" if codes else "ok",
    }
    cost = costs.current()  # measured and settled by api.limits
    if cost is not None:
        fields["cost"] = cost.as_log()
    if codes:
        fields["error_codes"] = sorted(set(codes))
    level = log.error if "INTERNAL_ERROR" in codes else log.info
    level("graphql operation", **fields)


def _describe(span: Span, name: str | None, kind: str, codes: list[str]) -> None:
    span.update_name(f"{kind} {name}" if name else kind)
    span.set_attribute("graphql.operation.type", kind)
    if name:
        span.set_attribute("graphql.operation.name", name)
    if codes:
        span.set_attribute("graphql.error.codes", sorted(set(codes)))
        span.set_status(Status(StatusCode.ERROR, ", ".join(sorted(set(codes)))))


__all__ = ["OperationLog", "error_codes"]
