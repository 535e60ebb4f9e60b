"""Driving load: wrk for both GraphQL servers, an asyncpg client for the SQL floor.

wrk (C, event loop, one OS thread per two connections at most) is the load generator for
HTTP: it costs a few percent of a core, so on this 2-core machine the servers get nearly all
of the CPU; a Python client would take a core of its own and throttle whichever server it
drives. Its Lua script sends one of the prepared bodies per request and counts as an error
any response that is not HTTP 200 or carries GraphQL `errors`; latencies are wrk's own
histogram (request written to response read). The floor is one prepared statement per
request over asyncpg connections, in its own process (`python -m bench.read_floor`), timed
the same way: from sending the statement to having the whole JSON text.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WRK_MARK = "WRKJSON "

LUA = r"""
local bodies = {
%(bodies)s
}
local count = #bodies
local threads = {}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
%(auth)s

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  failures = 0
  math.randomseed(os.time() + #threads)
end

function request()
  return wrk.format(nil, nil, nil, bodies[math.random(count)])
end

function response(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  local failed = 0
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("failures")
  end
  local e = summary.errors
  io.write(string.format(
    '%(mark)s{"requests": %%d, "duration_us": %%d, "failed": %%d, "socket_errors": %%d, ' ..
    '"p50_us": %%d, "p99_us": %%d, "mean_us": %%f}\n',
    summary.requests, summary.duration, failed, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
"""


@dataclass(frozen=True, slots=True)
class Figures:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _lua_string(text: str) -> str:
    level = "=" * 4
    assert f"]{level}]" not in text
    return f"[{level}[{text}]{level}]"


def wrk_script(path: Path, bodies: list[dict[str, Any]], key: str | None) -> Path:
    """A Lua script sending `bodies` (one at random per request), with the bearer key."""
    auth = f'wrk.headers["Authorization"] = "Bearer {key}"' if key else ""
    lines = ",\n".join(_lua_string(json.dumps(body)) for body in bodies)
    path.write_text(LUA % {"bodies": lines, "auth": auth, "mark": WRK_MARK})
    return path


def wrk(url: str, script: Path, concurrency: int, seconds: float) -> Figures:
    threads = min(concurrency, 2)
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{concurrency}",
        f"-d{seconds:g}s",
        "--timeout=30s",
        "--latency",
        f"-s{script}",
        url,
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith(WRK_MARK))
    raw = json.loads(line.removeprefix(WRK_MARK))
    return Figures(
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        errors=raw["failed"] + raw["socket_errors"],
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
    )


def floor(dsn: str, sql: str, concurrency: int, seconds: float) -> Figures:
    """The SQL floor at `concurrency`, measured by bench.read_floor in its own process."""
    command = [sys.executable, "-m", "bench.read_floor", dsn, str(concurrency), f"{seconds:g}"]
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run(
        command, input=sql, capture_output=True, text=True, check=True, cwd=root, env=env
    ).stdout
    raw = json.loads(out.strip().splitlines()[-1])
    return Figures(**raw)
