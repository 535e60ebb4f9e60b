"""What the request pipeline costs per request, before and after it was made lean (issue 18),
in the same run: the key check (domain.access.key_cache), the admission against the key's
budget (store.ratelimit) and the document's measure (api.measure_cache).

Two documents that do no data work, over HTTP in process (httpx's ASGI transport), on
PostgreSQL and Redis: `{ __typename }`, and benchmark Q2's document (a page of 50 profiles)
with its root field skipped (`@skip(if: true)`), which is parsed, validated and measured in
full and resolves nothing.

Before: what main did: every request looked its key up (C360_KEY_CACHE_SECONDS=0) and walked
its document (api.measure_cache bypassed). After: the defaults. The two alternate, round after
round, so that the load of a shared machine falls on both alike. Each stage is timed where it
runs (wrapped for the run), and each request's SQL statements and Redis commands are counted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any
from unittest import mock

import httpx
from redis.asyncio.connection import AbstractConnection
from rich.console import Console
from rich.table import Table
from sqlalchemy import event

from api import limits
from api.app import create_app
from bench.common import DEFAULT_URL, fresh_database, server_url, write_results
from bench.read_queries import OURS_PROFILE
from domain.access.key_cache import KnownKeys
from domain.access.keys import Role, create_api_key
from service.logs import configure_logging
from service.settings import Settings
from store.ratelimit import RateLimiter

DOCUMENTS = {
    "{ __typename }": "{ __typename }",
    "Q2 document, skipped": OURS_PROFILE
    + """query Q2 { customers(first: 50, orderBy: [{field: LAST_SEEN_AT, direction: DESC}])
      @skip(if: true) { edges { cursor node { ...Profile } } pageInfo { hasNextPage } } }""",
}
STAGES = ("key check", "admission", "measure")
WARM_UP = 20


class Tally:
    """Seconds spent per stage, and statements and Redis commands sent, while `counting`."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.statements = 0
        self.redis_commands = 0
        self.counting = False

    def statement(self, *_args: Any) -> None:
        self.statements += self.counting

    @contextmanager
    def stages(self, before: bool) -> Iterator[None]:
        """Each stage timed where it runs; `before`: the key looked up, the document walked."""
        authenticate, admit, measured = KnownKeys.authenticate, RateLimiter.admit, limits.measured
        send = AbstractConnection.send_packed_command

        async def timed_authenticate(keys: KnownKeys, *args: Any) -> Any:
            started = time.perf_counter()
            try:
                return await authenticate(keys, *args)
            finally:
                self.seconds["key check"] += time.perf_counter() - started

        async def timed_admit(limiter: RateLimiter, *args: Any) -> Any:
            started = time.perf_counter()
            try:
                return await admit(limiter, *args)
            finally:
                self.seconds["admission"] += time.perf_counter() - started

        def timed_measure(*args: Any) -> Any:
            started = time.perf_counter()
            try:
                return args[-1]() if before else measured(*args)
            finally:
                self.seconds["measure"] += time.perf_counter() - started

        async def counted_send(connection: AbstractConnection, *args: Any, **kw: Any) -> Any:
            self.redis_commands += self.counting
            return await send(connection, *args, **kw)

        with (
            mock.patch.object(KnownKeys, "authenticate", timed_authenticate),
            mock.patch.object(RateLimiter, "admit", timed_admit),
            mock.patch.object(limits, "measured", timed_measure),
            mock.patch.object(AbstractConnection, "send_packed_command", counted_send),
        ):
            yield


@asynccontextmanager
async def _client(settings: Settings, tally: Tally) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    configure_logging(settings.model_copy(update={"log_level": "WARNING"}))
    state = app.state.c360
    event.listen(state.db.engine.sync_engine, "before_cursor_execute", tally.statement)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            yield client
    finally:
        await state.close()


