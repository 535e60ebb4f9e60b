"""Read performance: the customer-360 queries on our API against PostGraphile on the same
PostgreSQL database, and Q2 against one hand-written SQL statement (the floor).

`python -m bench read [--customers N] [--duration S] [--concurrency 1,8,32]`:
1. builds a fresh database of N customers (bench.read_dataset) and dropped afterwards;
2. starts our API (`c360 serve --workers 2`, PostgreSQL + Redis, a frontend key) and
   PostGraphile (bench/postgraphile, installed with `npm ci`, two node cluster workers), each
   on its own loopback port;
3. checks that both answer every query with the same customers, identities, tags, stages and
   history (a figure from a wrong answer is no figure), then drives them with wrk at each
   concurrency for S seconds, ours and PostGraphile back to back per query and concurrency
   so that both see the same background load, plus the Q2 floor over asyncpg;
4. prints one table and the ratios, and writes bench/results/read-<date>.json (with the
   customer count in the name when it is not 100,000).

It creates and drops its own database (`c360_bench_<random>`) and kills the servers it starts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import text

from bench import read_dataset, read_load, read_queries, read_servers
from bench.common import (
    DEFAULT_URL,
    RESULTS,
    checkpoint,
    fresh_database,
    kept_database,
    server_sql,
    server_url,
    write_results,
)
from store.db import Database

LOGS = Path("/tmp")
BASE_CUSTOMERS = 100_000
TARGET_CONCURRENCY = 8
Q1_CUSTOMERS = 1000


async def _dataset(db: Database, customers: int, console: Console) -> dict[str, Any]:
    """Build the dataset, unless a kept database already holds one of this size."""
    found = await read_dataset.existing(db)
    if found is not None and found["customers"] == customers:
        console.print(f"reusing the kept dataset of {customers:,} customers")
        return found
    if found is not None:
        raise SystemExit(f"the kept database holds {found['customers']:,} customers; drop it")
    console.print(f"building {customers:,} customers ...")
    return await read_dataset.build(db, customers, datetime.now(UTC), console.print)


def _loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def _measured(
    run: Callable[[], read_load.Figures], server: read_servers.Server | None
) -> dict[str, Any]:
    """Run one load, sampling the server's RSS meanwhile; the peak goes with the figures."""
    peak, worker = 0.0, 0.0
    done = threading.Event()
    result: list[read_load.Figures] = []

    def drive() -> None:
        try:
            result.append(run())
        finally:
            done.set()

    load = _loadavg()
    thread = threading.Thread(target=drive)
    thread.start()
    while not done.wait(0.5):
        if server is not None:
            total, largest = read_servers.rss_mb(server)
            peak, worker = max(peak, total), max(worker, largest)
    thread.join()
    if not result:
        raise RuntimeError("a load run failed")
    figures = result[0]
    return {
        "rps": round(figures.rps, 1),
        "p50_ms": round(figures.p50_ms, 2),
        "p99_ms": round(figures.p99_ms, 2),
        "errors": figures.errors,
        "rss_mb": round(peak, 1) if server else None,
        "rss_worker_mb": round(worker, 1) if server else None,
        "requests": figures.requests,
        "load_1m": load,
    }


def _api_key(database_url: str) -> str:
    command = [str(read_servers.C360), "apikey", "create", "--role", "frontend", "--name", "bench"]
    env = {**os.environ, "DATABASE_URL": database_url}
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    return out.strip().splitlines()[-1]


async def _sample_ids(db: Database) -> list[str]:
    """Q1's customers: a fixed pseudo-random sample, the same for both servers."""
    async with db.read() as session:
        rows = await session.execute(
            text("SELECT id FROM customers ORDER BY md5(id::text) LIMIT :n"), {"n": Q1_CUSTOMERS}
        )
        return [str(row.id) for row in rows]


