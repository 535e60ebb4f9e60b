"""`c360 serve` and `c360 demo` around uvicorn: one PROMETHEUS_MULTIPROC_DIR for several
workers (api.metrics), and uvicorn's logging handed to structlog (service.logs)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import cli.main
from cli.serving import metrics_shared_across
from service.demo import seed_demo
from store.db import Database
from tests.cli.test_cli import _free_port, c360_async


def test_several_workers_get_a_fresh_directory_removed_afterwards(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    with metrics_shared_across(2):
        directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
        assert directory.is_dir() and not any(directory.iterdir())
    assert not directory.exists()


def test_a_directory_of_ones_own_is_emptied_and_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "counter_1234.db").write_bytes(b"stale")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    with metrics_shared_across(3):
        assert not any(tmp_path.iterdir())
    assert tmp_path.is_dir()


def test_one_worker_needs_no_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    with metrics_shared_across(1):
        assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ


async def test_serve_and_demo_hand_uvicorn_logging_to_structlog(
    db: Database, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvicorn's own lines go through the root handler (log_config=None); the demo logs in
    coloured lines, `serve` in JSON, unless C360_LOG_FORMAT says otherwise."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("C360_LOG_FORMAT", raising=False)
    served: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(cli.main.uvicorn, "run", lambda app, **kw: served.append((app, kw)))
    await seed_demo(db, customers=5)
    if not database_url.startswith("sqlite"):
        assert (await c360_async("serve", "--port", _free_port(), url=database_url)).exit_code == 0
        assert served[-1] == ("api.app:create_app", served[-1][1])
        assert served[-1][1]["log_config"] is None
    assert (await c360_async("demo", "--port", _free_port(), url=database_url)).exit_code == 0
    factory, options = served[-1]
    assert options["log_config"] is None and options["factory"] is True
    assert factory.keywords == {} and factory.args[0].log_format == "console"
    assert "C360_LOG_FORMAT" not in os.environ
