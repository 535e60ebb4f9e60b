"""Real HTTP servers on loopback for tests: any ASGI app under uvicorn on a free port, a
webhook receiver that records what it is sent, and `c360` subprocesses."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvicorn

ROOT = Path(__file__).resolve().parent.parent


@asynccontextmanager
async def serve_asgi(app: Any, *, lifespan: str = "auto") -> AsyncIterator[str]:
    """`app` served by uvicorn in this event loop; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan=lifespan))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await wait_until(lambda: server.started, what="uvicorn to start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def wait_until(
    condition: Callable[[], bool], *, timeout: float = 8.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return orjson.loads(self.body)  # type: ignore[no-any-return]

    @property
    def event_id(self) -> str:
        return self.headers["x-c360-event-id"]


class Receiver:
    """A webhook endpoint that keeps every request it got, per path. It answers with
    `answer(request)` when set, else the scripted `statuses` in turn, then 200; requests past
    the first `stall_after` hang until `unstall()`."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, Received]] = []
        self.statuses: deque[int] = deque()
        self.answer: Callable[[Received], int] | None = None
        self.stall_after: int | None = None
        self._unstalled = asyncio.Event()
        self.url = ""

    def unstall(self) -> None:
        self._unstalled.set()

    def at(self, path: str) -> list[Received]:
        return [received for p, received in self.requests if p == path]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        received = Received({k.decode(): v.decode() for k, v in scope["headers"]}, body)
        self.requests.append((scope["path"], received))
        if self.stall_after is not None and len(self.requests) > self.stall_after:
            await self._unstalled.wait()
        if self.answer is not None:
            status = self.answer(received)
        else:
            status = self.statuses.popleft() if self.statuses else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


@asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    endpoint = Receiver()
    async with serve_asgi(endpoint, lifespan="off") as url:
        endpoint.url = url
        try:
            yield endpoint
        finally:
            endpoint.unstall()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def c360_env(database_url: str, redis_url: str | None, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("C360_")}
    env.pop("REDIS_URL", None)
    env |= {"DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1"}
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env | {f"C360_{k.upper()}": v for k, v in settings.items()}


@contextmanager
def c360_process(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """`c360 <args>` as a child process, killed (SIGKILL) on the way out if still running."""
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "c360"), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


async def wait_for_http(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Until `url` answers (the server in `process` is up)."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                err = process.stderr.read().decode() if process.stderr else ""
                raise AssertionError(f"server exited with {process.returncode}: {err}")
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"{url} did not come up")
