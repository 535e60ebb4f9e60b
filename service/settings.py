"""The service's configuration: one pydantic-settings object, built once and passed in.

Nothing here reads the environment at import time; `Settings()` does, when an entry point
(the CLI, the app factory, the test fixtures) asks for it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="C360_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./c360.db",
        validation_alias=AliasChoices("DATABASE_URL", "C360_DATABASE_URL"),
        description="SQLAlchemy URL; plain postgresql:// and sqlite:/// URLs get async drivers.",
    )
    database_replica_urls: str = Field(
        default="",
        validation_alias=AliasChoices("DATABASE_REPLICA_URLS", "C360_DATABASE_REPLICA_URLS"),
        description="PostgreSQL streaming replicas of DATABASE_URL, comma-separated: query "
        "operations read from them, mutations and subscriptions use the primary (README, "
        "Read replicas).",
    )
    replica_max_lag_seconds: float = Field(
        default=1.0, ge=0, description="A replica further behind than this is skipped."
    )
    replica_check_interval_seconds: float = Field(
        default=1.0, gt=0, description="How often each replica is asked how far it has replayed."
    )
    replica_wait_seconds: float = Field(
        default=0.05,
        ge=0,
        description="How long a read with a consistency token may wait for a replica to replay "
        "up to it before the primary answers.",
    )
    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("REDIS_URL", "C360_REDIS_URL"),
        description="Unset: in-process cache and pub/sub (single process only).",
    )

    default_phone_region: str = "CN"
    base_currency: str = "CNY"
    currency_rates: dict[str, Decimal] = Field(
        default_factory=lambda: {"CNY": Decimal(1), "USD": Decimal("7.10"), "EUR": Decimal("7.70")},
        description="Units of the base currency per unit of each currency.",
    )
    compiled_reads: bool = Field(
        default=True,
        description="Answer customer reads with JSON PostgreSQL builds (domain.profile_json); "
        "off: every read through the resolvers.",
    )
    page_size_default: int = 50
    page_size_max: int = 200
    batch_size_max: int = 1000
    graphiql: bool = True
    sql_echo: bool = False
    erased_reidentify: Literal["refuse", "allow"] = "refuse"
    erasure_salt: str = Field(
        default="",
        description="Secret key of the hashes kept of erased identities; set it in production "
        "and never change it (a new salt stops recognizing identities erased before).",
    )
    # Access limits (api/limits.py): checked before any resolver runs.
    max_depth: int = 10
    max_aliases: int = 30
    max_tokens: int = 4000
    max_cost: int = Field(
        default=50_000, description="Static cost of one operation (lists cost their page size)."
    )
    cost_budget_per_minute: int = Field(
        default=3_000_000,
        description="Cost one API key may spend per minute (a token bucket), unless the key "
        "has its own (setApiKeyBudget). Operations are charged what they returned (api.costs): "
        "about 200 pages of 20 full profiles a second.",
    )
    max_fields: int = Field(
        default=5000, description="Fields of one operation with its fragments expanded."
    )
    max_repeated_fields: int = Field(
        default=20, description="Times one response name may be selected in one selection set."
    )
    max_string_length: int = Field(
        default=100_000, description="Characters of one text argument or variable."
    )
    introspection: bool = True
    key_cache_seconds: float = Field(
        default=1.0,
        ge=0,
        description="How long a worker trusts an API key it looked up without hearing of a "
        "change (domain/access/key_cache.py); changes made through the API are heard at once.",
    )
    # Websockets (api/websockets.py): caps across workers with Redis, per process without.
    ws_max_connections_per_key: int = Field(
        default=100, description="Open websockets one API key may hold (TOO_MANY_CONNECTIONS)."
    )
    ws_max_subscriptions_per_key: int = Field(
        default=500,
        description="Operations one API key may run at once over its websockets "
        "(TOO_MANY_SUBSCRIPTIONS).",
    )
    ws_key_check_interval_seconds: float = Field(
        default=0.5, description="How often each worker re-checks the keys of its open sockets."
    )
    ready_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How long /readyz waits for the database and Redis before answering 503.",
    )
    request_timeout_seconds: float = Field(
        default=30.0, description="How long one request may execute before it is cut short."
    )
    max_body_bytes: int = Field(
        default=1_048_576, description="Bytes of one HTTP request body (413 above it)."
    )
    # Change events (domain/delivery/: dispatch, webhooks, triggers).
    dispatcher: bool = Field(
        default=True, description="Run the change dispatcher inside `serve` (in every worker)."
    )
    dispatch_interval_seconds: float = 0.1
    dispatch_batch_size: int = 500
    webhook_timeout_seconds: float = 10.0
    webhook_concurrency: int = Field(
        default=16, description="Requests in flight per dispatcher, to all webhooks together."
    )
    webhook_max_attempts: int = 10
    webhook_backoff_seconds: float = 5.0
    webhook_backoff_max_seconds: float = 3600.0
    trigger_interval_seconds: float = 300.0
    trigger_timezone: str = Field(
        default="Asia/Shanghai",
        description="Birthdays fall on this zone's date unless a customer's locale names one.",
    )
    inactive_days: int = 90
    # The outbox (domain/delivery/retention.py): events done with are pruned, a batch at a time.
    outbox_retention_days: float = Field(
        default=7.0, gt=0, description="Days a delivered change event stays in the outbox."
    )
    outbox_prune_interval_seconds: float = Field(
        default=3600.0, ge=0, description="How often the dispatcher prunes the outbox; 0: off."
    )
    cart_abandoned_hours: int = 24
    # Derived state (domain/derived/): the worker brings it up to date after writes.
    derived_worker: bool = Field(
        default=True,
        description="Run the derived-state worker inside `serve` (in every worker process).",
    )
    derived_batch_size: int = Field(
        default=2000, ge=1, description="Dirty profiles the worker claims and works per batch."
    )
    derived_poll_seconds: float = Field(
        default=0.5,
        gt=0,
        description="How often an idle worker looks for dirty profiles when not woken "
        "(PostgreSQL wakes it at each write's commit; SQLite only polls).",
    )
    derived_lease_seconds: float = Field(
        default=60.0, gt=0, description="How long a claim holds; a dead worker's claims expire."
    )
    derived_wait_seconds: float = Field(
        default=10.0,
        ge=0,
        description="How long a write sent with `X-Derived-State: wait` waits for its derived "
        "state before answering (the payload then says derivedStatePending).",
    )
    derived_state_inline: bool = Field(
        default=False,
        description="Every write brings its profiles' derived state up to date before it "
        "answers, as if each request sent `X-Derived-State: wait` (tests; single-user use).",
    )
    # Lifecycle (domain/lifecycle/rules.py): every rule over all profiles; 0 turns it off.
    lifecycle_sweep_interval_seconds: float = Field(
        default=3600.0, description="How often `serve` sweeps the lifecycle rules (each worker)."
    )
    # Tags (domain/tagging/bulk.py): expired assignments swept, every RULE tag re-evaluated; 0: off.
    tag_sweep_interval_seconds: float = Field(
        default=3600.0, description="How often `serve` sweeps the tags (each worker)."
    )
    # Events' monthly partitions on PostgreSQL (store/partitions.py), made ahead by `serve`.
    event_partitions_ahead_months: int = Field(
        default=3, ge=1, description="Months after this one that always have a partition."
    )
    event_partition_interval_seconds: float = Field(
        default=3600.0, ge=0, description="How often `serve` makes the months ahead; 0: off."
    )
    # Retention (domain/activity/retention.py): months before this one whose events are kept;
    # older months are rolled up into event_rollups and dropped by whoever makes the months
    # ahead. None: events are kept forever.
    event_retention_months: int | None = Field(
        default=None,
        ge=1,
        description="Months of events kept before this one (older: rolled up, dropped); "
        "unset: forever.",
    )
    # Observability (service/logs.py, api/metrics.py, service/tracing.py).
    log_format: Literal["json", "console"] = Field(
        default="json", description="One JSON object per line, or coloured lines for a terminal."
    )
    log_level: str = "INFO"
    metrics_token: str | None = Field(
        default=None,
        description="Unset: /metrics answers loopback clients only. Set: any client sending "
        "`Authorization: Bearer <token>`.",
    )
    tracing: Literal["off", "console", "otlp"] = Field(
        default="off",
        description="OpenTelemetry spans per operation and per SQL statement; `otlp` sends them "
        "over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT (the exporter's own variables apply).",
    )
    # Probable duplicates (domain/duplicates/): suggested at or over the threshold; 0: no scan.
    duplicate_threshold: float = Field(
        default=0.95, ge=0, le=1, description="Match probability from which a pair is suggested."
    )
    duplicate_min_training_profiles: int = Field(
        default=1000,
        ge=2,
        description="Live profiles needed to estimate the match model (fewer: its start values).",
    )
    duplicate_scan_interval_seconds: float = Field(
        default=60.0, description="How often `serve` scans changed profiles for duplicates."
    )

    @property
    def replica_urls(self) -> list[str]:
        return [url.strip() for url in self.database_replica_urls.split(",") if url.strip()]
