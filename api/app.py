"""The app factory: `create_app(settings)` builds everything; importing this module does nothing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from opentelemetry.sdk.trace import TracerProvider
from redis.asyncio import Redis
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from api.auth import principal_of
from api.context import AppState, Context, request_db
from api.errors import unavailable_answer
from api.graphiql import mount_assets
from api.graphql_router import KeyedGraphQLRouter
from api.metrics import count_refusal, mount_metrics
from api.request_body import BodyLimit
from api.request_ids import RequestIds, request_id_of
from api.schema.root import build_schema
from domain.access.keys import Principal
from domain.changes import outbox_backlog
from domain.derived import marks as derived
from domain.derived.batches import wait_for_derived
from service.deriving import DerivedWorker
from service.dispatcher import Dispatcher
from service.logs import configure_logging
from service.periodic import (
    keep_event_partitions_every,
    scan_duplicates_every,
    sweep_lifecycle_every,
    sweep_tags_every,
)
from service.settings import Settings
from service.tracing import tracer_provider
from store.db import Database
from store.migrate import migration_status
from store.pubsub import changes_channel, create_broker
from store.statements import watch_statements
from store.types import utcnow

log = logging.getLogger("c360.api")
WAIT_HEADER = "x-derived-state"  # `wait`: read-your-writes (domain.derived)


def create_app(
    settings: Settings | None = None, *, tracing: TracerProvider | None = None
) -> FastAPI:
    """`tracing`: spans go to this provider instead of the one C360_TRACING names (tests)."""
    settings = settings or Settings()
    configure_logging(settings)
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    provider = tracing or tracer_provider(settings)
    state = AppState(
        settings=settings,
        db=Database.from_url(
            settings.database_url,
            echo=settings.sql_echo,
            replica_urls=settings.replica_urls,
            max_lag_seconds=settings.replica_max_lag_seconds,
            check_seconds=settings.replica_check_interval_seconds,
            wait_seconds=settings.replica_wait_seconds,
        ),
        redis=redis,
        broker=create_broker(redis, changes_channel(settings.database_url)),
        tracer=provider.get_tracer("c360") if provider is not None else None,
    )
    state.db.settle_writes = settings.derived_state_inline
    watch_statements(state.db.engine, state.tracer)
    state.metrics.watch_pool(state.db.engine)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        dispatcher = None
        if settings.dispatcher:
            dispatcher = asyncio.create_task(
                Dispatcher(state.db, state.broker, settings).run(), name="c360-dispatcher"
            )
        deriving = None
        if settings.derived_worker:
            deriving = asyncio.create_task(
                DerivedWorker(state.db, settings).run(), name="c360-derived-worker"
            )
        sweeper = None
        if settings.lifecycle_sweep_interval_seconds > 0:
            every = settings.lifecycle_sweep_interval_seconds
            sweeper = asyncio.create_task(sweep_lifecycle_every(state.db, every), name="c360-sweep")
        tag_sweeper = None
        if settings.tag_sweep_interval_seconds > 0:
            every = settings.tag_sweep_interval_seconds
            tag_sweeper = asyncio.create_task(
                sweep_tags_every(state.db, every), name="c360-tag-sweep"
            )
        duplicate_scanner = None
        if settings.duplicate_scan_interval_seconds > 0:
            duplicate_scanner = asyncio.create_task(
                scan_duplicates_every(state.db, settings), name="c360-duplicate-scan"
            )
        partition_keeper = None
        if settings.event_partition_interval_seconds > 0:
            partition_keeper = asyncio.create_task(
                keep_event_partitions_every(state.db, settings), name="c360-event-partitions"
            )
        yield
        if partition_keeper is not None:
            partition_keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await partition_keeper
        if duplicate_scanner is not None:
            duplicate_scanner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await duplicate_scanner
        if tag_sweeper is not None:
            tag_sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tag_sweeper
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        if deriving is not None:
            deriving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await deriving
        if dispatcher is not None:
            dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dispatcher
        await state.broker.close()
        await state.close()
        if provider is not None and tracing is None:
            provider.shutdown()
        state.metrics.close()

    app = FastAPI(title="customer-360", lifespan=lifespan)
    app.state.c360 = state

    async def context_getter(
        connection: HTTPConnection, principal: Principal | None = Depends(principal_of)
    ) -> AsyncIterator[Context]:
        request_id = request_id_of(connection.scope)
        http = connection.scope["type"] == "http"
        # Read-your-writes on request: this request's writes wait for their derived state.
        wanted = connection.headers.get(WAIT_HEADER, "").strip().lower() == "wait"
        wait_for_derived.set(settings.derived_wait_seconds if wanted else None)
        context = Context(state, principal, request_db(connection), request_id, splices_json=http)
        try:
            yield context
        finally:
            await context.close()

    graphql = KeyedGraphQLRouter(
        build_schema(),
        context_getter=context_getter,  # type: ignore[arg-type]  # FastAPI runs yield dependencies
        graphql_ide="graphiql" if settings.graphiql else None,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
    )
    app.include_router(graphql, prefix="/graphql")
    if settings.graphiql:
        mount_assets(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestIds)  # outermost: every answer carries the id
    mount_metrics(app, state.metrics, settings, state.db)
    _add_health(app, state)
    _add_error_handlers(app)
    return app


def _add_health(app: FastAPI, state: AppState) -> None:
    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is up; says nothing of its dependencies."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        """Ready when the database answers within C360_READY_TIMEOUT_SECONDS and is migrated
        to this code's head; Redis is optional (degraded without it)."""
        timeout = state.settings.ready_timeout_seconds
        checks: dict[str, Any] = {}
        try:
            async with asyncio.timeout(timeout):
                async with state.db.engine.connect() as connection:
                    migrations = await migration_status(connection)
            if migrations.ready:
                checks["database"] = "ok"
            else:
                checks["database"] = "not migrated"
                checks["migrations"] = {
                    "current": list(migrations.current),
                    "head": list(migrations.head),
                    "missing": list(migrations.missing),
                }
        except TimeoutError:
            log.warning("readiness: the database did not answer within %ss", timeout)
            checks["database"] = "timeout"
        except Exception as error:  # any failure means "not ready"; the reason goes to the log
            log.warning("readiness: database unreachable: %s", error)
            checks["database"] = "unreachable"
        if state.redis is None:
            checks["redis"] = "not configured"
        else:
            try:
                async with asyncio.timeout(timeout):
                    await state.redis.ping()
                checks["redis"] = "ok"
            except Exception as error:
                log.warning("readiness: redis unreachable: %s", error)
                checks["redis"] = "unreachable"
        # Without Redis the API still serves (no shared cache, per-process rate limits):
        # degraded, but ready. Without the database, or on an unmigrated one, it serves nothing.
        if checks["database"] != "ok":
            return JSONResponse({"status": "unavailable", **checks}, status_code=503)
        checks["lag"] = await _lag(state.db)
        status = "degraded" if checks["redis"] == "unreachable" else "ready"
        return JSONResponse({"status": status, **checks})


