"""Prometheus metrics, served at `/metrics` in the text exposition format.

    c360_graphql_operation_seconds{operation,type}   histogram of each operation's duration
    c360_graphql_errors_total{code}                   errors answered, by code
    c360_db_pool_connections{state}                   size / checked_out / overflow (all workers)
    c360_websocket_connections                        open websockets (all workers)
    c360_outbox_events_waiting                        change events not yet dispatched
    c360_outbox_lag_seconds                           age of the oldest of them (0: none waiting)
    c360_webhook_deliveries{status}                   PENDING and DEAD deliveries
    c360_derived_profiles_waiting                     profiles whose derived state is behind
    c360_derived_lag_seconds                          how long the oldest of them has waited

The outbox, webhook and derived-state figures are read from the database at each scrape
(through indexes), so any worker answers them alike. Derived state (metrics, RULE tags,
lifecycle, materialized segments) follows writes through the worker (domain.derived): its lag
is the age of the oldest dirty profile.

Several workers (`c360 serve --workers N`) are one service: `serve` then sets
PROMETHEUS_MULTIPROC_DIR before the workers start, each worker writes its figures there, and
the worker that answers a scrape adds them all up (prometheus-client's multiprocess mode). The
operation label holds a client-chosen name: past MAX_OPERATION_NAMES distinct names a process
reports `other`, so a client cannot blow up the number of series.

Who may read it: with C360_METRICS_TOKEN set, a client sending that token as a bearer token;
without, clients on the loopback interface only (a scraper beside the service).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from api.request_ids import request_id_of
from domain.changes import Backlog, outbox_backlog
from domain.delivery.webhooks import DeliveryStatus, deliveries_waiting
from domain.derived import marks as derived
from service.settings import Settings
from store.db import Database

MAX_OPERATION_NAMES = 200
NAME_LENGTH = 64
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class Metrics:
    """One app's metrics; its registry is its own, so two apps in a process never collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.operation_seconds = Histogram(
            "c360_graphql_operation_seconds",
            "Duration of GraphQL operations",
            ["operation", "type"],
            registry=self.registry,
        )
        self.errors = Counter(
            "c360_graphql_errors", "Errors answered, by code", ["code"], registry=self.registry
        )
        self.pool = Gauge(
            "c360_db_pool_connections",
            "Database connections of the pool",
            ["state"],
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.websockets = Gauge(
            "c360_websocket_connections",
            "Open websocket connections",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self._names: set[str] = set()

    def operation_label(self, name: str | None) -> str:
        label = (name or "anonymous")[:NAME_LENGTH]
        if label in self._names:
            return label
        if len(self._names) >= MAX_OPERATION_NAMES:
            return "other"
        self._names.add(label)
        return label

    def observe_operation(
        self, name: str | None, kind: str, seconds: float, codes: list[str]
    ) -> None:
        self.operation_seconds.labels(self.operation_label(name), kind).observe(seconds)
        for code in codes:
            self.errors.labels(code).inc()

    def watch_pool(self, engine: AsyncEngine) -> None:
        """Keep the pool gauges current as connections are checked out and in."""
        pool = engine.sync_engine.pool

        def update(*_args: Any) -> None:
            for state, read in (
                ("size", "size"),
                ("checked_out", "checkedout"),
                ("overflow", "overflow"),
            ):
                reader = getattr(pool, read, None)
                if reader is not None:
                    self.pool.labels(state).set(max(0, reader()))

        update()
        event.listen(engine.sync_engine, "checkout", update)
        event.listen(engine.sync_engine, "checkin", update)

    def close(self) -> None:
        """This worker's live gauges stop counting (multiprocess mode) when it stops."""
        if multiprocess():
            prometheus_multiprocess.mark_process_dead(os.getpid())

    def exposition(
        self, backlog: Backlog, waiting: dict[DeliveryStatus, int], behind: derived.Backlog
    ) -> bytes:
        scrape = CollectorRegistry()
        if multiprocess():
            prometheus_multiprocess.MultiProcessCollector(scrape)
        else:
            scrape.register(self.registry)  # type: ignore[arg-type]  # a registry collects
        scrape.register(_Backlog(backlog, waiting, behind))  # type: ignore[arg-type]
        return generate_latest(scrape)


class _Backlog:
    """What the database says at this scrape: the outbox and the webhook deliveries."""

    def __init__(
        self, backlog: Backlog, waiting: dict[DeliveryStatus, int], behind: derived.Backlog
    ) -> None:
        self.backlog = backlog
        self.waiting = waiting
        self.behind = behind

    def collect(self) -> Any:
        yield GaugeMetricFamily(
            "c360_outbox_events_waiting",
            "Change events not yet dispatched",
            value=self.backlog.events,
        )
        oldest = self.backlog.oldest_at
        lag = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
        yield GaugeMetricFamily(
            "c360_outbox_lag_seconds",
            "Age of the oldest change event not yet dispatched",
            value=max(0.0, lag),
        )
        deliveries = GaugeMetricFamily(
            "c360_webhook_deliveries", "Webhook deliveries waiting or dead", labels=["status"]
        )
        for status, count in self.waiting.items():
            deliveries.add_metric([status.value], count)
        yield deliveries
        yield GaugeMetricFamily(
            "c360_derived_profiles_waiting",
            "Profiles whose derived state waits for the worker",
            value=self.behind.profiles,
        )
        yield GaugeMetricFamily(
            "c360_derived_lag_seconds",
            "How long the oldest profile waiting for the worker has waited",
            value=self.behind.lag_seconds(),
        )


def count_refusal(scope: MutableMapping[str, Any], code: str) -> None:
    """Count an error answered outside GraphQL (a middleware's or the view's refusal)."""
    state = getattr(getattr(scope.get("app"), "state", None), "c360", None)
    if state is not None:
        state.metrics.errors.labels(code).inc()


def _refusal(status: int, code: str, message: str, request: Request) -> JSONResponse:
    extensions = {"code": code, "requestId": request_id_of(request.scope)}
    return JSONResponse({"errors": [{"message": message, "extensions": extensions}]}, status)


def mount_metrics(app: FastAPI, metrics: Metrics, settings: Settings, db: Database) -> None:
    @app.get("/metrics", include_in_schema=False)
    async def scrape(request: Request) -> Response:
        token = settings.metrics_token
        if token:
            given = request.headers.get("authorization", "")
            if not secrets.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return _refusal(401, "UNAUTHENTICATED", "send the metrics token", request)
        elif request.client is None or request.client.host not in LOOPBACK:
            message = "metrics are served to loopback clients only; set C360_METRICS_TOKEN"
            return _refusal(403, "FORBIDDEN", message, request)
        body = metrics.exposition(
            await outbox_backlog(db), await deliveries_waiting(db), await derived.backlog(db)
        )
        return Response(body, media_type=CONTENT_TYPE_LATEST)


__all__ = ["Metrics", "count_refusal", "mount_metrics", "multiprocess"]
