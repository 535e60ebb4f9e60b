"""Erasure's sweep of the copies: every place outside the profile where a person's values end up.

A person's values are copied as they flow through the service: into change events (the
outbox) and the webhook deliveries made of them, the undo snapshots and reasons of merges, the
reasons of stage moves, tag values and their history, the stored answers of idempotent
mutations, the audit log, the keys of fired triggers. `Needles` gathers the person's values
(from every profile merged into theirs too) before the profile is cleared; `scrub_copies`
then clears free text attached to the person outright and redacts, in the JSON and text copies
that are not the person's alone, every string that holds one of those values.

Nothing here decides what erasure keeps: domain.access.erasure does, and calls this once.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Text, cast, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from domain.access.privacy import PII_COLUMNS
from store.models import (
    AuditCustomer,
    AuditEntry,
    Customer,
    Event,
    IdempotencyKey,
    Identity,
    MergeRecord,
    OutboxEvent,
    StageTransition,
    TagAssignment,
    TagDefinition,
    TagHistory,
    TriggerFiring,
    WebhookDelivery,
)

REDACTED = "[erased]"
# Shorter values are matched only whole: as substrings they would redact unrelated text.
MIN_SUBSTRING = 3
MIN_NUMBER = 6
# Keys of change-event payloads that carry free text or a tag's value.
FREE_TEXT_KEYS = frozenset({"reason", "value", "oldValue", "newValue", "traits", "properties"})
BIRTHDAY_TRIGGER = "customer.birthday"


@dataclass(frozen=True, slots=True)
class Needles:
    """The person's values, casefolded: what must not survive anywhere."""

    values: frozenset[str]

    def whole(self, text: str) -> bool:
        return text.casefold() in self.values

    def within(self, text: str) -> bool:
        folded = text.casefold()
        return any(v in folded for v in self.values if len(v) >= MIN_SUBSTRING) or (
            folded in self.values
        )

    def patterns(self) -> list[str]:
        """The values as they appear inside JSON text (escaped as a serializer writes them)."""
        found = set()
        for value in self.values:
            if len(value) >= MIN_SUBSTRING:
                found.add(value)
                found.add(json.dumps(value)[1:-1])
        return sorted(found)


def _strings(value: Any) -> Iterable[str]:
    """The texts of a JSON value; numbers only when long enough to identify (an account
    number, not a shoe size)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if len(str(value)) >= MIN_NUMBER:
            yield str(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _variants(value: str) -> set[str]:
    value = value.strip()
    if not value:
        return set()
    return {value.casefold(), value.lstrip("+").casefold()}


async def gather_needles(session: AsyncSession, profiles: Sequence[uuid.UUID]) -> Needles:
    """Every PII value the profiles hold (profile fields, custom attribute values, identity
    values, values of TEXT and PII tags, in assignments and history), before they are cleared."""
    found: set[str] = set()
    columns = [getattr(Customer, c) for c in PII_COLUMNS]
    for row in await session.execute(
        select(*columns, Customer.attributes).where(Customer.id.in_(profiles))
    ):
        *fields, attributes = row
        for field in fields:
            if field is not None:
                found |= _variants(field.isoformat() if hasattr(field, "isoformat") else field)
        for text in _strings(attributes or {}):
            found |= _variants(text)
    for (identity,) in await session.execute(
        select(Identity.value).where(Identity.customer_id.in_(profiles))
    ):
        found |= _variants(identity)
    tags = _valued_tags()
    for (value,) in await session.execute(
        select(TagAssignment.value).where(
            TagAssignment.customer_id.in_(profiles), TagAssignment.tag_id.in_(tags)
        )
    ):
        found |= _variants(value or "")
    for old, new in await session.execute(
        select(TagHistory.old_value, TagHistory.new_value).where(
            TagHistory.customer_id.in_(profiles), TagHistory.tag_id.in_(tags)
        )
    ):
        found |= _variants(old or "") | _variants(new or "")
    return Needles(frozenset(found))


def _valued_tags() -> Any:
    """Tags whose values are the person's own words or flagged personal: TEXT tags, PII tags."""
    return select(TagDefinition.id).where(
        or_(TagDefinition.value_type == "TEXT", TagDefinition.pii.is_(True))
    )


def redact(value: Any, needles: Needles, *, free_text: bool = False) -> Any:
    """`value` (JSON) with every string that holds a needle replaced; with `free_text`, the
    values under FREE_TEXT_KEYS go whatever they hold."""
    if isinstance(value, dict):
        return {
            k: (
                None
                if free_text and k in FREE_TEXT_KEYS and v is not None
                else redact(v, needles, free_text=free_text)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v, needles, free_text=free_text) for v in value]
    if isinstance(value, str) and needles.within(value):
        return REDACTED
    if isinstance(value, int | float) and not isinstance(value, bool) and needles.whole(str(value)):
        return None
    return value


