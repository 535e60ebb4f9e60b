"""The `c360` command as a user meets it: one-line errors with a hint, a SQLite path that can't
silently point at a new empty file, `--json` for scripts, the demo refusing a busy port before
it prints a key and reusing its key across runs. Driven with typer's CliRunner against real
databases (SQLite, and PostgreSQL when C360_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

import cli.main
from cli.main import app
from domain.access.keys import list_api_keys, revoke_api_key
from service.demo import seed_demo
from store.db import Database
from store.migrate import head_revisions
from tests.conftest import BACKENDS, fresh_database_url


def c360(*args: str, url: str | None = None, **env: str) -> Result:
    environment = {"C360_DEBUG": None, **env, **({"DATABASE_URL": url} if url else {})}
    return CliRunner().invoke(app, list(args), env=environment)  # type: ignore[arg-type]


async def c360_async(*args: str, url: str | None = None) -> Result:
    return await asyncio.to_thread(c360, *args, url=url)


def _one_error(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "hint:" in result.stderr
    return errors[0]


def test_an_unreachable_database_is_one_line_with_a_hint() -> None:
    line = _one_error(c360("apikey", "list", url="postgresql://postgres@127.0.0.1:1/c360"))
    assert "cannot reach the database at postgresql://postgres@127.0.0.1:1/c360" in line


def test_debug_shows_the_traceback_instead() -> None:
    result = c360("--debug", "apikey", "list", url="postgresql://postgres@127.0.0.1:1/c360")
    assert result.exit_code == 1
    assert isinstance(result.exception, OSError)


def test_a_bad_database_url_is_one_line_with_a_hint() -> None:
    assert "bad DATABASE_URL 'mysql://x/y'" in _one_error(c360("migrate", url="mysql://x/y"))
    assert "bad DATABASE_URL" in _one_error(c360("apikey", "list", url="not a url"))


def test_a_missing_sqlite_file_is_refused_and_not_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    line = _one_error(c360("apikey", "list", url="sqlite:///./c360.db"))
    assert f"no SQLite database at {tmp_path / 'c360.db'}" in line
    assert not (tmp_path / "c360.db").exists()


def test_a_relative_sqlite_path_is_resolved_against_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    result = c360("migrate", "--json", url="sqlite:///data/c360.db")
    assert result.exit_code == 0, result.output
    assert f"database: SQLite file {tmp_path / 'data' / 'c360.db'}" in result.stderr
    assert json.loads(result.stdout)["revision"] == ", ".join(head_revisions())
    assert (tmp_path / "data" / "c360.db").stat().st_size > 0
    assert c360("apikey", "list", url="sqlite:///data/c360.db").exit_code == 0


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    for url in fresh_database_url(request.param, tmp_path):
        if request.param == "sqlite":  # an existing file with no schema
            sqlite3.connect(url.removeprefix("sqlite:///")).close()
        yield url


def test_an_unmigrated_database_names_the_missing_revision(empty_database_url: str) -> None:
    line = _one_error(c360("sweep", url=empty_database_url))
    assert f"lacks revision {head_revisions()[0]}" in line
    assert "c360 migrate" in c360("sweep", url=empty_database_url).stderr


@pytest.mark.parametrize("size", ["0", "-5"])
def test_sweep_refuses_a_batch_size_below_one(size: str, tmp_path: Path) -> None:
    result = c360("sweep", "--batch-size", size, url=f"sqlite:///{tmp_path / 'none.db'}")
    assert result.exit_code == 2
    assert "--batch-size" in result.output and "greater than or equal to 1" in result.output


async def test_every_result_prints_as_json_with_json(db: Database, database_url: str) -> None:
    async def run(*args: str) -> Any:
        result = await c360_async(*args, "--json", url=database_url)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    assert (await run("migrate"))["revision"] == ", ".join(head_revisions())
    seeded = await run("seed-demo", "--customers", "30", "--seed", "7")
    assert seeded["added"] is True and seeded["customers"] == 30
    assert (await run("seed-demo", "--customers", "30", "--if-empty"))["added"] is False
    created = await run("apikey", "create", "--role", "frontend", "--name", "web")
    assert created["role"] == "frontend" and created["secret"].startswith("c360_")
    [listed] = await run("apikey", "list")
    assert listed["id"] == created["id"] and "secret" not in listed
    assert (await run("sweep", "--batch-size", "7"))["customers"] == 30
    assert (await run("recompute-metrics"))["rfm_scored"] >= 1
    assert set(await run("sweep-tags")) >= {"expired", "rule_tags", "assigned", "removed"}
    assert (await run("refresh-segments"))["segments"] == []


async def test_apikey_list_prints_a_header_line(db: Database, database_url: str) -> None:
    await c360_async("apikey", "create", "--role", "partner", "--name", "acme", url=database_url)
    result = await c360_async("apikey", "list", url=database_url)
    header, row = result.stdout.splitlines()
    assert header.split("\t") == ["id", "role", "name", "prefix", "created", "revoked"]
    assert row.split("\t")[1:3] == ["partner", "acme"]


async def test_seed_demo_ends_with_a_summary_table_not_a_repr(
    db: Database, database_url: str
) -> None:
    result = await c360_async("seed-demo", "--customers", "20", url=database_url)
    assert result.exit_code == 0, result.output
    assert "DemoSummary(" not in result.output
    assert "demo data added" in result.stdout and "customers" in result.stdout


async def test_demo_refuses_a_busy_port_before_anything_else(
    db: Database, database_url: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = await c360_async("demo", "--port", port, url=database_url)
    line = _one_error(result)
    assert f"port {port} on 127.0.0.1 is not available" in line
    assert "Admin key" not in result.output
    assert await list_api_keys(db) == []


def _free_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


async def test_demo_reuses_its_admin_key_across_runs(
    db: Database, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # where PostgreSQL's key file goes
    served: list[dict[str, Any]] = []
    monkeypatch.setattr(cli.main.uvicorn, "run", lambda *_a, **kw: served.append(kw))
    await seed_demo(db, customers=5)  # the demo then seeds nothing

    def admin_key(result: Result) -> str:
        assert result.exit_code == 0, result.output
        [line] = [line for line in result.stderr.splitlines() if "Admin key:" in line]
        return line.split()[-1]

    port = _free_port()
    first = admin_key(await c360_async("demo", "--port", port, url=database_url))
    second = admin_key(await c360_async("demo", "--port", port, url=database_url))
    assert first == second
    [key] = await list_api_keys(db)
    assert (key.name, key.role.value) == ("demo", "admin")
    assert served[-1]["port"] == int(port)

    await revoke_api_key(db, key.id)  # a key the database no longer accepts is replaced
    third = admin_key(await c360_async("demo", "--port", port, url=database_url))
    assert third != first and len(await list_api_keys(db)) == 2
