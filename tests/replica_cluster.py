"""A streaming replica of the test PostgreSQL cluster, on a port of its own, for the read
replica tests: `pg_basebackup -R` from the primary, then `pg_ctl start` on the copy.

The replica streams through a physical replication slot of its own (`c360_replica_<port>`),
dropped with it. The primary must accept replication connections from 127.0.0.1; when its pg_hba.conf has no
such rule, one (`host replication all 127.0.0.1/32 trust`, like its other loopback rules) is
added and the configuration reloaded, so that `.ci/run` works on a clean machine. The
server's files belong to the `postgres` OS user: run as root, the tools run as that user.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

PG_BIN = Path(os.environ.get("C360_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
REPLICATION_RULE = "host replication all 127.0.0.1/32 trust"


def _as_server_user(*command: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


def _run(*command: str, log: Path | None = None) -> None:
    done = subprocess.run(_as_server_user(*command), capture_output=True, text=True, timeout=300)
    if done.returncode:
        told = log.read_text()[-3000:] if log is not None and log.exists() else ""
        raise RuntimeError(f"{command[0]} failed: {done.stdout}{done.stderr}{told}")


async def _connect(url: str, port: int | None = None) -> asyncpg.Connection:
    parsed = make_url(url)
    return await asyncpg.connect(
        host=parsed.host,
        port=port or parsed.port or 5432,
        user=parsed.username,
        password=parsed.password,
        database=parsed.database or "postgres",
    )


# A hot standby must allow at least as much as its primary does.
AT_LEAST_THE_PRIMARYS = (
    "max_connections",
    "max_worker_processes",
    "max_wal_senders",
    "max_prepared_transactions",
    "max_locks_per_transaction",
)


async def _allow_replication(server_url: str) -> dict[str, str]:
    """The replication rule, added if missing; the primary's settings a standby must match."""
    connection = await _connect(server_url)
    try:
        limits = {name: await connection.fetchval(f"SHOW {name}") for name in AT_LEAST_THE_PRIMARYS}
        allowed = await connection.fetchval(
            "SELECT count(*) FROM pg_hba_file_rules WHERE 'replication' = ANY(database) "
            "AND address IN ('127.0.0.1', '0.0.0.0', 'all', 'samehost')"
        )
        if not allowed:
            hba_file = await connection.fetchval("SHOW hba_file")
            with open(hba_file, "a") as rules:
                rules.write(f"\n{REPLICATION_RULE}\n")
            await connection.execute("SELECT pg_reload_conf()")
    finally:
        await connection.close()
    return limits


async def _drop_slot(server_url: str, name: str) -> None:
    """The replica's slot, gone with it: a slot left behind would hold WAL on the primary."""
    connection = await _connect(server_url)
    try:
        await connection.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE slot_name = $1",
            name,
        )
    finally:
        await connection.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _configure(directory: Path, port: int, limits: dict[str, str]) -> None:
    (directory / "postgresql.conf").write_text(
        "".join(f"{name} = {value}\n" for name, value in limits.items()) + f"port = {port}\n"
        "listen_addresses = '127.0.0.1'\n"
        f"unix_socket_directories = '{directory}'\n"
        "hot_standby = on\n"
        "shared_buffers = 32MB\n"
        "fsync = off\n"
        "wal_receiver_status_interval = 1s\n"
    )
    (directory / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
    (directory / "pg_ident.conf").write_text("")


async def wait_until_replayed(server_url: str, replica_port: int, timeout: float = 60) -> None:
    """Until the replica has replayed everything the primary had written when asked."""
    primary = await _connect(server_url)
    try:
        target = await primary.fetchval("SELECT pg_current_wal_insert_lsn()::text")
    finally:
        await primary.close()
    deadline = time.monotonic() + timeout
    while True:
        try:
            replica = await _connect(server_url, replica_port)
            try:
                done = await replica.fetchval(
                    "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn", target
                )
            finally:
                await replica.close()
            if done:
                return
        except (OSError, asyncpg.PostgresError):
            pass  # still starting up
        if time.monotonic() > deadline:
            raise TimeoutError("the replica did not catch up with the primary")
        await asyncio.sleep(0.05)


class ReplicaServer:
    """A running replica: its port and data directory, stopped and started again at will."""

    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port
        self.name = f"c360_replica_{port}"  # its replication slot on the primary

    def pg_ctl(self, *arguments: str) -> None:
        log = self.directory / "server.log"
        _run(str(PG_BIN / "pg_ctl"), "-D", str(self.directory), "-l", str(log), *arguments, log=log)

    def start(self) -> None:
        self.pg_ctl("-w", "-t", "120", "start")

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("-m", mode, "-w", "stop")


@contextmanager
def streaming_replica(server_url: str) -> Iterator[ReplicaServer]:
    """A replica of the cluster at `server_url`, caught up, removed at the end."""
    limits = asyncio.run(_allow_replication(server_url))
    parsed = make_url(server_url)
    directory = Path(tempfile.mkdtemp(prefix="c360-replica-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    directory.chmod(0o700)
    server = ReplicaServer(directory, _free_port())
    started = False
    try:
        host, port = parsed.host or "127.0.0.1", str(parsed.port or 5432)
        user = parsed.username or "postgres"
        source = ("-h", host, "-p", port, "-U", user, "-D", str(directory))
        # A slot of its own keeps the primary's WAL until the replica has it: under a busy
        # primary, a replica without one falls behind the WAL kept and never catches up.
        slot = ("-C", "-S", server.name)
        backup = (*source, *slot, "-X", "stream", "-R", "--checkpoint=fast")
        for attempt in range(3):  # a busy shared server has cut a copy short: copy again
            try:
                _run(str(PG_BIN / "pg_basebackup"), *backup)
                break
            except RuntimeError:
                asyncio.run(_drop_slot(server_url, server.name))
                if attempt == 2:
                    raise
        _configure(directory, server.port, limits)
        server.start()
        started = True
        asyncio.run(wait_until_replayed(server_url, server.port))
        yield server
    finally:
        if started:
            with suppress(RuntimeError):  # already stopped
                server.stop("immediate")
        shutil.rmtree(directory, ignore_errors=True)
        asyncio.run(_drop_slot(server_url, server.name))
