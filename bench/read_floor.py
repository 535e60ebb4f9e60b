"""`python -m bench.read_floor DSN CONCURRENCY SECONDS < statement.sql`: the SQL floor's load.

CONCURRENCY asyncpg connections each run the statement (prepared once per connection) back to
back for SECONDS, on uvloop; prints one JSON line: requests, seconds, errors, p50_ms, p99_ms.
It runs in its own process so that, like wrk, it competes with the server for CPU only as a
client would.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import asyncpg
import uvloop


def _percentile(ordered: list[float], share: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def _client(dsn: str, sql: str, deadline: float, latencies: list[float]) -> int:
    connection = await asyncpg.connect(dsn)
    errors = 0
    try:
        statement = await connection.prepare(sql)
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                await statement.fetchval()
            except asyncpg.PostgresError:
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)
    finally:
        await connection.close()
    return errors


async def run(dsn: str, sql: str, concurrency: int, seconds: float) -> dict[str, float | int]:
    latencies: list[float] = []
    started = time.perf_counter()
    deadline = started + seconds
    errors = await asyncio.gather(
        *(_client(dsn, sql, deadline, latencies) for _ in range(concurrency))
    )
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "errors": sum(errors),
        "p50_ms": 1000 * _percentile(latencies, 0.50),
        "p99_ms": 1000 * _percentile(latencies, 0.99),
    }


def main(argv: list[str]) -> int:
    dsn, concurrency, seconds = argv[0], int(argv[1]), float(argv[2])
    figures = uvloop.run(run(dsn, sys.stdin.read(), concurrency, seconds))
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
