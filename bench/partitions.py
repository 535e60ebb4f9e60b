"""Events partitioned by month against one events table: an event-window condition (30 days)
over the same generated population in two fresh databases, one migrated to head (events
partitioned, c14_partitions) and one to the revision before it (one events table).

`python -m bench partitions [--customers N] [--events E] [--orders O] [--repeat R] [--keep]`: the
population is bench segments' (set-based SQL, events spread over the last 365 days); the
condition `{event: {type: "page_view", withinDays: 30}}` is compiled by the condition compiler
and counted R times in each database, alternately (the partitioned one has its months for the
whole year, as `serve` would have made them ahead); the figure is partitioned / unpartitioned
on the medians (target <= 1.0x), with both plans. Results: bench/results/partitions-<date>.json.

With --keep the two databases are kept (c360_bench_p<events>_part and _flat, e.g. p10m) and
marked with their population when loaded: a later run with the same population reuses them
(loading 10,000,000 events twice takes the better part of an hour), migrating the partitioned
one to head first. Drop them by hand when done (DROP DATABASE ... WITH (FORCE)).
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlalchemy import Select, func, select, text
from sqlalchemy.engine import URL

from bench.common import kept_database, server_sql, server_url, write_results
from bench.segments import load_population, population_parser
from domain.conditions.sql import compile_condition
from service.bootstrap import ensure_reference_data
from store import partitions
from store.db import Database
from store.migrate import upgrade
from store.models import Customer

BEFORE_PARTITIONS = "c13_outbox_notify"
CONDITION = {"event": {"type": "page_view", "withinDays": 30}}


@asynccontextmanager
async def _fresh(server: URL, revision: str) -> AsyncIterator[tuple[Database, bool]]:
    """A new database at `revision`, dropped afterwards; (it, False: not loaded)."""
    name = f"c360_bench_{uuid.uuid4().hex[:12]}"
    await server_sql(server, f'CREATE DATABASE "{name}"')
    url = server.set(drivername="postgresql", database=name).render_as_string(hide_password=False)
    db = None
    try:
        await asyncio.to_thread(upgrade, url, revision)
        db = Database.from_url(url)
        await ensure_reference_data(db)
        yield db, False
    finally:
        if db is not None:
            await db.dispose()
        await server_sql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def _kept(
    server: URL, name: str, revision: str, population: str
) -> AsyncIterator[tuple[Database, bool]]:
    """Kept database `name` at `revision`; (it, whether it holds `population` already). One
    not marked with this population (absent, or a load cut short) is made again, empty."""
    (marker,) = await server_sql(
        server,
        f"SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '{name}'",
    )
    loaded = marker == population
    if not loaded:
        await server_sql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    async with kept_database(server, name, revision) as db:
        yield db, loaded


def _label(events: int) -> str:
    """10000000 -> '10m', 1000000 -> '1m', 250000 -> '250000'."""
    return f"{events // 1_000_000}m" if events % 1_000_000 == 0 else str(events)


async def _counting(db: Database, now: datetime) -> Select[Any]:
    """The condition's count statement, compiled against `db` (at head): the same statement
    runs in both databases, the unpartitioned one being at a revision the compiler's catalog
    no longer reads."""
    async with db.read() as session:
        matching = (await compile_condition(session, CONDITION, now)).apply(select(Customer.id))
        return select(func.count()).select_from(matching.subquery())


async def _count(db: Database, counting: Select[Any]) -> tuple[float, int]:
    async with db.read() as session:
        started = time.perf_counter()
        count = await session.scalar(counting)
        return time.perf_counter() - started, int(count or 0)


async def _plan(db: Database, counting: Select[Any]) -> list[str]:
    async with db.read() as session:
        sql = counting.compile(session.bind, compile_kwargs={"literal_binds": True})
        rows = await session.execute(
            text(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) {sql}")
        )
        return [str(row[0]) for row in rows]


def _loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


async def _run(server: URL, args: Any, console: Console) -> dict[str, Any]:
    report: dict[str, Any] = {
        "date": datetime.now(UTC).date().isoformat(),
        "population": {"customers": args.customers, "events": args.events, "orders": args.orders},
        "condition": CONDITION,
    }
    population = f"customers={args.customers} events={args.events} orders={args.orders}"
    kept = {"partitioned": "part", "unpartitioned": "flat"}

    def database(name: str, revision: str) -> Any:
        if not args.keep:
            return _fresh(server, revision)
        return _kept(
            server, f"c360_bench_p{_label(args.events)}_{kept[name]}", revision, population
        )

    async with (
        database("partitioned", "head") as (partitioned, partitioned_loaded),
        database("unpartitioned", BEFORE_PARTITIONS) as (flat, flat_loaded),
    ):
        systems = {"partitioned": partitioned, "unpartitioned": flat}
        loaded = {"partitioned": partitioned_loaded, "unpartitioned": flat_loaded}
        report["reused"] = loaded
        if not partitioned_loaded:
            # The population's events span the last 365 days: their months exist before they
            # land, as they would have been made ahead over the year (else the default takes
            # them).
            async with partitioned.write() as session:
                since = datetime.now(UTC) - timedelta(days=366)
                await partitions.ensure_ahead(session, since, 16)
        for name, db in systems.items():
            if loaded[name]:
                continue
            console.print(f"loading {name} ...")
            report[f"load_{name}"] = await load_population(
                db, args.customers, args.events, args.orders, uuid.uuid4()
            )
            if args.keep:
                database_name = db.engine.url.database
                await server_sql(
                    server, f"COMMENT ON DATABASE \"{database_name}\" IS '{population}'"
                )
        counting = await _counting(partitioned, datetime.now(UTC))
        times: dict[str, list[float]] = {name: [] for name in systems}
        counts: dict[str, int] = {}
        report["load_1m_before"] = _loadavg()
        for db in systems.values():  # warm: plans, caches
            await _count(db, counting)
        for turn in range(args.repeat):
            order = list(systems) if turn % 2 == 0 else list(reversed(systems))
            for name in order:
                seconds, counts[name] = await _count(systems[name], counting)
                times[name].append(seconds)
        report["load_1m_after"] = _loadavg()
        report["plans"] = {name: await _plan(db, counting) for name, db in systems.items()}
    medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
    report["runs_ms"] = {
        name: [round(v * 1000, 2) for v in values] for name, values in times.items()
    }
    report["median_ms"] = {name: round(value, 2) for name, value in medians.items()}
    report["matching"] = counts
    report["ratio_partitioned_over_unpartitioned"] = round(
        medians["partitioned"] / medians["unpartitioned"], 3
    )
    return report


def main(argv: list[str]) -> int:
    parser = population_parser("python -m bench partitions", __doc__)
    parser.set_defaults(customers=200_000, orders=200_000)
    parser.add_argument(
        "--keep",
        action="store_true",
        help="load into kept databases (c360_bench_p<events>_part, _flat) and reuse them when "
        "they already hold this population",
    )
    args = parser.parse_args(argv)
    console = Console()
    server = server_url(args.database_url)
    report = asyncio.run(_run(server, args, console))
    for name, plan in report["plans"].items():
        console.print(f"[bold]{name}[/]\n" + "\n".join(plan))
    console.print(
        f"{CONDITION} at {args.events:,} events: partitioned {report['median_ms']['partitioned']}"
        f" ms, unpartitioned {report['median_ms']['unpartitioned']} ms (medians of "
        f"{args.repeat}): {report['ratio_partitioned_over_unpartitioned']}x; matching "
        f"{report['matching']}; load {report['load_1m_before']} -> {report['load_1m_after']}"
    )
    suffix = "" if args.events == 10_000_000 else f"-{args.events}"
    write_results("partitions", report, suffix)
    return 0