async def _lag(db: Database) -> dict[str, Any]:
    """How far behind the writes the background work is: derived state and the outbox
    (information only: a lag does not make the service unready)."""
    behind = await derived.backlog(db)
    outbox = await outbox_backlog(db)
    waited = (utcnow() - outbox.oldest_at).total_seconds() if outbox.oldest_at else 0.0
    return {
        "derivedState": {"profiles": behind.profiles, "seconds": round(behind.lag_seconds(), 3)},
        "outbox": {"events": outbox.events, "seconds": round(max(0.0, waited), 3)},
    }


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        code = {
            401: "UNAUTHENTICATED",
            403: "FORBIDDEN",
            404: "NOT_FOUND",
            405: "METHOD_NOT_ALLOWED",
            503: "SERVICE_UNAVAILABLE",
        }.get(error.status_code, "HTTP_ERROR")
        extensions = getattr(error, "extensions", None) or {"code": code}
        extensions = {**extensions, "requestId": request_id_of(request.scope)}
        count_refusal(request.scope, extensions["code"])
        return JSONResponse(
            {"errors": [{"message": error.detail, "extensions": extensions}]},
            status_code=error.status_code,
            headers=error.headers,
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        """Answered by starlette's outermost middleware, outside RequestIds: the id header is
        set here."""
        request_id = request_id_of(request.scope)
        headers = {"X-Request-Id": request_id} if request_id else None
        unavailable = unavailable_answer(error, request_id)
        if unavailable is not None:
            message, extensions = unavailable
            return JSONResponse(
                {"errors": [{"message": message, "extensions": extensions}]},
                status_code=503,
                headers=headers,
            )
        log.error("unexpected error outside GraphQL [request %s]", request_id, exc_info=error)
        extensions = {"code": "INTERNAL_ERROR", "requestId": request_id}
        return JSONResponse(
            {"errors": [{"message": "Internal error", "extensions": extensions}]},
            status_code=500,
            headers=headers,
        )