async def scrub_copies(
    session: AsyncSession, profiles: Sequence[uuid.UUID], needles: Needles
) -> None:
    """Clear or redact the person's values wherever they were copied (see the module doc)."""
    tags = _valued_tags()
    await session.execute(
        update(TagAssignment)
        .where(TagAssignment.customer_id.in_(profiles), TagAssignment.tag_id.in_(tags))
        .values(value=None)
    )
    await session.execute(
        update(TagHistory)
        .where(TagHistory.customer_id.in_(profiles), TagHistory.tag_id.in_(tags))
        .values(old_value=None, new_value=None)
    )
    await session.execute(
        update(MergeRecord)
        .where(or_(MergeRecord.survivor_id.in_(profiles), MergeRecord.merged_id.in_(profiles)))
        .values(snapshot={}, reason=REDACTED)
    )
    await session.execute(
        update(StageTransition)
        .where(StageTransition.customer_id.in_(profiles), StageTransition.reason.is_not(None))
        .values(reason=REDACTED)
    )
    await session.execute(
        delete(TriggerFiring).where(
            TriggerFiring.customer_id.in_(profiles), TriggerFiring.trigger == BIRTHDAY_TRIGGER
        )
    )
    await _scrub_outbox(session, profiles, needles)
    await _scrub_deliveries(session, profiles, needles)
    await _scrub_audit(session, profiles, needles)
    await _scrub_idempotency(session, profiles, needles)
    await _scrub_event_keys(session, profiles, needles)


async def _rewrite(
    session: AsyncSession,
    key: InstrumentedAttribute[Any],
    column: InstrumentedAttribute[Any],
    where: ColumnElement[bool],
    clean: Callable[[Any], Any],
) -> None:
    """Rewrite `column` of the rows `where` selects through `clean`, where it changes them."""
    rows = await session.execute(select(key, column).where(where))
    for row_key, value in rows.all():
        cleaned = clean(value)
        if cleaned != value:
            await session.execute(
                update(key.class_).where(key == row_key).values({column.key: cleaned})
            )


async def _scrub_outbox(
    session: AsyncSession, profiles: Sequence[uuid.UUID], needles: Needles
) -> None:
    await _rewrite(
        session,
        OutboxEvent.id,
        OutboxEvent.payload,
        OutboxEvent.customer_id.in_(profiles),
        lambda payload: redact(payload, needles, free_text=True),
    )


async def _scrub_deliveries(
    session: AsyncSession, profiles: Sequence[uuid.UUID], needles: Needles
) -> None:
    rows = await session.execute(
        select(WebhookDelivery.id, WebhookDelivery.last_error).where(
            WebhookDelivery.customer_id.in_(profiles), WebhookDelivery.last_error.is_not(None)
        )
    )
    dirty = [row_id for row_id, error in rows.all() if needles.within(error or "")]
    if dirty:
        await session.execute(
            update(WebhookDelivery).where(WebhookDelivery.id.in_(dirty)).values(last_error=None)
        )


async def _scrub_audit(
    session: AsyncSession, profiles: Sequence[uuid.UUID], needles: Needles
) -> None:
    touched = select(AuditCustomer.audit_id).where(AuditCustomer.customer_id.in_(profiles))
    await _rewrite(
        session,
        AuditEntry.id,
        AuditEntry.details,
        AuditEntry.id.in_(touched),
        lambda details: redact(details, needles),
    )


async def _scrub_idempotency(
    session: AsyncSession, profiles: Sequence[uuid.UUID], needles: Needles
) -> None:
    """Stored answers name profiles by id and may quote values in error messages; neither
    is indexed, so the rows are found by their text."""
    text = func.lower(cast(IdempotencyKey.response, Text))
    terms = [str(p) for p in profiles] + needles.patterns()
    await _rewrite(
        session,
        IdempotencyKey.key,
        IdempotencyKey.response,
        or_(*(text.contains(term.lower(), autoescape=True) for term in terms)),
        lambda response: _redact_messages(response, needles),
    )


def _redact_messages(value: Any, needles: Needles) -> Any:
    """Only the messages of a stored answer are free text; its ids and codes, shared with
    other people's results in the same answer, stay as they are."""
    if isinstance(value, dict):
        return {
            k: (
                REDACTED
                if k == "message" and isinstance(v, str) and needles.within(v)
                else _redact_messages(v, needles)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redact_messages(v, needles) for v in value]
    return value


async def _scrub_event_keys(
    session: AsyncSession, profiles: Sequence[uuid.UUID], needles: Needles
) -> None:
    """A client's idempotency key may quote a value; its digest still deduplicates nothing
    new, since the person's identities are refused from now on."""
    rows = await session.execute(
        select(Event.id, Event.idempotency_key).where(
            Event.customer_id.in_(profiles), Event.idempotency_key.is_not(None)
        )
    )
    for row_id, key in rows.all():
        if key and needles.within(key):
            digest = "erased:" + hashlib.sha256(key.encode()).hexdigest()
            await session.execute(
                update(Event).where(Event.id == row_id).values(idempotency_key=digest)
            )
