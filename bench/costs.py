"""What a page of 20 customers with identities, tags, stage and metrics costs against a key's
budget, before and after costs were settled from what a request returned (api.costs), on the
demo data; and what the per-operation log line, metrics and spans cost in time, against the
same requests with tracing off, in the same run.

Before: each request was charged its static cost, against 500,000 a minute. After: admitted on
the static cost, charged the settled one, against C360_COST_BUDGET_PER_MINUTE's default.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import time
from typing import Any

import httpx
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from rich.console import Console
from rich.table import Table

from api.app import create_app
from bench.common import DEFAULT_URL, fresh_database, server_url, write_results
from domain.access.keys import Role, create_api_key
from service.demo import seed_demo
from service.logs import configure_logging
from service.settings import Settings

OLD_BUDGET = 500_000
WARM_UP = 10
PAGE = """query Page { customers(first: 20) { edges { node { id displayName
  identities { type value } tags { value tag { key name } } stage { key name }
  metrics { orderCount totalSpent } } } } }"""


async def _timed(app: Any, key: str, requests: int) -> list[float]:
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {key}"}
    seconds = []
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for _ in range(WARM_UP):  # caches filled, connections opened: not timed
            await client.post("/graphql", json={"query": PAGE}, headers=headers)
        for _ in range(requests):
            started = time.perf_counter()
            response = await client.post("/graphql", json={"query": PAGE}, headers=headers)
            seconds.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
    return seconds


async def _run(database_url: str, customers: int, requests: int) -> dict[str, Any]:
    async with fresh_database(server_url(database_url)) as db:
        await seed_demo(db, customers)
        url = db.engine.url.render_as_string(hide_password=False)
        settings = Settings(database_url=url, dispatcher=False)
        key = (await create_api_key(db, "bench", Role.FRONTEND)).secret
        lines = io.StringIO()
        app = create_app(settings)
        configure_logging(settings, lines)
        plain = await _timed(app, key, requests)
        await app.state.c360.close()
        operation = next(
            json.loads(line)
            for line in lines.getvalue().splitlines()
            if '"graphql operation"' in line
        )
        provider = TracerProvider()
        spans = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(spans))
        traced_app = create_app(settings, tracing=provider)
        configure_logging(settings, io.StringIO())
        traced = await _timed(traced_app, key, requests)
        await traced_app.state.c360.close()
        configure_logging(settings)
    cost = operation["cost"]
    return {
        "customers": customers,
        "page": {"static": cost["static"], "settled": cost["settled"]},
        "statements": operation["statements"],
        "before": {
            "charged": cost["static"],
            "budget_per_minute": OLD_BUDGET,
            "pages_per_second": OLD_BUDGET / 60 / cost["static"],
        },
        "after": {
            "charged": cost["settled"],
            "budget_per_minute": cost["budget"],
            "pages_per_second": cost["budget"] / 60 / cost["settled"],
        },
        "median_ms": {
            "tracing off": statistics.median(plain) * 1000,
            "tracing on (in-memory exporter)": statistics.median(traced) * 1000,
        },
        "spans_per_request": len(spans.get_finished_spans()) / (requests + WARM_UP),
        "load_average": os.getloadavg(),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench costs", description=__doc__)
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument(
        "--database-url", default=os.environ.get("C360_BENCH_DATABASE_URL", DEFAULT_URL)
    )
    args = parser.parse_args(argv)
    result = asyncio.run(_run(args.database_url, args.customers, args.requests))
    table = Table(title=f"a page of 20 full profiles ({result['customers']:,} demo customers)")
    for column in ("", "charged", "budget / min", "pages / s per key"):
        table.add_column(column)
    for name in ("before", "after"):
        row = result[name]
        table.add_row(
            name,
            str(row["charged"]),
            f"{row['budget_per_minute']:,}",
            f"{row['pages_per_second']:,.0f}",
        )
    console = Console()
    console.print(table)
    page = result["page"]
    console.print(f"static cost {page['static']}, settled {page['settled']}")
    for name, ms in result["median_ms"].items():
        console.print(f"median request, {name}: {ms:.2f} ms")
    console.print(f"spans per request with tracing on: {result['spans_per_request']:.0f}")
    console.print(f"load average: {', '.join(f'{x:.1f}' for x in result['load_average'])}")
    write_results("costs", result)
    return 0
