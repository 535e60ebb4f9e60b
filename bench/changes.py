"""Change events on PostgreSQL + Redis: how fast the outbox drains to a webhook, and how long a
committed change takes to reach a subscriber, with 1 and 2 processes.

Part 1 (throughput): `--events` change events of `--customers` customers are committed to the
outbox in one transaction while 1 (then 2) `c360 dispatch` processes wait for work; timed from
that commit until every webhook delivery is marked delivered. The receiver is a minimal ASGI
app answering 204, in its own uvicorn process. The baseline of the same run: as many plain
POSTs to such a receiver, as many at a time as a dispatcher sends, with no database.

Part 2 (latency): 1 (then 2) `c360 serve` processes share the database and Redis, each running
its dispatcher at the default poll interval; `--subscribers` websocket subscribers are spread
over them. Identify mutations go over HTTP to the processes in turn, one every 10-30 ms; a
sample is the time from a mutation's response (its commit is done) to one subscriber
receiving its customer.created event. On PostgreSQL the dispatcher is woken by NOTIFY at the
commit, so the event can reach a subscriber before the response reaches the caller (a negative
sample); the times from sending the request to each of the two are reported beside.

It creates and drops its own databases (`c360_bench_<random>`) and never touches others.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.engine import URL
from websockets.asyncio.client import ClientConnection, connect

from bench.common import DEFAULT_URL, fresh_database, server_sql, server_url, write_results
from domain.access.keys import Role, create_api_key
from domain.changes import Change, record_changes
from domain.delivery.webhooks import define_webhook
from service.settings import Settings
from store.db import Database
from store.models import WebhookDelivery

ROOT = Path(__file__).resolve().parent.parent
C360 = str(Path(sys.executable).parent / "c360")
SUBSCRIBE = 'subscription { changes(kinds: ["customer.created"]) { customerId } }'
IDENTIFY = """mutation($e: String!) { identify(input: {identities: [{type: "email", value: $e}]})
  { customer { id } errors { code } } }"""


async def receiver(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The webhook endpoint of part 1: reads the request, answers 204."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(database_url: str, redis_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("C360_")}
    env |= {"DATABASE_URL": database_url, "C360_TRIGGER_INTERVAL_SECONDS": "3600"}
    env.pop("REDIS_URL", None)
    return env | ({"REDIS_URL": redis_url} if redis_url else {})


def _cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def _processes(
    commands: list[list[str]], env: dict[str, str]
) -> Iterator[list[subprocess.Popen[bytes]]]:
    running = [
        subprocess.Popen(c, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for c in commands
    ]
    try:
        yield running
    finally:
        for process in running:
            process.send_signal(signal.SIGTERM)
        for process in running:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


async def _until_up(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                await client.get(url)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise SystemExit(f"{url} did not come up")


def _url_of(db: Database) -> str:
    return db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


# --- part 1: outbox -> webhook throughput ---


async def _throughput(server: URL, dispatchers: int, events: int, customers: int) -> dict[str, Any]:
    port = _free_port()
    receiving = [sys.executable, "-m", "uvicorn", "bench.changes:receiver", "--port", str(port)]
    receiving += ["--log-level", "warning", "--lifespan", "off"]
    async with fresh_database(server) as db:
        await define_webhook(
            db,
            f"http://127.0.0.1:{port}/hook",
            ["customer.updated"],
            "bench-secret-0123456789",
            "bench",
        )
        name = db.engine.url.database
        env = _env(_url_of(db), None)
        with _processes([receiving] + [[C360, "dispatch"]] * dispatchers, env) as running:
            await _until_up(f"http://127.0.0.1:{port}/")
            await _until_connected(server, name, dispatchers)
            cpu_before = [_cpu_seconds(p.pid) for p in running]
            ids = [uuid.uuid4() for _ in range(customers)]
            changes = [
                Change(
                    "customer.updated",
                    ids[n % customers],
                    {"customerId": str(ids[n % customers]), "n": n},
                )
                for n in range(events)
            ]
            async with db.write() as session:
                await record_changes(session, changes)
            started = time.perf_counter()
            await _until_delivered(db, events)
            seconds = time.perf_counter() - started
            cpu = [_cpu_seconds(p.pid) - b for p, b in zip(running, cpu_before, strict=True)]
    return {
        "dispatchers": dispatchers,
        "events": events,
        "seconds": seconds,
        "events_per_s": events / seconds,
        # Independent of what else the machine runs: CPU per event in our processes.
        "dispatcher_cpu_ms_per_event": sum(cpu[1:]) * 1000 / events,
        "receiver_cpu_ms_per_event": cpu[0] * 1000 / events,
    }


async def _plain_posts(events: int, concurrency: int) -> dict[str, Any]:
    """The baseline of the same run: as many signed-size POSTs to the same kind of receiver,
    `concurrency` at a time over pooled connections, with no database at all (the ceiling
    the dispatcher could reach on this machine now)."""
    port = _free_port()
    receiving = [sys.executable, "-m", "uvicorn", "bench.changes:receiver", "--port", str(port)]
    receiving += ["--log-level", "warning", "--lifespan", "off"]
    body = b'{"id": "00000000-0000-0000-0000-000000000000", "kind": "customer.updated"}' * 3
    with _processes([receiving], _env("", None)) as running:
        await _until_up(f"http://127.0.0.1:{port}/")
        cpu_before = _cpu_seconds(running[0].pid)
        limit = asyncio.Semaphore(concurrency)
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as client:

            async def post() -> None:
                async with limit, client.post(f"http://127.0.0.1:{port}/hook", data=body) as r:
                    assert r.status == 204

            started = time.perf_counter()
            await asyncio.gather(*(post() for _ in range(events)))
            seconds = time.perf_counter() - started
        receiver_cpu = _cpu_seconds(running[0].pid) - cpu_before
    return {
        "events": events,
        "concurrency": concurrency,
        "seconds": seconds,
        "posts_per_s": events / seconds,
        "receiver_cpu_ms_per_event": receiver_cpu * 1000 / events,
    }


async def _until_connected(server: URL, database: str | None, processes: int) -> None:
    """Each dispatcher holds a connection once its loops poll."""
    query = f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{database}'"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if (await server_sql(server, query))[0] >= processes:
            return
        await asyncio.sleep(0.1)
    raise SystemExit("dispatchers did not start")


async def _until_delivered(db: Database, expected: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    count = select(func.count()).where(WebhookDelivery.status == "DELIVERED")
    while time.monotonic() < deadline:
        async with db.read() as session:
            if await session.scalar(count) == expected:
                return
        await asyncio.sleep(0.02)
    raise SystemExit("deliveries did not all complete")


# --- part 2: commit -> subscriber latency ---


class _Subscriber:
    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.arrivals: dict[str, float] = {}

    async def read(self) -> None:
        async for raw in self.socket:
            message = json.loads(raw)
            if message["type"] == "next":
                changes = message["payload"]["data"]["changes"]
                self.arrivals.setdefault(changes["customerId"], time.perf_counter())


@asynccontextmanager
async def _subscribers(urls: list[str], count: int, key: str) -> AsyncIterator[list[_Subscriber]]:
    sockets = []
    readers = []
    subscribers = []
    try:
        for n in range(count):
            ws = urls[n % len(urls)].replace("http://", "ws://") + "/graphql"
            socket_ = await connect(ws, subprotocols=["graphql-transport-ws"])
            sockets.append(socket_)
            await socket_.send(
                json.dumps(
                    {"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}}
                )
            )
            assert json.loads(await socket_.recv())["type"] == "connection_ack"
            await socket_.send(
                json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}})
            )
            subscriber = _Subscriber(socket_)
            subscribers.append(subscriber)
            readers.append(asyncio.create_task(subscriber.read()))
        yield subscribers
    finally:
        for socket_ in sockets:
            await socket_.close()
        for reader in readers:
            reader.cancel()


async def _identify(client: httpx.AsyncClient, url: str, key: str, email: str) -> str:
    response = await client.post(
        url + "/graphql",
        json={"query": IDENTIFY, "variables": {"e": email}},
        headers={"Authorization": f"Bearer {key}"},
    )
    return str(response.json()["data"]["identify"]["customer"]["id"])


async def _latency(
    server: URL, redis_url: str, processes: int, mutations: int, subscribers: int
) -> dict[str, Any]:
    ports = [_free_port() for _ in range(processes)]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    rng = random.Random(7)
    async with fresh_database(server) as db:
        key = (await create_api_key(db, "bench", Role.ADMIN)).secret
        commands = [[C360, "serve", "--port", str(port)] for port in ports]
        with _processes(commands, _env(_url_of(db), redis_url)):
            for url in urls:
                await _until_up(url + "/healthz")
            async with _subscribers(urls, subscribers, key) as subs, httpx.AsyncClient() as client:
                warm = 0
                while not all(s.arrivals for s in subs):  # every subscription is live
                    await _identify(client, urls[warm % processes], key, f"warm{warm}@bench.cn")
                    warm += 1
                    await asyncio.sleep(0.05)
                    if warm > 400:
                        raise SystemExit("subscriptions never went live")
                committed: dict[str, float] = {}
                sent: dict[str, float] = {}
                for n in range(mutations):
                    started = time.perf_counter()
                    customer = await _identify(client, urls[n % processes], key, f"p{n}@bench.cn")
                    committed[customer] = time.perf_counter()
                    sent[customer] = started
                    await asyncio.sleep(rng.uniform(0.01, 0.03))
                deadline = time.monotonic() + 30
                while any(not committed.keys() <= s.arrivals.keys() for s in subs):
                    if time.monotonic() > deadline:
                        raise SystemExit("subscribers missed events")
                    await asyncio.sleep(0.05)
    samples = sorted((s.arrivals[c] - at) * 1000 for s in subs for c, at in committed.items())
    # Woken by NOTIFY, a subscriber can hear of a commit before the caller has read the
    # response (negative samples above): these two bracket commit -> subscriber from below.
    from_request = [(s.arrivals[c] - at) * 1000 for s in subs for c, at in sent.items()]
    responses = [(committed[c] - at) * 1000 for c, at in sent.items()]
    return {
        "request_to_subscriber_p50_ms": statistics.median(from_request),
        "request_to_response_p50_ms": statistics.median(responses),
        "processes": processes,
        "mutations": mutations,
        "subscribers": subscribers,
        "samples": len(samples),
        "p50_ms": statistics.median(samples),
        "p99_ms": samples[min(len(samples) - 1, int(len(samples) * 0.99))],
        "max_ms": samples[-1],
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench changes", description=__doc__)
    parser.add_argument("--events", type=int, default=20_000, help="throughput: outbox events")
    parser.add_argument("--customers", type=int, default=1_000, help="throughput: customers")
    parser.add_argument("--mutations", type=int, default=300, help="latency: identify calls")
    parser.add_argument("--subscribers", type=int, default=4, help="latency: websocket clients")
    parser.add_argument(
        "--database-url", default=os.environ.get("C360_BENCH_DATABASE_URL", DEFAULT_URL)
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("C360_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument(
        "--part", choices=("throughput", "latency"), help="run only this part (default: both)"
    )
    parser.add_argument(
        "--suffix", default="", help="results file: bench/results/changes-<date><suffix>.json"
    )
    args = parser.parse_args(argv)
    server = server_url(args.database_url)
    console = Console()
    load_before = os.getloadavg()[0]
    throughput = [
        asyncio.run(_throughput(server, n, args.events, args.customers))
        for n in (1, 2)
        if args.part in (None, "throughput")
    ]
    baseline = (
        asyncio.run(_plain_posts(args.events, Settings.model_fields["webhook_concurrency"].default))
        if args.part in (None, "throughput")
        else None
    )
    for row in throughput:
        assert baseline is not None
        row["of_plain_posts"] = row["events_per_s"] / baseline["posts_per_s"]
    latency = [
        asyncio.run(_latency(server, args.redis_url, n, args.mutations, args.subscribers))
        for n in (1, 2)
        if args.part in (None, "latency")
    ]
    table = Table(title="outbox -> webhook (one endpoint, every event)")
    columns = ("dispatcher processes", "events", "seconds", "events/s", "dispatcher CPU ms/event")
    for column in (*columns, "receiver CPU ms/event"):
        table.add_column(column)
    for row in throughput:
        table.add_row(
            str(row["dispatchers"]),
            f"{row['events']:,}",
            f"{row['seconds']:.2f}",
            f"{row['events_per_s']:,.0f}",
            f"{row['dispatcher_cpu_ms_per_event']:.2f}",
            f"{row['receiver_cpu_ms_per_event']:.2f}",
        )
    console.print(table)
    if baseline is not None:
        console.print(
            f"baseline, same run: {baseline['events']:,} plain POSTs, "
            f"{baseline['concurrency']} at a time, no database: "
            f"{baseline['posts_per_s']:,.0f}/s; the dispatcher reaches "
            + ", ".join(f"{row['of_plain_posts']:.2f}x" for row in throughput)
        )
    table = Table(title="mutation commit -> subscriber (NOTIFY on commit, polling the fallback)")
    for column in ("API processes", "samples", "p50 ms", "p99 ms", "max ms"):
        table.add_column(column)
    for column in ("request -> subscriber p50 ms", "request -> response p50 ms"):
        table.add_column(column)
    for row in latency:
        table.add_row(
            str(row["processes"]),
            str(row["samples"]),
            f"{row['p50_ms']:.1f}",
            f"{row['p99_ms']:.1f}",
            f"{row['max_ms']:.1f}",
            f"{row['request_to_subscriber_p50_ms']:.1f}",
            f"{row['request_to_response_p50_ms']:.1f}",
        )
    console.print(table)
    write_results(
        "changes",
        {
            "args": vars(args) | {"database_url": "<server>", "redis_url": "<redis>"},
            "cpus": os.cpu_count(),
            # Other work on the machine skews the wall-clock figures; CPU per event less so.
            "load_average": {"before": load_before, "after": os.getloadavg()[0]},
            "throughput": throughput,
            "baseline_plain_posts": baseline,
            "latency": latency,
        },
        args.suffix,
    )
    return 0