def _check(
    servers: dict[str, read_servers.Server], bodies: dict[str, Any], key: str
) -> dict[str, Any]:
    """One request per system: both must answer without errors and agree on the data."""
    answers = {}
    for system, server in servers.items():
        answer = read_servers.post(
            server, bodies[system].bodies[0], key if system == "ours" else None
        )
        if answer.get("errors") or not answer.get("data"):
            return {"ok": False, "why": f"{system}: {json.dumps(answer.get('errors'))[:300]}"}
        answers[system] = read_queries.normalized(answer["data"])  # type: ignore[arg-type]
    ours, theirs = answers["ours"], answers["postgraphile"]
    if ours != theirs:
        return {"ok": False, "why": f"the answers differ: {ours[:1]} vs {theirs[:1]}"}
    if not ours:
        return {"ok": False, "why": "empty answers"}
    return {"ok": True, "rows": len(ours)}


async def _floor_agrees(db: Database, ours_q2: list[Any]) -> bool:
    """The floor returns the customers of ours' Q2 page, in the same order."""
    async with db.read() as session:
        rows = json.loads((await session.execute(text(read_queries.FLOOR_Q2))).scalar_one())
    return [row["email"] for row in rows] == [row[0] for row in ours_q2]


def _drive(
    args: argparse.Namespace,
    servers: dict[str, read_servers.Server],
    key: str,
    ids: list[str],
    dsn: str,
    console: Console,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every run, queries in order; within a query and concurrency, the systems back to back
    (alternating which goes first) so that both see the same background load."""
    runs: list[dict[str, Any]] = []
    checks: dict[str, Any] = {}
    for query in args.queries:
        bodies = read_queries.requests(query, ids, datetime.now(UTC))
        checks[query] = _check(servers, bodies, key)
        if not checks[query]["ok"]:
            console.print(f"[red]{query} not run[/]: {checks[query]['why']}")
            continue
        scripts = {
            system: read_load.wrk_script(
                LOGS / f"c360-bench-read-{query}-{system}.lua",
                bodies[system].bodies,
                key if system == "ours" else None,
            )
            for system in servers
        }
        for system, server in servers.items():  # warm caches, pools and plans
            read_load.wrk(server.url, scripts[system], TARGET_CONCURRENCY, args.warmup)
        for n, concurrency in enumerate(args.concurrency):
            order = list(servers) if n % 2 == 0 else list(reversed(servers))
            for system in order:
                server = servers[system]
                load = partial(
                    read_load.wrk, server.url, scripts[system], concurrency, args.duration
                )
                runs.append(_entry(query, system, concurrency, _measured(load, server), console))
            if query == "Q2":
                sql = read_queries.FLOOR_Q2
                floor = partial(read_load.floor, dsn, sql, concurrency, args.duration)
                runs.append(_entry(query, "floor", concurrency, _measured(floor, None), console))
    return runs, checks


def _entry(
    query: str, system: str, concurrency: int, figures: dict[str, Any], console: Console
) -> dict[str, Any]:
    entry = {"query": query, "system": system, "concurrency": concurrency, **figures}
    console.print(
        f"  {query} {system:<12} c={concurrency:<3} {figures['rps']:>8.1f} req/s "
        f"p50 {figures['p50_ms']:>7.2f} ms  p99 {figures['p99_ms']:>7.2f} ms  "
        f"errors {figures['errors']}  load {figures['load_1m']:.2f}"
    )
    return entry


def _find(
    runs: list[dict[str, Any]], query: str, system: str, concurrency: int
) -> dict[str, Any] | None:
    return next(
        (
            r
            for r in runs
            if r["query"] == query and r["system"] == system and r["concurrency"] == concurrency
        ),
        None,
    )


def ratios(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per query and concurrency: ours/PostGraphile requests/s and p99, ours/floor p50."""
    found = []
    for run in runs:
        if run["system"] != "ours":
            continue
        q, c = run["query"], run["concurrency"]
        row: dict[str, Any] = {"query": q, "concurrency": c}
        theirs = _find(runs, q, "postgraphile", c)
        if theirs and theirs["rps"]:
            row["rps_ours_over_postgraphile"] = round(run["rps"] / theirs["rps"], 3)
            row["p99_ours_over_postgraphile"] = round(run["p99_ms"] / theirs["p99_ms"], 3)
        floor = _find(runs, q, "floor", c)
        if floor and floor["p50_ms"]:
            row["p50_ours_over_floor"] = round(run["p50_ms"] / floor["p50_ms"], 3)
        found.append(row)
    return found


def targets(runs: list[dict[str, Any]], checks: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets at 100,000 customers, each with its measured value."""
    c = TARGET_CONCURRENCY
    found: list[dict[str, Any]] = []

    def add(name: str, value: float | None, met: bool | None) -> None:
        found.append({"target": name, "measured": value, "met": met})

    for query in ("Q1", "Q2", "Q3", "Q4"):
        ours, theirs = _find(runs, query, "ours", c), _find(runs, query, "postgraphile", c)
        if not (ours and theirs):
            add(f"{query} req/s at c={c} >= 1.0x PostGraphile", None, None)
            continue
        ratio = round(ours["rps"] / theirs["rps"], 3)
        add(f"{query} req/s at c={c} >= 1.0x PostGraphile", ratio, ratio >= 1.0)
        if query in ("Q1", "Q2"):
            p99 = round(ours["p99_ms"] / theirs["p99_ms"], 3)
            add(f"{query} p99 at c={c} <= PostGraphile's (ours/theirs)", p99, p99 <= 1.0)
    for run in runs:
        if run["query"] == "Q2" and run["system"] == "ours":
            floor = _find(runs, "Q2", "floor", run["concurrency"])
            if floor:
                ratio = round(run["p50_ms"] / floor["p50_ms"], 3)
                add(f"Q2 p50 at c={run['concurrency']} within 3x of the floor", ratio, ratio <= 3.0)
    ours_runs = [r for r in runs if r["system"] == "ours"]
    add(
        "no errors under load (ours)",
        sum(r["errors"] for r in ours_runs),
        not any(r["errors"] for r in ours_runs),
    )
    worker = max((r["rss_worker_mb"] for r in ours_runs), default=None)
    add("RSS per worker < 300 MB (ours, peak)", worker, worker is not None and worker < 300)
    return found


def growth(runs: list[dict[str, Any]], base: dict[str, Any]) -> list[dict[str, Any]]:
    """p50 at this size over p50 at the base size, per query, system and concurrency."""
    found = []
    for run in runs:
        before = _find(base["runs"], run["query"], run["system"], run["concurrency"])
        if before and before["p50_ms"]:
            found.append(
                {
                    "query": run["query"],
                    "system": run["system"],
                    "concurrency": run["concurrency"],
                    "p50_growth": round(run["p50_ms"] / before["p50_ms"], 3),
                }
            )
    return found


def _base_results() -> dict[str, Any] | None:
    files = sorted(RESULTS.glob("read-????-??-??.json"))
    return json.loads(files[-1].read_text()) if files else None


def _report(console: Console, report: dict[str, Any]) -> None:
    table = Table(title=f"customer-360 reads, {report['dataset']['customers']:,} customers")
    for name in (
        "query",
        "system",
        "conc",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "RSS MB (max proc)",
    ):
        table.add_column(name, justify="left" if name in ("query", "system") else "right")
    for r in report["runs"]:
        rss = "-" if r["rss_mb"] is None else f"{r['rss_mb']:.0f} ({r['rss_worker_mb']:.0f})"
        table.add_row(
            r["query"],
            r["system"],
            str(r["concurrency"]),
            f"{r['rps']:,.1f}",
            f"{r['p50_ms']:.2f}",
            f"{r['p99_ms']:.2f}",
            str(r["errors"]),
            rss,
        )
    console.print(table)
    for row in report["ratios"]:
        parts = [f"{k}={v}" for k, v in row.items() if k not in ("query", "concurrency")]
        console.print(f"{row['query']} c={row['concurrency']}: " + ", ".join(parts))
    for query, check in report["checks"].items():
        if not check["ok"]:
            console.print(f"[red]{query} not run[/]: {check['why']}")
    for t in report["targets"]:
        verdict = {True: "[green]met[/]", False: "[red]missed[/]", None: "[yellow]not run[/]"}[
            t["met"]
        ]
        console.print(f"target: {t['target']}: {verdict} ({t['measured']})")
    for g in report.get("growth", []):
        if g["concurrency"] == TARGET_CONCURRENCY:
            console.print(f"p50 growth {g['query']} {g['system']}: {g['p50_growth']}x")


async def _run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    server = server_url(args.database_url)
    pg_version = await server_sql(server, "SHOW server_version")
    versions = {
        "postgraphile": read_servers.install_postgraphile(),
        "node": read_servers.node_version(),
        "postgresql": pg_version[0],
        "python": platform.python_version(),
        "wrk": "4.1.0",
    }
    read_servers.install_wrk()
    console.print(f"PostGraphile {versions['postgraphile']} on Node {versions['node']}")
    database = kept_database(server, args.keep) if args.keep else fresh_database(server)
    async with database as db:
        url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        dataset = await _dataset(db, args.customers, console)
        ids = await _sample_ids(db)
        await checkpoint(server)
        key = _api_key(url)
        ours_log = LOGS / "c360-bench-read-ours.log"
        their_log = LOGS / "c360-bench-read-postgraphile.log"
        with (
            read_servers.ours(url, args.redis_url, args.workers, key, ours_log) as ours,
            read_servers.postgraphile(url, args.workers, their_log) as theirs,
        ):
            servers = {"ours": ours, "postgraphile": theirs}
            started = time.perf_counter()
            runs, checks = _drive(args, servers, key, ids, url, console)
            if checks.get("Q2", {}).get("ok"):
                q2 = read_queries.requests("Q2", ids, datetime.now(UTC))["ours"].bodies[0]
                answer = read_servers.post(ours, q2, key)
                checks["Q2"]["floor_agrees"] = await _floor_agrees(
                    db,
                    read_queries.normalized(answer["data"]),  # type: ignore[arg-type]
                )
            console.print(f"load runs took {time.perf_counter() - started:.0f} s")
    report: dict[str, Any] = {
        "date": date.today().isoformat(),
        "dataset": dataset,
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "concurrency": args.concurrency,
            "workers": args.workers,
            "load_generator": "wrk (Lua POST script); floor: asyncpg client process",
        },
        "machine": {"cpus": os.cpu_count(), **versions},
        "checks": checks,
        "runs": runs,
        "ratios": ratios(runs),
    }
    if args.customers == BASE_CUSTOMERS:
        report["targets"] = targets(runs, checks)
    else:
        base = _base_results()
        report["targets"] = []
        if base:
            report["growth_base"] = base["date"]
            report["growth"] = growth(runs, base)
    return report


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench read", description=__doc__)
    parser.add_argument("--customers", type=int, default=BASE_CUSTOMERS)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds per server and query")
    parser.add_argument(
        "--concurrency", type=lambda v: [int(c) for c in v.split(",")], default=[1, 8, 32]
    )
    parser.add_argument("--queries", type=lambda v: v.split(","), default=["Q1", "Q2", "Q3", "Q4"])
    parser.add_argument("--workers", type=int, default=2, help="server processes, both systems")
    parser.add_argument(
        "--database-url", default=os.environ.get("C360_BENCH_DATABASE_URL", DEFAULT_URL)
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("C360_BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
    )
    parser.add_argument(
        "--keep",
        metavar="DATABASE",
        help="build the dataset into this database and keep it; a later run with the same "
        "--keep and --customers reuses it (a million customers take about 20 minutes to build)",
    )
    args = parser.parse_args(argv)
    console = Console()
    if not console.is_terminal:
        console.width = 140
    report = asyncio.run(_run(args, console))
    _report(console, report)
    suffix = "" if args.customers == BASE_CUSTOMERS else f"-{args.customers}"
    write_results("read", report, suffix)
    return 0 if all(check["ok"] for check in report["checks"].values()) else 1
