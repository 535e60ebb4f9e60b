"""Ingest and metrics on PostgreSQL: recordOrders + trackEvents throughput against a plain bulk
INSERT of the same rows, and `c360 recompute-metrics` over a large population.

Part 1 (ingest): the setting of bench.derived_setting is defined (20 RULE tags, the default
lifecycle, 10 materialized segments) and a population of profiles is identified (untimed);
with the derived-state worker running as its own process, batches of events and orders
addressed by their emails go through `track_events` / `record_orders` (timed), while the lag of
derived state is sampled (until the worker has drained it); then the same rows go through plain
executemany INSERTs into a fresh database (the limit).

Part 2 (recompute): customers and orders are generated in SQL (generate_series), then
`c360 recompute-metrics` runs as its own process, timed, with its peak RSS read from the OS.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import insert, select, text

from bench.common import DEFAULT_URL, checkpoint, fresh_database, server_url, write_results
from bench.derived_setting import define_setting, drained, load_average, sampling, worker_process
from domain.activity.ingest import EventItem, OrderItem, record_orders, track_events
from domain.identity.linking import IdentifyInput, identify_batch
from store.db import Database
from store.models import Customer, Event, Order

RATES = {"CNY": Decimal(1), "USD": Decimal("7.10")}
NOW = datetime.now(UTC)


def _email(n: int) -> str:
    return f"buyer{n}@bench-mail.cn"


def _events(n: int, people: int) -> list[EventItem]:
    kinds = ("page_view", "product_view", "add_to_cart", "login")
    return [
        EventItem(
            ("email", _email(i % people)),
            kinds[i % 4],
            "web",
            NOW - timedelta(minutes=i),
            {"sku": f"S{i % 97}"},
            f"evt-{i}",
        )
        for i in range(n)
    ]


def _orders(n: int, people: int) -> list[OrderItem]:
    return [
        OrderItem(
            ("email", _email(i % people)),
            f"ord-{i}",
            Decimal(19 + i % 300),
            "CNY",
            placed_at=NOW - timedelta(hours=i),
        )
        for i in range(n)
    ]


async def _people(db: Database, people: int) -> None:
    inputs = [IdentifyInput([("email", _email(i))]) for i in range(people)]
    for start in range(0, people, 1000):
        await identify_batch(db, inputs[start : start + 1000], region="CN", actor="bench")


async def _timed_ingest(
    server: Any, items: int, people: int, size: int
) -> tuple[dict[str, float], dict[str, Any]]:
    """Rates of the writes, and the derived-state lag while they ran (per kind)."""
    async with fresh_database(server) as db, worker_process(db) as worker:
        await define_setting(db)
        await _people(db, people)
        await drained(db)
        await checkpoint(server)
        events = _events(items, people)
        async with sampling(db, worker) as events_lag:
            started = time.perf_counter()
            for start in range(0, items, size):
                await track_events(db, events[start : start + size], region="CN", actor="bench")
            events_s = time.perf_counter() - started
        orders = _orders(items, people)
        async with sampling(db, worker) as orders_lag:
            started = time.perf_counter()
            for start in range(0, items, size):
                await record_orders(
                    db, orders[start : start + size], region="CN", actor="bench", rates=RATES
                )
            orders_s = time.perf_counter() - started
    rates = {"events_per_s": items / events_s, "orders_per_s": items / orders_s}
    return rates, {"events": events_lag.summary(), "orders": orders_lag.summary()}


async def _timed_plain(server: Any, items: int, people: int, size: int) -> dict[str, float]:
    async with fresh_database(server) as db:
        await _people(db, people)
        async with db.read() as session:
            ids = (await session.scalars(select(Customer.id).order_by(Customer.created_at))).all()
        await checkpoint(server)
        rows = [
            {
                "customer_id": ids[i % len(ids)],
                "type": e.type,
                "channel": e.channel,
                "occurred_at": e.occurred_at,
                "received_at": NOW,
                "properties": e.properties,
                "idempotency_key": e.idempotency_key,
            }
            for i, e in enumerate(_events(items, people))
        ]
        started = time.perf_counter()
        for start in range(0, items, size):
            async with db.write() as session:
                await session.execute(insert(Event), rows[start : start + size])
        events_s = time.perf_counter() - started
        rows = [
            {
                "customer_id": ids[i % len(ids)],
                "source": "",
                "external_id": o.external_id,
                "amount": o.amount,
                "currency": o.currency,
                "base_amount": o.amount,
                "status": "completed",
                "placed_at": o.placed_at,
                "created_at": NOW,
            }
            for i, o in enumerate(_orders(items, people))
        ]
        started = time.perf_counter()
        for start in range(0, items, size):
            async with db.write() as session:
                await session.execute(insert(Order), rows[start : start + size])
        orders_s = time.perf_counter() - started
    return {"events_per_s": items / events_s, "orders_per_s": items / orders_s}


GENERATE = (
    """INSERT INTO customers (id, status, attributes, field_times, created_at, updated_at, version)
       SELECT gen_random_uuid(), 'ACTIVE', '{}', '{}',
              now() - (g % 700) * interval '1 day', now(), 1
       FROM generate_series(1, :customers) AS g""",
    """INSERT INTO orders (customer_id, source, external_id, amount, currency, base_amount, status,
                           placed_at, created_at)
       SELECT c.id, 'gen', 'o-' || g, 10 + (g % 500), 'CNY', 10 + (g % 500),
              CASE WHEN g % 20 = 0 THEN 'refunded' ELSE 'completed' END,
              now() - (g % 730) * interval '1 day', now()
       FROM generate_series(1, :orders) AS g
       JOIN (SELECT id, row_number() OVER () AS n FROM customers) AS c
         ON c.n = 1 + (g::bigint * 7919) % :customers""",
    "ANALYZE customers",
    "ANALYZE orders",
)


async def _timed_recompute(server: Any, customers: int, orders: int) -> dict[str, float]:
    async with fresh_database(server) as db:
        async with db.write() as session:
            for statement in GENERATE:
                await session.execute(text(statement), {"customers": customers, "orders": orders})
        url = db.engine.url.render_as_string(hide_password=False)
        await checkpoint(server)
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        started = time.perf_counter()
        command = [str(Path(sys.executable).parent / "c360"), "recompute-metrics"]
        await asyncio.to_thread(
            subprocess.run,
            command,
            check=True,
            env={**os.environ, "DATABASE_URL": url},
            capture_output=True,
        )
        seconds = time.perf_counter() - started
        peak_mb = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
        async with db.read() as session:
            scored = (
                await session.execute(
                    text("SELECT count(*) FROM customer_metrics WHERE rfm_segment IS NOT NULL")
                )
            ).scalar_one()
    return {"seconds": seconds, "peak_rss_mb": peak_mb, "customers_scored": scored}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench activity", description=__doc__)
    parser.add_argument("--items", type=int, default=20_000, help="events, and orders, ingested")
    parser.add_argument("--people", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--customers", type=int, default=200_000, help="recompute: customers")
    parser.add_argument("--orders", type=int, default=1_000_000, help="recompute: orders")
    parser.add_argument("--suffix", default="", help="results file name suffix")
    parser.add_argument(
        "--database-url", default=os.environ.get("C360_BENCH_DATABASE_URL", DEFAULT_URL)
    )
    args = parser.parse_args(argv)
    server = server_url(args.database_url)
    console = Console()
    load_before = load_average()
    ours, lag = asyncio.run(_timed_ingest(server, args.items, args.people, args.batch))
    plain = asyncio.run(_timed_plain(server, args.items, args.people, args.batch))
    load_after = load_average()
    recompute = asyncio.run(_timed_recompute(server, args.customers, args.orders))
    table = Table(title=f"ingest, batches of {args.batch} ({args.items} items each)")
    columns = ("what", "ours items/s", "plain INSERT rows/s", "plain/ours", "ours/plain")
    for column in (*columns, "lag p50 s", "lag p99 s", "drained after s", "worker profiles/s"):
        table.add_column(column)
    for kind in ("events", "orders"):
        o, p = ours[f"{kind}_per_s"], plain[f"{kind}_per_s"]
        waited = lag[kind]
        table.add_row(
            kind,
            f"{o:,.0f}",
            f"{p:,.0f}",
            f"{p / o:.2f}x",
            f"{o / p:.2f}x",
            f"{waited['p50_s']:.2f}",
            f"{waited['p99_s']:.2f}",
            f"{waited['drained_after_writes_s']:.2f}",
            f"{waited['worker_profiles_per_s'] or 0:,.0f}",
        )
    console.print(table)
    console.print(f"load average before {load_before}, after {load_after}")
    console.print(
        f"recompute-metrics: {args.customers:,} customers, {args.orders:,} orders: "
        f"{recompute['seconds']:.1f} s, peak RSS {recompute['peak_rss_mb']:.0f} MB, "
        f"{recompute['customers_scored']:,} RFM-scored"
    )
    write_results(
        "activity",
        {
            "args": vars(args) | {"database_url": "<server>"},
            "ingest": {
                "ours": ours,
                "plain": plain,
                "ours_over_plain": {
                    kind: round(ours[f"{kind}_per_s"] / plain[f"{kind}_per_s"], 3)
                    for kind in ("events", "orders")
                },
                "derived_lag": lag,
                "setting": {"rule_tags": 20, "lifecycle": "default", "materialized_segments": 10},
            },
            "load_average": {"before": load_before, "after": load_after},
            "recompute": recompute,
        },
        args.suffix,
    )
    return 0
