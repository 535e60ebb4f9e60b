"""`c360 serve --workers N` gives its workers one PROMETHEUS_MULTIPROC_DIR (api.metrics)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cli.serving import metrics_shared_across


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
