"""The `c360` command: serve, migrate, seed demo data, manage API keys, export the schema."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from cli.database import State, console, fail, friendly_errors, migrate_database, resolve_settings
from cli.database import run as with_database
from cli.database import safe_url as _safe_url
from cli.importing import import_command
from cli.output import JsonOption, print_json, progress_bar, summary
from cli.serving import demo_admin_key, demo_key_file, ensure_port_free, metrics_shared_across
from domain.access.keys import (
    ApiKeyRecord,
    create_api_key,
    list_api_keys,
    parse_key_id,
    parse_role,
    revoke_api_key,
)
from domain.activity import channels, metrics
from domain.errors import DomainError
from domain.lifecycle.rules import SWEEP_BATCH_SIZE
from domain.lifecycle.rules import SweepResult as LifecycleSweep
from domain.lifecycle.rules import sweep as lifecycle_sweep
from domain.profile import count_customers
from service.demo import seed_demo as run_seed
from service.logs import configure_logging
from store.db import Database

app = typer.Typer(help="Customer-360 GraphQL API.", no_args_is_help=True)
apikey = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(apikey, name="apikey")
lifecycle = typer.Typer(help="The lifecycle model.", no_args_is_help=True)
app.add_typer(lifecycle, name="lifecycle")
app.command("import")(import_command)


@app.callback()
def main(
    debug: Annotated[
        bool,
        typer.Option("--debug", envvar="C360_DEBUG", help="Show tracebacks instead of one line."),
    ] = False,
) -> None:
    """Customer-360 GraphQL API. DATABASE_URL names the database (default: ./c360.db)."""
    State.debug = debug


@app.command()
def migrate(json_output: JsonOption = False) -> None:
    """Upgrade the database to the latest schema and add missing reference data (creates a
    SQLite file that does not exist yet)."""
    settings = resolve_settings(creates=True)
    head = migrate_database(settings)
    url = _safe_url(settings.database_url)
    if json_output:
        print_json({"database": url, "revision": head})
        return
    console.print(f"[green]database is up to date[/green] ({url}, revision {head})")


async def _seed(db: Database, customers: int, seed: int, show: bool) -> dict[str, object]:
    started = time.perf_counter()
    with progress_bar(f"seeding {customers:,} demo customers", enabled=show) as update:
        result = await run_seed(db, customers=customers, seed=seed, progress=update)
    return asdict(result) | {"seconds": round(time.perf_counter() - started, 1)}


@app.command("seed-demo")
def seed_demo(
    customers: Annotated[int, typer.Option(min=1, help="How many customers to create.")] = 3000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same data.")] = 42,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Do nothing when customers exist.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Fill the database with realistic demo customers, identities, orders and events (migrates
    it first; creates a SQLite file that does not exist yet)."""
    settings = resolve_settings(creates=True)
    migrate_database(settings)

    async def work(db: Database) -> dict[str, object] | None:
        if if_empty and await count_customers(db):
            return None
        return await _seed(db, customers, seed, show=not json_output)

    added = with_database(work, settings)
    if json_output:
        print_json({"added": added is not None, **(added or {})})
    elif added is None:
        console.print("demo data: customers already present, nothing added")
    else:
        summary("demo data added", {k.replace("_", " "): v for k, v in added.items()})


@app.command("recompute-metrics")
def recompute_metrics(json_output: JsonOption = False) -> None:
    """Rebuild every profile's metrics and channel summary from its events and orders, then
    the RFM scores."""
    started = time.perf_counter()

    async def work(db: Database) -> int:
        with progress_bar("recomputing metrics", enabled=not json_output) as update:
            scored = await metrics.recompute_all(db, progress=update)
        await channels.rebuild_all(db)
        return scored

    scored = with_database(work, resolve_settings())
    seconds = round(time.perf_counter() - started, 1)
    if json_output:
        print_json({"rfm_scored": scored, "seconds": seconds})
        return
    summary("metrics recomputed", {"customers RFM-scored": scored, "seconds": seconds})


