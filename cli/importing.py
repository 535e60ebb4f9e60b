"""`c360 import KIND FILE`: load customers, events or orders from CSV or JSONL (the formats are
`service.import_rows`'s docstring and the README's)."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from cli.database import fail, resolve_settings
from cli.database import run as with_database
from cli.output import JsonOption, print_json, progress_bar, summary
from domain.errors import DomainError
from service.import_rows import KINDS, format_of
from service.importing import ImportResult, default_rejects_path, import_file
from store.db import Database


def import_command(
    kind: Annotated[str, typer.Argument(help="customers, events or orders.")],
    source: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="A .csv or .jsonl file.")
    ],
    file_format: Annotated[
        str | None,
        typer.Option("--format", help="csv or jsonl (default: by the file's extension)."),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Records per transaction (default: 1,000 customers, 5,000 events or orders).",
        ),
    ] = None,
    window: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Events and orders: records read ahead and grouped by person before they are "
            "batched (default: 10 batches).",
        ),
    ] = None,
    rejects: Annotated[
        Path | None,
        typer.Option(help="Where refused records go (default: FILE.rejects.jsonl beside it)."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Load a file of customers (identities and traits), events or orders through the same
    rules as the API, in batches; a re-run adds nothing twice, refused records go to a reject
    file with their line numbers and reasons."""
    if kind not in KINDS:
        fail(f"unknown kind {kind!r}", f"use one of {', '.join(KINDS)}")
    try:
        chosen = format_of(source, file_format)
    except DomainError as error:
        fail(error.message)
    rejects_path = rejects or default_rejects_path(source)
    settings = resolve_settings()
    started = time.perf_counter()

    async def work(db: Database) -> ImportResult:
        with progress_bar(
            f"importing {kind} from {source.name} (bytes)", enabled=not json_output
        ) as update:
            return await import_file(
                db,
                settings,
                kind=kind,
                source=source,
                file_format=chosen,
                batch_size=batch_size,
                rejects_path=rejects_path,
                window=window,
                progress=update,
            )

    result = with_database(work, settings)
    seconds = round(time.perf_counter() - started, 1)
    figures = asdict(result) | {"format": chosen, "seconds": seconds}
    if json_output:
        print_json(figures)
        return
    rows: dict[str, object] = {
        "records read": result.read,
        "loaded": result.loaded,
    }
    if kind == "customers":
        rows |= {"new customers": result.created, "identities ignored": result.warnings}
    else:
        rows["duplicates (already stored)"] = result.duplicates
    rows |= {
        "rejected": result.rejected,
        "batches": result.batches,
        "batches retried in parts": result.retried_batches,
        "seconds": seconds,
        "reject file": result.rejects_path,
    }
    summary(f"{kind} imported from {source.name}", rows)
