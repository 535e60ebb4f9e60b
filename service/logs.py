"""Logging: structlog over the standard library, so that our lines, uvicorn's and every
library's come out alike, one JSON object per line (or coloured lines for a terminal, with
C360_LOG_FORMAT=console).

Each line carries the context variables bound while it was written: api.request_ids binds the
request id, api.operation_log the key's id. A traceback is printed only for what logs one with
`exc_info` (a genuine INTERNAL_ERROR, api.errors); client mistakes are logged without one.
Called by the app factory and by `c360 serve` before uvicorn starts; calling it again replaces
the handler it installed rather than adding another.
"""

from __future__ import annotations

import logging
import sys
from typing import IO, Any

import structlog

from service.settings import Settings

_HANDLER_NAME = "c360"


def _drop_colours(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """uvicorn adds a copy of its message with terminal colour codes: noise in a log line."""
    event.pop("color_message", None)
    return event


_SHARED: list[Any] = [
    _drop_colours,
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure_logging(settings: Settings, stream: IO[str] | None = None) -> None:
    """Route every logger to one handler on the root logger, rendering as `settings` says."""
    renderer: Any
    if settings.log_format == "console":
        renderer = structlog.dev.ConsoleRenderer()
    else:
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_SHARED, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info
            if settings.log_format == "json"
            else structlog.processors.StackInfoRenderer(),
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    # uvicorn's loggers write through the root handler (`serve` passes log_config=None).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True


__all__ = ["configure_logging"]