@app.command("refresh-segments")
def refresh_segments(json_output: JsonOption = False) -> None:
    """Recompute every materialized segment's members (the periodic job: run it from cron),
    recording who entered and left."""
    from domain.segments.refresh import RefreshResult, refresh_all

    started = time.perf_counter()

    async def work(db: Database) -> list[RefreshResult]:
        with progress_bar("refreshing segments", enabled=not json_output) as update:
            return await refresh_all(db, progress=update)

    results = with_database(work, resolve_settings())
    seconds = round(time.perf_counter() - started, 1)
    entered, exited = sum(r.entered for r in results), sum(r.exited for r in results)
    if json_output:
        print_json(
            {
                "segments": [
                    {"id": str(r.segment_id), "entered": r.entered, "exited": r.exited}
                    for r in results
                ],
                "entered": entered,
                "exited": exited,
                "seconds": seconds,
            }
        )
        return
    summary(
        "segments refreshed",
        {"segments": len(results), "entered": entered, "exited": exited, "seconds": seconds},
    )


@app.command()
def sweep(
    batch_size: Annotated[
        int, typer.Option(min=1, help="Profiles per transaction (at least 1).")
    ] = SWEEP_BATCH_SIZE,
    json_output: JsonOption = False,
) -> None:
    """Run every lifecycle rule over all live profiles: time alone moves some ("no activity in
    180 days"); `serve` also does this every lifecycle_sweep_interval_seconds."""
    started = time.perf_counter()

    async def work(db: Database) -> LifecycleSweep:
        total = await count_customers(db)
        with progress_bar("sweeping lifecycle rules", enabled=not json_output) as update:
            return await lifecycle_sweep(
                db, batch_size=batch_size, progress=lambda done, _: update(done, total)
            )

    result = with_database(work, resolve_settings())
    seconds = round(time.perf_counter() - started, 1)
    if json_output:
        print_json(
            {"customers": result.customers, "transitions": result.transitions, "seconds": seconds}
        )
        return
    summary(
        "lifecycle sweep",
        {
            "customers": result.customers,
            "stage transitions": result.transitions,
            "seconds": seconds,
        },
    )


@app.command("sweep-tags")
def sweep_tags(json_output: JsonOption = False) -> None:
    """Remove expired tag assignments (recorded as EXPIRED) and re-evaluate every RULE tag over
    all profiles: conditions that time alone makes true need it; `serve` also does this every
    tag_sweep_interval_seconds."""
    from domain.tagging.bulk import SweepResult as TagSweep
    from domain.tagging.bulk import sweep as tag_sweep

    started = time.perf_counter()

    async def work(db: Database) -> TagSweep:
        with progress_bar("sweeping tags", enabled=not json_output) as update:
            return await tag_sweep(db, progress=update)

    result = with_database(work, resolve_settings())
    seconds = round(time.perf_counter() - started, 1)
    assigned = sum(r.assigned for r in result.rules)
    removed = sum(r.removed for r in result.rules)
    figures = {
        "expired": result.expired,
        "rule_tags": len(result.rules),
        "assigned": assigned,
        "removed": removed,
        "seconds": seconds,
    }
    if json_output:
        print_json(figures)
        return
    summary(
        "tag sweep",
        {
            "expired assignments removed": result.expired,
            "RULE tags evaluated": len(result.rules),
            "assigned": assigned,
            "removed": removed,
            "seconds": seconds,
        },
    )


@app.command("find-duplicates")
def find_duplicates(json_output: JsonOption = False) -> None:
    """Estimate the match model on every live profile and suggest the probable duplicates
    (pairs at or over duplicate_threshold); `serve` scans changed profiles on its own every
    duplicate_scan_interval_seconds. Decided pairs keep their decision."""
    from domain.duplicates.runs import FindResult
    from domain.duplicates.runs import find_all as find_all_duplicates

    settings = resolve_settings()
    started = time.perf_counter()

    async def work(db: Database) -> FindResult:
        with progress_bar("reading profiles", enabled=not json_output) as update:
            return await find_all_duplicates(db, settings, progress=update)

    result = with_database(work, settings)
    figures = {
        "profiles": result.profiles,
        "suggested": result.suggested,
        "trained": result.trained,
        "threshold": settings.duplicate_threshold,
        "seconds": round(time.perf_counter() - started, 1),
    }
    if json_output:
        print_json(figures)
        return
    summary(
        "probable duplicates",
        {
            "live profiles compared": result.profiles,
            "pairs suggested": result.suggested,
            "model": "estimated from them" if result.trained else "starting values (too few)",
            "threshold": settings.duplicate_threshold,
            "seconds": figures["seconds"],
        },
    )


