"""What `c360 demo` and `c360 serve` check before they start: that the port is free (so that
nothing is printed, seeded or created for a server that cannot start), and the demo's admin key.

The demo keeps its admin key's secret in `.c360-demo-key` beside the SQLite file (in the
current directory for PostgreSQL), readable by its owner only, and reuses it while the
database still accepts it: the database keeps only the secret's hash, so the secret has to be
kept somewhere to be shown again.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

from cli.database import fail
from domain.access.keys import Role, authenticate, create_api_key
from store.db import Database

DEMO_KEY_FILE = ".c360-demo-key"


def ensure_port_free(host: str, port: int) -> None:
    """Bind the address as uvicorn will (SO_REUSEADDR), and let go of it at once."""
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, OverflowError) as error:
        fail(f"cannot listen on {host}:{port}: {error}", "pass --host and --port (1-65535)")
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            fail(
                f"port {port} on {host} is not available: {error.strerror or error}",
                f"stop what is listening there, or choose another port: "
                f"`make run PORT={port + 1}` or `c360 demo --port {port + 1}`",
            )


def demo_key_file(database_url: str) -> Path:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        return Path(url.database).parent / DEMO_KEY_FILE
    return Path.cwd() / DEMO_KEY_FILE


async def demo_admin_key(db: Database, path: Path) -> tuple[str, bool]:
    """The demo's admin secret and whether it is new: the stored one while this database
    accepts it as an admin key, else a new key (saved for the next run)."""
    if path.is_file():
        secret = path.read_text(encoding="utf-8").strip()
        principal = await authenticate(db, secret) if secret else None
        if principal is not None and principal.role is Role.ADMIN:
            return secret, False
    secret = (await create_api_key(db, "demo", Role.ADMIN)).secret
    path.touch(mode=0o600)
    os.chmod(path, 0o600)
    path.write_text(secret + "\n", encoding="utf-8")
    return secret, True


@contextmanager
def metrics_shared_across(workers: int) -> Iterator[None]:
    """Several workers are one service to Prometheus: each writes its figures under
    PROMETHEUS_MULTIPROC_DIR, which must be set before they start and empty at each start
    (prometheus-client's multiprocess mode, api.metrics); a directory made here is removed when
    the server stops. One worker needs none of it."""
    if workers <= 1:
        yield
        return
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    made = directory is None
    if directory is None:
        directory = tempfile.mkdtemp(prefix="c360-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    else:
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)
    try:
        yield
    finally:
        if made:
            shutil.rmtree(directory, ignore_errors=True)
