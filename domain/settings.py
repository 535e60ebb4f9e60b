"""The service's configuration: one pydantic-settings object, built once and passed in.

Nothing here reads the environment at import time; `Settings()` does, when an entry point
(the CLI, the app factory, the test fixtures) asks for it.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="C360_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./c360.db",
        validation_alias=AliasChoices("DATABASE_URL", "C360_DATABASE_URL"),
        description="SQLAlchemy URL; plain postgresql:// and sqlite:/// URLs get async drivers.",
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
    page_size_default: int = 50
    page_size_max: int = 200
    batch_size_max: int = 1000
    graphiql: bool = True
    sql_echo: bool = False
    erased_reidentify: str = "refuse"