@lifecycle.command("preset")
def lifecycle_preset(
    name: Annotated[str, typer.Argument(help="funnel or clm.")],
    mapping: Annotated[
        list[str] | None,
        typer.Option("--map", help="OLD=NEW: where the customers of a dropped stage go."),
    ] = None,
    churn_days: Annotated[
        int | None, typer.Option(help="Days without any activity before a customer churns.")
    ] = None,
) -> None:
    """Replace the lifecycle model with a preset; customers of dropped stages need --map."""
    from domain.lifecycle.config import ModelRefused, apply_preset

    pairs = [item.partition("=") for item in mapping or []]
    if any(not old or not new for old, _, new in pairs):
        console.print("[red]--map takes OLD=NEW, such as --map awareness=acquisition[/red]")
        raise typer.Exit(2)
    stages = {old: new for old, _, new in pairs}
    try:
        model = with_database(
            lambda db: apply_preset(db, name, stages, churn_days=churn_days, actor="cli"),
            resolve_settings(),
        )
    except DomainError as error:
        problems = error.errors if isinstance(error, ModelRefused) else (error,)
        for problem in problems:
            console.print(f"[red]{problem.code}[/red] {'.'.join(problem.field)}: {problem.message}")
        raise typer.Exit(2) from None
    console.print(
        f"[green]lifecycle model[/green] {name}: {' -> '.join(s.key for s in model.stages)}"
    )


def _key_json(record: ApiKeyRecord) -> dict[str, object]:
    return {
        "id": str(record.id),
        "role": record.role.value,
        "name": record.name,
        "prefix": record.prefix,
        "created_at": record.created_at.isoformat(),
        "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
    }


@apikey.command("create")
def apikey_create(
    role: Annotated[str, typer.Option(help="admin, integration, frontend or partner.")],
    name: Annotated[str, typer.Option(help="Who or what the key is for.")],
    json_output: JsonOption = False,
) -> None:
    """Create a key; its secret is printed once, alone on the last line of stdout (with
    --json: the `secret` field)."""
    try:
        new = with_database(
            lambda db: create_api_key(db, name, parse_role(role)), resolve_settings()
        )
    except DomainError as error:
        console.print(f"[red]{error.message}[/red]")
        raise typer.Exit(2) from None
    if json_output:
        print_json(_key_json(new.record) | {"secret": new.secret})
        return
    console.print(
        f"created {new.record.role.value} key [bold]{new.record.name}[/bold] ({new.record.id})"
    )
    print(new.secret)


@apikey.command("list")
def apikey_list(json_output: JsonOption = False) -> None:
    """Every key: id, role, name, secret prefix, created, revoked (secrets are not kept);
    tab-separated under a header line."""
    keys = with_database(list_api_keys, resolve_settings())
    if json_output:
        print_json([_key_json(key) for key in keys])
        return
    print("\t".join(("id", "role", "name", "prefix", "created", "revoked")))
    for key in keys:
        revoked = key.revoked_at.isoformat() if key.revoked_at else "-"
        print(
            f"{key.id}\t{key.role.value}\t{key.name}\t{key.prefix}\t"
            f"{key.created_at.isoformat()}\t{revoked}"
        )


@apikey.command("revoke")
def apikey_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (see list).")]) -> None:
    """Revoke a key: it stops working within a second (C360_KEY_CACHE_SECONDS), in every
    worker."""
    try:
        record = with_database(
            lambda db: revoke_api_key(db, parse_key_id(key_id)), resolve_settings()
        )
    except DomainError as error:
        console.print(f"[red]{error.message}[/red]")
        raise typer.Exit(2) from None
    console.print(f"revoked {record.role.value} key [bold]{record.name}[/bold] ({record.id})")


@app.command("export-schema")
def export_schema(
    path: Annotated[Path, typer.Argument(help="Where to write the SDL.")] = Path("schema.graphql"),
) -> None:
    """Write the served GraphQL schema (SDL) to schema.graphql."""
    from api.schema.root import build_schema

    path.write_text(build_schema().as_str() + "\n", encoding="utf-8")
    console.print(f"schema written to {path}")


