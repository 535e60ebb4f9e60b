"""Read replicas: Q2 throughput with one streaming replica against the primary alone, the
replica's replay lag during ingest, and the share of token-carrying reads a replica answers.

`python -m bench replicas [--customers N] [--duration S] [--rounds R]`:
1. starts a streaming replica of the local cluster (tests.replica_cluster: pg_basebackup -R,
   pg_ctl, on a free port), builds the read benchmark's dataset (bench.read_dataset) into a
   fresh database, and waits until the replica has replayed it;
2. Q2 (bench.read_queries) at c=8 with wrk against `c360 serve --workers 2` on the primary
   alone and with DATABASE_REPLICA_URLS naming the replica, alternately, twice each, so that
   both see the same background load; every answer is checked for errors;
3. R rounds of a mutation (identify a new email) followed by a read of that customer carrying
   the mutation's consistency token: how many a replica answered (X-Read-Source), and that
   every read found its customer;
4. the ingest part of bench activity (trackEvents / recordOrders batches) in its own process,
   while the primary's pg_stat_replication is sampled every 50 ms: the replica's replay_lag
   (seconds) and its distance in WAL bytes, as p50 / p99 / max.

Both servers and the replica run on this machine's cores: a replica here adds no CPU, so the
throughput figure says what routing costs, not what a replica on its own machine would add.
Results: bench/results/replicas-<date>.json, with the load average at each run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from rich.console import Console

from bench import read_dataset, read_load, read_queries, read_servers
from bench.common import DEFAULT_URL, checkpoint, fresh_database, server_url, write_results
from tests.replica_cluster import ReplicaServer, streaming_replica, wait_until_replayed

LOGS = Path("/tmp")
CONCURRENCY = 8
IDENTIFY = """mutation($value: String!) { identify(input: {identities: [{type: "email",
  value: $value}]}) { customer { id } errors { code } } }"""
READ_ONE = "query($id: ID!) { customer(id: $id) { id } }"


def _loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def _key(database_url: str, role: str) -> str:
    command = [str(read_servers.C360), "apikey", "create", "--role", role, "--name", "bench"]
    env = {**os.environ, "DATABASE_URL": database_url}
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    return out.strip().splitlines()[-1]


def _throughput(
    url: str, replica_url: str, redis_url: str, key: str, duration: float, console: Console
) -> list[dict[str, Any]]:
    bodies = read_queries.requests("Q2", [], datetime.now(UTC))["ours"].bodies
    script = read_load.wrk_script(LOGS / "c360-bench-replicas-q2.lua", bodies, key)
    setups = {"primary": {}, "primary+replica": {"DATABASE_REPLICA_URLS": replica_url}}
    runs = []
    for turn in range(2):
        order = list(setups) if turn == 0 else list(reversed(setups))
        for name in order:
            log = LOGS / f"c360-bench-replicas-{name}.log"
            with read_servers.ours(url, redis_url, 2, key, log, setups[name]) as server:
                read_load.wrk(server.url, script, CONCURRENCY, 3)  # warm pools, plans, caches
                load = _loadavg()
                figures = read_load.wrk(server.url, script, CONCURRENCY, duration)
            run = {
                "setup": name,
                "rps": round(figures.rps, 1),
                "p50_ms": round(figures.p50_ms, 2),
                "p99_ms": round(figures.p99_ms, 2),
                "errors": figures.errors,
                "load_1m": load,
            }
            console.print(
                f"  Q2 c={CONCURRENCY} {name:<16} {run['rps']:>8.1f} req/s  p50 {run['p50_ms']}"
                f" ms  p99 {run['p99_ms']} ms  errors {run['errors']}  load {load:.2f}"
            )
            runs.append(run)
    return runs


def _token_reads(
    url: str, replica_url: str, redis_url: str, key: str, rounds: int
) -> dict[str, Any]:
    settings = {"DATABASE_REPLICA_URLS": replica_url}
    log = LOGS / "c360-bench-replicas-tokens.log"
    sources: dict[str, int] = {}
    missing = 0
    with (
        read_servers.ours(url, redis_url, 2, key, log, settings) as server,
        httpx.Client(timeout=30) as client,
    ):
        auth = {"Authorization": f"Bearer {key}"}
        for _ in range(rounds):
            variables = {"value": f"{uuid.uuid4().hex}@replicas.bench"}
            wrote = client.post(
                server.url, json={"query": IDENTIFY, "variables": variables}, headers=auth
            )
            customer = wrote.json()["data"]["identify"]["customer"]["id"]
            token = wrote.headers["X-Consistency-Token"]
            read = client.post(
                server.url,
                json={"query": READ_ONE, "variables": {"id": customer}},
                headers={**auth, "X-Consistency-Token": token},
            )
            source = read.headers["X-Read-Source"]
            sources[source] = sources.get(source, 0) + 1
            missing += read.json()["data"]["customer"] is None
    share = sources.get("replica", 0) / rounds
    return {
        "rounds": rounds,
        "sources": sources,
        "replica_share": round(share, 4),
        "reads_missing_their_write": missing,
    }


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def _sample_lag(server: Any, name: str, done: asyncio.Event) -> dict[str, list[float]]:
    connection = await asyncpg.connect(
        host=server.host, port=server.port or 5432, user=server.username, database="postgres"
    )
    seconds: list[float] = []
    distance: list[float] = []
    try:
        while not done.is_set():
            row = await connection.fetchrow(
                "SELECT coalesce(extract(epoch FROM replay_lag), 0)::float8 AS lag, "
                "pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8 AS bytes "
                "FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid "
                "WHERE s.slot_name = $1",
                name,
            )
            if row is not None:
                seconds.append(row["lag"])
                distance.append(row["bytes"])
            await asyncio.sleep(0.05)
    finally:
        await connection.close()
    return {"seconds": seconds, "bytes": distance}


async def _lag_during_ingest(
    server: Any, replica: ReplicaServer, items: int, people: int
) -> dict[str, Any]:
    done = asyncio.Event()
    sampler = asyncio.create_task(_sample_lag(server, replica.name, done))
    code = (
        "import asyncio, sys; from bench import activity, common; "
        "server = common.server_url(sys.argv[1]); "
        "print(asyncio.run(activity._timed_ingest(server, int(sys.argv[2]), int(sys.argv[3]), "
        "1000)))"
    )
    load = _loadavg()
    started = time.perf_counter()
    root = Path(__file__).resolve().parent.parent
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        server.render_as_string(hide_password=False),
        str(items),
        str(people),
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    elapsed = time.perf_counter() - started
    done.set()
    samples = await sampler
    if process.returncode:
        raise RuntimeError("the ingest failed")
    return {
        "items": items,
        "people": people,
        "ingest_seconds": round(elapsed, 1),
        "ingest": out.decode().strip()[-300:],
        "samples": len(samples["seconds"]),
        "replay_lag_seconds": {
            "p50": _percentile(samples["seconds"], 0.5),
            "p99": _percentile(samples["seconds"], 0.99),
            "max": max(samples["seconds"], default=None),
        },
        "replay_lag_bytes": {
            "p50": _percentile(samples["bytes"], 0.5),
            "p99": _percentile(samples["bytes"], 0.99),
            "max": max(samples["bytes"], default=None),
        },
        "load_1m": load,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench replicas", description=__doc__)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per Q2 run")
    parser.add_argument("--rounds", type=int, default=300, help="write-then-read rounds")
    parser.add_argument("--items", type=int, default=20_000, help="ingest: events and orders")
    parser.add_argument("--people", type=int, default=5_000)
    parser.add_argument(
        "--parts",
        type=lambda v: set(v.split(",")),
        default={"q2", "tokens", "lag"},
        help="what to measure: q2, tokens, lag (comma-separated)",
    )
    parser.add_argument(
        "--database-url", default=os.environ.get("C360_BENCH_DATABASE_URL", DEFAULT_URL)
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("C360_BENCH_REDIS_URL", "redis://127.0.0.1:6379/6")
    )
    args = parser.parse_args(argv)
    console = Console()
    read_servers.install_wrk()
    server = server_url(args.database_url)
    report: dict[str, Any] = {"date": datetime.now(UTC).date().isoformat(), "cpus": os.cpu_count()}
    with streaming_replica(args.database_url) as replica:

        async def measured() -> None:
            async with fresh_database(server) as db:
                url = db.engine.url.set(drivername="postgresql")
                dsn = url.render_as_string(hide_password=False)
                replica_dsn = url.set(port=replica.port).render_as_string(hide_password=False)
                if "q2" in args.parts:  # the write-then-read rounds need no dataset
                    console.print(f"building {args.customers:,} customers ...")
                    report["dataset"] = await read_dataset.build(
                        db, args.customers, datetime.now(UTC), console.print
                    )
                await checkpoint(server)
                key = await asyncio.to_thread(_key, dsn, "admin")
                await wait_until_replayed(dsn, replica.port)
                if "q2" in args.parts:
                    report["q2"] = await asyncio.to_thread(
                        _throughput, dsn, replica_dsn, args.redis_url, key, args.duration, console
                    )
                if "tokens" in args.parts:
                    report["token_reads"] = await asyncio.to_thread(
                        _token_reads, dsn, replica_dsn, args.redis_url, key, args.rounds
                    )
                    console.print(f"token-carrying reads: {report['token_reads']}")
            if "lag" in args.parts:
                report["lag_during_ingest"] = await _lag_during_ingest(
                    server, replica, args.items, args.people
                )
                console.print(f"replay lag during ingest: {report['lag_during_ingest']}")

        asyncio.run(measured())
    report["load_1m_end"] = _loadavg()
    if "q2" in report:
        alone = [r["rps"] for r in report["q2"] if r["setup"] == "primary"]
        routed = [r["rps"] for r in report["q2"] if r["setup"] == "primary+replica"]
        report["q2_rps_ratio"] = round(sum(routed) / sum(alone), 3)
        console.print(f"Q2 c={CONCURRENCY}: primary+replica / primary = {report['q2_rps_ratio']}")
    suffix = "" if args.parts == {"q2", "tokens", "lag"} else "-" + "-".join(sorted(args.parts))
    write_results("replicas", report, suffix)
    return 0
