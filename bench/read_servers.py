"""The two servers of the read benchmark, as processes on loopback ports: ours (`c360 serve
--workers 2` on PostgreSQL + Redis) and PostGraphile (bench/postgraphile, installed here with
`npm ci`). Each runs in its own session (process group), so stopping it stops its workers;
`rss_mb` reads the resident memory of a server's whole process tree from /proc.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

POSTGRAPHILE = Path(__file__).resolve().parent / "postgraphile"
C360 = Path(sys.executable).parent / "c360"
STARTUP_SECONDS = 90


@dataclass(frozen=True, slots=True)
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def install_postgraphile() -> str:
    """`npm ci` into bench/postgraphile when its node_modules is missing or older than the
    lock file; returns the installed PostGraphile version. The `node` package brings Node 22,
    which PostGraphile 5 requires (the system's Node 20 answers every query with an error)."""
    modules = POSTGRAPHILE / "node_modules"
    lock = POSTGRAPHILE / "package-lock.json"
    if not modules.exists() or modules.stat().st_mtime < lock.stat().st_mtime:
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=POSTGRAPHILE,
            check=True,
        )
        modules.touch()
    manifest = json.loads((modules / "postgraphile" / "package.json").read_text())
    return str(manifest["version"])


def install_wrk() -> None:
    """wrk from Debian's packages when it is not on the PATH (the harness runs as root on
    the project's machines; elsewhere, install it yourself)."""
    if shutil.which("wrk"):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SystemExit("the read benchmark drives load with wrk: install it (apt install wrk)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(install, env=env, stdout=subprocess.DEVNULL).returncode:
        subprocess.run(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL, check=True)
        subprocess.run(install, env=env, stdout=subprocess.DEVNULL, check=True)


def node_version() -> str:
    node = POSTGRAPHILE / "node_modules" / ".bin" / "node"
    return subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()


def _spawn(
    command: list[str], env: dict[str, str], log: Path, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            command,
            cwd=cwd,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _post(url: str, body: dict[str, object], headers: dict[str, str]) -> dict[str, object]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **headers},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def post(server: Server, body: dict[str, object], key: str | None = None) -> dict[str, object]:
    return _post(server.url, body, {"Authorization": f"Bearer {key}"} if key else {})


def _wait_until_ready(server: Server, key: str | None, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited at startup; see {log}")
        try:
            if post(server, {"query": "{ __typename }"}, key).get("data"):
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{server.name} did not answer within {STARTUP_SECONDS} s; see {log}")


def stop(server: Server) -> None:
    """SIGTERM to the server's process group, SIGKILL if it lingers."""
    if server.process.poll() is not None:
        return
    os.killpg(server.process.pid, signal.SIGTERM)
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=15)


@contextmanager
def running(server: Server, key: str | None, log: Path) -> Iterator[Server]:
    try:
        _wait_until_ready(server, key, log)
        yield server
    finally:
        stop(server)


@contextmanager
def ours(
    database_url: str,
    redis_url: str,
    workers: int,
    key: str,
    log: Path,
    settings: dict[str, str] | None = None,
) -> Iterator[Server]:
    """`settings`: more environment for the server (bench.replicas names its replicas)."""
    port = free_port()
    env = {
        **(settings or {}),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "C360_GRAPHIQL": "false",
        # The key's per-minute cost budget is raised: the limiter still runs on every request
        # (a Redis round trip), but throttling is not what is measured.
        "C360_COST_BUDGET_PER_MINUTE": str(10**12),
    }
    command = [str(C360), "serve", "--host", "127.0.0.1", "--port", str(port)]
    process = _spawn([*command, "--workers", str(workers)], env, log)
    with running(Server("ours", f"http://127.0.0.1:{port}/graphql", process), key, log) as server:
        yield server


@contextmanager
def postgraphile(database_url: str, workers: int, log: Path) -> Iterator[Server]:
    port = free_port()
    env = {
        "DATABASE_URL": database_url,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WORKERS": str(workers),
        "NODE_ENV": "production",
        "GRAPHILE_ENV": "production",
    }
    node = str(POSTGRAPHILE / "node_modules" / ".bin" / "node")
    process = _spawn([node, "serve.mjs"], env, log, cwd=POSTGRAPHILE)
    server = Server("postgraphile", f"http://127.0.0.1:{port}/graphql", process)
    with running(server, None, log) as ready:
        yield ready


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        found += [int(child) for child in task.read_text().split()]
    return found


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def rss_mb(server: Server) -> tuple[float, float]:
    """Resident memory of the server's process tree in MB: the total, and the largest single
    process (a worker, for both servers)."""
    pending, sizes = [server.process.pid], []
    while pending:
        pid = pending.pop()
        try:
            sizes.append(_rss_kb(pid))
            pending += _children(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return sum(sizes) / 1024, max(sizes, default=0) / 1024