HostOption = Annotated[str, typer.Option(envvar="HOST", help="Address to listen on.")]
PortOption = Annotated[
    int, typer.Option(envvar="PORT", min=1, max=65535, help="Port to listen on.")
]


@app.command()
def serve(
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (needs PostgreSQL).")] = 1,
) -> None:
    """Run the API (GraphQL and GraphiQL at /graphql)."""
    settings = resolve_settings()
    if workers > 1 and settings.database_url.startswith("sqlite"):
        fail("several workers need PostgreSQL: SQLite serves one process", "drop --workers")
    ensure_port_free(host, port)
    with_database(_nothing, settings)  # reachable and migrated, or one line and exit 1
    console.print(f"GraphiQL: [bold]http://{host}:{port}/graphql[/bold]")
    configure_logging(settings)  # uvicorn's lines too: log_config=None leaves them to us
    with friendly_errors(), metrics_shared_across(workers):
        uvicorn.run(
            "api.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=None,
        )


async def _nothing(_db: Database) -> None:
    return None


@app.command()
def dispatch() -> None:
    """Run the change dispatcher in this process: outbox to subscribers and webhooks, triggers."""
    from redis.asyncio import Redis

    from service.dispatcher import Dispatcher
    from store.pubsub import changes_channel, create_broker

    settings = resolve_settings()
    with_database(_nothing, settings)
    if not settings.redis_url:
        console.print("no REDIS_URL: subscribers of other processes will not see these events")

    async def run() -> None:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        db = Database.from_url(settings.database_url)
        redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
        broker = create_broker(redis, changes_channel(settings.database_url))
        try:
            await Dispatcher(db, broker, settings).run()
        finally:
            await broker.close()
            await db.dispose()
            if redis is not None:
                await redis.aclose()

    console.print(f"dispatching changes from {_safe_url(settings.database_url)}")
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError), friendly_errors():
        asyncio.run(run())


@app.command()
def work() -> None:
    """Run the derived-state worker in this process (metrics, RULE tags, stages, segment
    membership after writes); any number may run against PostgreSQL. It also makes events'
    partitions ahead and retires the months past the retention, as `serve` does."""
    from service.deriving import run_process

    settings = resolve_settings()
    with_database(_nothing, settings)

    async def run() -> None:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        db = Database.from_url(settings.database_url)
        try:
            await run_process(db, settings)
        finally:
            await db.dispose()

    console.print(f"bringing derived state up to date in {_safe_url(settings.database_url)}")
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError), friendly_errors():
        asyncio.run(run())


@app.command()
def demo(host: HostOption = "127.0.0.1", port: PortOption = 8000) -> None:
    """Migrate, seed demo data once, and serve with the demo's admin key (created on the first
    run, reused after): the quickest look. Fails before doing anything when the port is taken."""
    ensure_port_free(host, port)
    settings = resolve_settings(creates=True)
    migrate_database(settings)
    key_file = demo_key_file(settings.database_url)

    async def work(db: Database) -> tuple[str, bool]:
        if not await count_customers(db):
            added = await _seed(db, 3000, 42, show=True)
            console.print(f"[green]demo data added[/green]: {added['customers']:,} customers")
        return await demo_admin_key(db, key_file)

    secret, new = with_database(work, settings)
    console.rule("customer-360")
    console.print(f"GraphiQL:  [bold]http://{host}:{port}/graphql[/bold]")
    console.print(f"Admin key: [bold]{secret}[/bold]")
    console.print(f"[dim]({'new, saved in' if new else 'reused from'} {key_file})[/dim]")
    console.print('In GraphiQL, open Headers and set {"Authorization": "Bearer <admin key>"}')
    console.rule()
    # The demo runs in a terminal: coloured lines unless C360_LOG_FORMAT says otherwise. One
    # process, so uvicorn is handed the app factory with these settings.
    from api.app import create_app

    if "C360_LOG_FORMAT" not in os.environ:
        settings = settings.model_copy(update={"log_format": "console"})
    configure_logging(settings)
    with friendly_errors():
        uvicorn.run(
            functools.partial(create_app, settings),
            factory=True,
            host=host,
            port=port,
            log_config=None,
        )
