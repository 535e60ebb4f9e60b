"""The SQL statements an operation sends: counted for its log line, and traced as one span
each when tracing is on (service.tracing).

`count_statements()` starts a tally in a context variable; every statement sent from that
context (and from the tasks it starts, such as a DataLoader's batch, which copy it) adds one.
Transaction control (BEGIN, COMMIT, ...) is not a statement here. Nothing is counted outside
a tally, and nothing here ever changes a statement.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from opentelemetry.trace import Span, Status, StatusCode, Tracer
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

CONTROL = frozenset({"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"})
_SPAN = "_c360_span"


@dataclass(slots=True)
class Tally:
    statements: int = 0


_tally: ContextVar[Tally | None] = ContextVar("c360_statements", default=None)


def count_statements() -> Tally:
    """A new tally for the statements sent from this context from now on."""
    tally = Tally()
    _tally.set(tally)
    return tally


def _is_control(statement: str) -> bool:
    head = statement.lstrip()[:9].split(None, 1)
    return bool(head) and head[0].upper() in CONTROL


def watch_statements(engine: AsyncEngine, tracer: Tracer | None) -> None:
    """Count every statement `engine` sends into the current tally, and span it if `tracer`."""
    system = engine.dialect.name

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _before(
        _conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool
    ) -> None:
        if _is_control(statement):
            return
        tally = _tally.get()
        if tally is not None:
            tally.statements += 1
        if tracer is not None and context is not None:
            operation = statement.lstrip().split(None, 1)[0].upper() if statement else "SQL"
            attributes = {"db.system": system, "db.statement": statement}
            setattr(context, _SPAN, tracer.start_span(operation, attributes=attributes))

    if tracer is None:
        return

    @event.listens_for(engine.sync_engine, "after_cursor_execute")
    def _after(*args: Any) -> None:
        span: Span | None = getattr(args[4], _SPAN, None)
        if span is not None:
            span.end()

    @event.listens_for(engine.sync_engine, "handle_error")
    def _failed(exception_context: Any) -> None:
        context = exception_context.execution_context
        span: Span | None = getattr(context, _SPAN, None) if context is not None else None
        if span is not None:
            span.set_status(
                Status(StatusCode.ERROR, type(exception_context.original_exception).__name__)
            )
            span.end()


__all__ = ["Tally", "count_statements", "watch_statements"]