async def _round(
    client: httpx.AsyncClient, key: str, document: str, requests: int, tally: Tally
) -> list[float]:
    headers = {"Authorization": f"Bearer {key}"}
    seconds = []
    tally.counting = True
    for _ in range(requests):
        started = time.perf_counter()
        response = await client.post("/graphql", json={"query": document}, headers=headers)
        seconds.append(time.perf_counter() - started)
        assert response.status_code == 200 and "errors" not in response.json(), response.text
    tally.counting = False
    return seconds


async def _run(database_url: str, redis_url: str | None, rounds: int, requests: int) -> Any:
    load_before = os.getloadavg()
    report: dict[str, Any] = {"documents": {}}
    async with fresh_database(server_url(database_url)) as db:
        url = db.engine.url.render_as_string(hide_password=False)
        settings = Settings(database_url=url, redis_url=redis_url, dispatcher=False)
        key = (await create_api_key(db, "bench", Role.FRONTEND)).secret
        configs = {
            "before": settings.model_copy(update={"key_cache_seconds": 0.0}),
            "after": settings,
        }
        for name, document in DOCUMENTS.items():
            tallies = {config: Tally() for config in configs}
            latencies: dict[str, list[float]] = {config: [] for config in configs}
            for _ in range(rounds):
                for config, config_settings in configs.items():
                    tally = tallies[config]
                    with tally.stages(before=config == "before"):
                        async with _client(config_settings, tally) as client:
                            await _round(client, key, document, WARM_UP, Tally())
                            tally.seconds.clear()
                            latencies[config] += await _round(
                                client, key, document, requests, tally
                            )
            report["documents"][name] = {
                config: _figures(latencies[config], tallies[config], rounds * requests)
                for config in configs
            }
    report |= {
        "backend": "postgresql" + (" + redis" if redis_url else ""),
        "rounds": rounds,
        "requests_per_round": requests,
        "load_average": {"before the run": load_before, "after the run": os.getloadavg()},
    }
    return report


def _figures(latencies: list[float], tally: Tally, requests: int) -> dict[str, Any]:
    stages = {stage: tally.seconds[stage] / requests * 1e6 for stage in STAGES}
    return {
        "request_p50_us": statistics.median(latencies) * 1e6,
        "request_mean_us": statistics.fmean(latencies) * 1e6,
        "pipeline_us": sum(stages.values()),
        "stages_us": stages,
        "statements_per_request": tally.statements / requests,
        "redis_commands_per_request": tally.redis_commands / requests,
    }


def _print(report: dict[str, Any]) -> None:
    console = Console()
    for name, configs in report["documents"].items():
        table = Table(title=f"{name} ({report['backend']}), µs per request")
        for column in ("", *STAGES, "pipeline", "request p50", "SQL", "Redis"):
            table.add_column(column, justify="right")
        for config, row in configs.items():
            table.add_row(
                config,
                *(f"{row['stages_us'][stage]:.0f}" for stage in STAGES),
                f"{row['pipeline_us']:.0f}",
                f"{row['request_p50_us']:.0f}",
                f"{row['statements_per_request']:.2f}",
                f"{row['redis_commands_per_request']:.2f}",
            )
        console.print(table)
        before, after = configs["before"], configs["after"]
        console.print(
            f"pipeline: {before['pipeline_us'] / max(after['pipeline_us'], 1e-9):.1f}x less "
            f"time after; request p50 {after['request_p50_us'] / before['request_p50_us']:.2f}x"
        )
    loads = report["load_average"]
    console.print(f"load average: {loads['before the run']} -> {loads['after the run']}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench pipeline", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200, help="timed requests per round")
    parser.add_argument(
        "--database-url", default=os.environ.get("C360_BENCH_DATABASE_URL", DEFAULT_URL)
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("C360_BENCH_REDIS_URL"),
        help="rate limits and key notices through Redis (unset: in process)",
    )
    args = parser.parse_args(argv)
    report = asyncio.run(_run(args.database_url, args.redis_url, args.rounds, args.requests))
    _print(report)
    write_results("pipeline", report)
    return 0
