"""Ingest of events and orders, and reading them back newest first.

Items arrive in batches of up to 1,000, each addressed by an identity: the whole batch lands on
profiles through identity resolution in one transaction (a profile is created when nobody holds
the identity). A bad item is refused with its index in `field`; the rest still land. Replays are
duplicates, not second rows: events by their idempotency key, orders by (source, externalId).
The channel summary of every touched profile is updated in the same transaction; its metrics,
RULE tags, stage and segments follow through the derived-state worker (domain.derived).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import domain.activity.channels as channels
from domain.access.erasure import ErasurePolicy
from domain.derived.batches import transact
from domain.derived.marks import mark
from domain.errors import DomainError, InvalidInput
from domain.history import HistoryQuery, newest_first_pages
from domain.identity.known import land_on_holders
from domain.identity.linking import IdentifyInput, resolve_batch
from domain.pagination import Page
from domain.values import check_json, check_moment, text_for
from store.bulk_rows import copy_rows
from store.db import Database
from store.models import Event, Order
from store.partitions import stored_event_keys
from store.sqlfuncs import pair_in
from store.types import utcnow

MAX_FUTURE = timedelta(days=1)
MAX_PROPERTIES_BYTES = 16_384
EVENT_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,63}")  # fullmatch: `$` allows a final "\n"
CURRENCY = re.compile(r"[A-Z]{3}")
ORDER_STATUSES = ("completed", "pending", "cancelled", "refunded")
CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class EventItem:
    identity: tuple[str, str]
    type: str
    channel: str | None = None
    occurred_at: datetime | None = None
    properties: Any = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class OrderItem:
    identity: tuple[str, str]
    external_id: str
    amount: Decimal
    currency: str
    status: str = "completed"
    placed_at: datetime | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    accepted: int
    duplicates: int
    errors: tuple[DomainError, ...] = field(default=())
    customer_ids: tuple[uuid.UUID, ...] = field(default=())


def _check_time(value: datetime | None, now: datetime, name: str) -> datetime:
    if value is None:
        return now
    if value.tzinfo is None:
        raise InvalidInput(f"{name} needs a time zone offset", field=[name])
    value = check_moment(value, [name])
    if value > now + MAX_FUTURE:
        raise InvalidInput(f"{name} is more than a day in the future", field=[name])
    return value


def _check_event(item: EventItem, now: datetime) -> dict[str, Any]:
    if not EVENT_TYPE.fullmatch(item.type):
        raise InvalidInput(
            "an event type is a short name: letters, digits, _ . : -", field=["type"]
        )
    text_for(Event.type, item.type, ["type"], what="an event type")
    properties = item.properties if item.properties is not None else {}
    if not isinstance(properties, dict):
        raise InvalidInput("properties must be a JSON object", field=["properties"])
    check_json(properties, ["properties"])
    if len(json.dumps(properties, default=str)) > MAX_PROPERTIES_BYTES:
        raise InvalidInput("properties are limited to 16 KB", field=["properties"])
    if item.idempotency_key is not None:
        if not item.idempotency_key:
            raise InvalidInput("an idempotency key may not be empty", field=["idempotencyKey"])
        text_for(
            Event.idempotency_key,
            item.idempotency_key,
            ["idempotencyKey"],
            code="INVALID_INPUT",
            what="an idempotency key",
        )
    if item.channel is not None:
        text_for(Event.channel, item.channel, ["channel"], code="INVALID_INPUT", what="a channel")
    return {
        "type": item.type,
        "channel": item.channel,
        "occurred_at": _check_time(item.occurred_at, now, "occurredAt"),
        "received_at": now,
        "properties": properties,
        "idempotency_key": item.idempotency_key,
    }


def _check_order(item: OrderItem, now: datetime, rates: Mapping[str, Decimal]) -> dict[str, Any]:
    external_id = item.external_id.strip()
    if not external_id:
        raise InvalidInput("externalId may not be empty", field=["externalId"])
    text_for(
        Order.external_id, external_id, ["externalId"], code="INVALID_INPUT", what="externalId"
    )
    source = text_for(Order.source, (item.source or "").strip(), ["source"], what="source")
    if item.status not in ORDER_STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(ORDER_STATUSES)}", field=["status"])
    if not CURRENCY.fullmatch(item.currency):
        raise InvalidInput("currency is an ISO-4217 code such as CNY", field=["currency"])
    if item.currency not in rates:
        raise InvalidInput(
            f"no exchange rate is configured for {item.currency}",
            field=["currency"],
            code="UNKNOWN_CURRENCY",
        )
    try:
        amount = Decimal(item.amount).quantize(CENT, rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        raise InvalidInput("amount must be a decimal number", field=["amount"]) from None
    if not amount.is_finite() or abs(amount) >= Decimal("1e15"):
        raise InvalidInput("amount is out of range", field=["amount"])
    if amount <= 0 and item.status != "refunded":
        raise InvalidInput(
            "amount must be positive (only refunds may be zero or negative)", field=["amount"]
        )
    return {
        "source": source,
        "external_id": external_id,
        "amount": amount,
        "currency": item.currency,
        "base_amount": (amount * rates[item.currency]).quantize(CENT, rounding=ROUND_HALF_UP),
        "status": item.status,
        "placed_at": _check_time(item.placed_at, now, "placedAt"),
        "created_at": now,
    }


async def _land(
    session: AsyncSession,
    wanted: Sequence[tuple[int, tuple[str, str], datetime]],
    region: str,
    actor: str | None,
    erased: ErasurePolicy | None,
) -> dict[int, uuid.UUID | DomainError]:
    """The profile each item (index, identity, time) lands on, or why it cannot: the holder of
    its identity when there is one (domain.identity.known), else what resolution decides."""
    holders = await land_on_holders(session, [(identity, at) for _, identity, at in wanted], region)
    landed: dict[int, uuid.UUID | DomainError] = {}
    rest = []
    for (index, identity, at), holder in zip(wanted, holders, strict=True):
        if holder is None:
            rest.append((index, identity, at))
        else:
            landed[index] = holder
    inputs = [IdentifyInput([identity], occurred_at=at) for _, identity, at in rest]
    results = await resolve_batch(session, inputs, region, actor, erased) if inputs else []
    for (index, _, _), result in zip(rest, results, strict=True):
        if result.customer_id is not None:
            landed[index] = result.customer_id
            continue
        error = result.errors[0]  # a refused or blocked identity: the item has no profile
        where = error.field[2:] if error.field[:1] == ("identities",) else error.field
        landed[index] = InvalidInput(error.message, field=("customer", *where), code=error.code)
    return landed


@dataclass(frozen=True, slots=True)
class _Kind:
    """What differs between ingesting events and orders."""

    name: str  # the argument, for field paths
    model: Any
    time: str  # the row's time column
    key: Any  # row -> de-duplication key, or None for "never a duplicate"
    existing: Any  # (session, keys) -> the keys already stored


async def _ingest(
    db: Database,
    kind: _Kind,
    identities: Sequence[tuple[str, str]],
    checked: Sequence[dict[str, Any] | DomainError],
    region: str,
    actor: str | None,
    now: datetime,
    erased: ErasurePolicy | None,
) -> IngestOutcome:
    async def work(session: AsyncSession) -> IngestOutcome:
        refused = [
            row.at(kind.name, i) for i, row in enumerate(checked) if isinstance(row, DomainError)
        ]
        rows = {i: row for i, row in enumerate(checked) if not isinstance(row, DomainError)}
        wanted = [(i, identities[i], row[kind.time]) for i, row in rows.items()]
        landed = await _land(session, wanted, region, actor, erased)
        keys = [k for row in rows.values() if (k := kind.key(row)) is not None]
        seen = await kind.existing(session, keys) if keys else set()
        fresh, duplicates = [], 0
        for index, row in rows.items():
            target = landed[index]
            if isinstance(target, DomainError):
                refused.append(target.at(kind.name, index))
                continue
            key = kind.key(row)
            if key is not None and key in seen:
                duplicates += 1
                continue
            seen.add(key)
            fresh.append({**row, "customer_id": target})
        if fresh:  # COPY on PostgreSQL: the id is the table's own
            await copy_rows(session, kind.model.__table__, fresh, columns=list(fresh[0]))
            await channels.count_new(session, **{kind.name: fresh})
        touched = sorted({row["customer_id"] for row in fresh})
        landed_on = {target for target in landed.values() if not isinstance(target, DomainError)}
        await mark(session, landed_on, actor, now)  # metrics, RULE tags, stage, segments follow
        refused.sort(key=lambda e: int(e.field[1]))
        return IngestOutcome(len(fresh), duplicates, tuple(refused), tuple(touched))

    return await transact(db, work)


async def _stored_order_keys(session: AsyncSession, keys: list[tuple[str, str]]) -> set[Any]:
    pair = pair_in(session, Order.source, Order.external_id, keys)
    found = await session.execute(select(Order.source, Order.external_id).where(pair))
    return {(source, external_id) for source, external_id in found}


EVENTS = _Kind(
    "events", Event, "occurred_at", lambda row: row["idempotency_key"], stored_event_keys
)
ORDERS = _Kind(
    "orders",
    Order,
    "placed_at",
    lambda row: (row["source"], row["external_id"]),
    _stored_order_keys,
)


def _checked(check: Any, items: Sequence[Any], *args: Any) -> list[dict[str, Any] | DomainError]:
    out: list[dict[str, Any] | DomainError] = []
    for item in items:
        try:
            out.append(check(item, *args))
        except DomainError as error:
            out.append(error)
    return out


async def track_events(
    db: Database,
    items: Sequence[EventItem],
    *,
    region: str,
    actor: str | None,
    now: datetime | None = None,
    erased: ErasurePolicy | None = None,
) -> IngestOutcome:
    now = now or utcnow()
    checked = _checked(_check_event, items, now)
    identities = [i.identity for i in items]
    return await _ingest(db, EVENTS, identities, checked, region, actor, now, erased)


async def record_orders(
    db: Database,
    items: Sequence[OrderItem],
    *,
    region: str,
    actor: str | None,
    rates: Mapping[str, Decimal],
    now: datetime | None = None,
    erased: ErasurePolicy | None = None,
) -> IngestOutcome:
    now = now or utcnow()
    checked = _checked(_check_order, items, now, rates)
    identities = [i.identity for i in items]
    return await _ingest(db, ORDERS, identities, checked, region, actor, now, erased)


@dataclass(frozen=True, slots=True)
class EventRecord:
    id: int
    customer_id: uuid.UUID
    type: str
    channel: str | None
    occurred_at: datetime
    properties: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OrderRecord:
    id: int
    customer_id: uuid.UUID
    external_id: str
    amount: Decimal
    currency: str
    status: str
    placed_at: datetime


async def event_pages(db: Database, queries: Sequence[HistoryQuery]) -> list[Page[EventRecord]]:
    return await newest_first_pages(db, EventRecord, Event.occurred_at, queries, Event.type)


async def order_pages(db: Database, queries: Sequence[HistoryQuery]) -> list[Page[OrderRecord]]:
    return await newest_first_pages(db, OrderRecord, Order.placed_at, queries)
