"""What the `c360` command shows: progress bars and messages on stderr, results on stdout —
a summary table for people, or one JSON document with `--json` for scripts (then no bar)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from cli.database import console

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the result as one JSON document (for scripts).")
]
ProgressCallback = Callable[[int, int | None], None]


@contextmanager
def progress_bar(label: str, *, enabled: bool = True) -> Iterator[ProgressCallback]:
    """A bar on stderr for the duration of the block; the callback takes (done, total), total
    None while unknown. Rich redraws it in the background, so a long step still shows time
    passing."""
    if not enabled:
        yield lambda _done, _total: None
        return
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(label, total=None)

        def update(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        yield update


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, default=str, ensure_ascii=False, indent=2))


def summary(title: str, rows: Mapping[str, Any]) -> None:
    """A two-column table on stdout: what was done, and how much."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    for name, value in rows.items():
        table.add_row(name, f"{value:,}" if isinstance(value, int) else str(value))
    Console().print(table)
