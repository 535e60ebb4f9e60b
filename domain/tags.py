"""The tag system: definitions and the assignments a profile carries.

An assignment whose `expires_at` has passed stops counting at once, in every read, whether or
not a sweep has removed it yet.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

import domain.access.privacy as privacy
import domain.cascade as cascade
import domain.tagging.rules as rule_tags
from domain.errors import InvalidInput, NotFound
from domain.history import HistoryQuery, newest_first_pages
from domain.pagination import Page
from domain.values import MAX_NUMBER, check_days, representable_number, text_for
from store.db import Database
from store.models import Customer, TagAssignment, TagDefinition, TagHistory
from store.types import utcnow


@dataclass(frozen=True, slots=True)
class TagDefinitionRecord:
    id: uuid.UUID
    key: str
    name: str
    description: str | None
    category: str | None
    value_type: str
    allowed_values: list[str] | None
    kind: str
    condition: dict[str, Any] | None
    default_ttl_days: int | None
    archived: bool
    pii: bool


@dataclass(frozen=True, slots=True)
class AssignmentRecord:
    customer_id: uuid.UUID
    tag_id: uuid.UUID
    value: str | None
    source: str | None
    confidence: float | None
    assigned_at: datetime
    expires_at: datetime | None


DEFINITION_COLUMNS = tuple(getattr(TagDefinition, name) for name in TagDefinitionRecord.__slots__)
ASSIGNMENT_COLUMNS = tuple(getattr(TagAssignment, name) for name in AssignmentRecord.__slots__)


def in_category(category: str | None, wanted: str) -> bool:
    """`interest` holds `interest` and `interest/sports`, not `interests`."""
    return category is not None and (category == wanted or category.startswith(wanted + "/"))


def unexpired(now: datetime | None = None) -> ColumnElement[bool]:
    now = now or utcnow()
    return or_(TagAssignment.expires_at.is_(None), TagAssignment.expires_at > now)


async def assignments_of(
    db: Database, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[AssignmentRecord]]:
    statement = (
        select(*ASSIGNMENT_COLUMNS)
        .where(TagAssignment.customer_id.in_(customer_ids), unexpired())
        .order_by(TagAssignment.customer_id, TagAssignment.assigned_at, TagAssignment.id)
    )
    found: dict[uuid.UUID, list[AssignmentRecord]] = defaultdict(list)
    async with db.read() as session:
        for row in await session.execute(statement):
            found[row.customer_id].append(AssignmentRecord(*row))
    return found


async def definitions_by_id(
    db: Database, tag_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, TagDefinitionRecord]:
    async with db.read() as session:
        rows = await session.execute(
            select(*DEFINITION_COLUMNS).where(TagDefinition.id.in_(tag_ids))
        )
        return {row.id: TagDefinitionRecord(*row) for row in rows}


# Matched whole (fullmatch): `$` would let a final "\n" through.
KEY_PATTERN = re.compile(r"[a-z][a-z0-9_]{1,62}")
CATEGORY_PATTERN = re.compile(r"[a-z0-9_-]+(/[a-z0-9_-]+)*")
VALUE_TYPES = ("FLAG", "ENUM", "NUMBER", "TEXT", "DATE")
KINDS = ("MANUAL", "RULE", "IMPORTED")


@dataclass(frozen=True, slots=True)
class TagSpec:
    """An admin's definition of a tag (defineTag), or the fields a patch sets (updateTag)."""

    key: str
    name: str | None = None
    description: str | None = None
    category: str | None = None
    value_type: str | None = None
    allowed_values: list[str] | None = None
    kind: str | None = None
    condition: dict[str, Any] | None = None
    default_ttl_days: int | None = None
    pii: bool | None = None  # not given: domain.access.privacy.tag_is_pii_by_default decides


def check_value(
    tag: TagDefinitionRecord, value: str | None, field: tuple[str, ...] = ("value",)
) -> str | None:
    """The value to store for an assignment of `tag`, or INVALID_TAG_VALUE."""

    def refuse(message: str) -> InvalidInput:
        return InvalidInput(message, field=field, code="INVALID_TAG_VALUE")

    if tag.value_type == "FLAG":
        if value not in (None, ""):
            raise refuse(f"{tag.key} is a flag: it takes no value")
        return None
    if value is None or value == "":
        raise refuse(f"{tag.key} needs a {tag.value_type.lower()} value")
    if tag.value_type == "ENUM" and value not in (tag.allowed_values or []):
        raise refuse(f"{value!r} is not one of {', '.join(tag.allowed_values or [])}")
    if tag.value_type == "NUMBER":
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise refuse(f"{value!r} is not a number") from None
        if not representable_number(number):
            raise refuse(f"{value!r} is not a finite number of at most {MAX_NUMBER:.0e}")
        return str(number.normalize()) if number == number.to_integral() else str(number)
    if tag.value_type == "DATE":
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            raise refuse(f"{value!r} is not a date like 2026-01-31") from None
    return text_for(TagAssignment.value, value, field, code="INVALID_TAG_VALUE", what="a value")


def _validate(spec: TagSpec, current: TagDefinitionRecord | None) -> TagSpec:
    """The definition after `spec` is applied to `current` (None: a new tag), checked whole."""
    names = [f.name for f in fields(TagSpec)]
    if current is None:
        base = TagSpec(key=spec.key, value_type="FLAG", kind="MANUAL")
    else:
        base = TagSpec(**{name: getattr(current, name) for name in names})
    merged = replace(base, **{n: v for n in names if (v := getattr(spec, n)) is not None})
    if spec.pii is None and (current is None or merged.value_type != current.value_type):
        merged = replace(merged, pii=privacy.tag_is_pii_by_default(merged.value_type))
    where = ("input",) if current is None else ("patch",)
    if current is None:
        if not KEY_PATTERN.fullmatch(merged.key):
            raise InvalidInput(
                "a key is a lowercase slug: a-z, 0-9 and _, 2 to 63 characters",
                field=("input", "key"),
            )
        text_for(TagDefinition.key, merged.key, ("input", "key"), what="a key")
    name = text_for(
        TagDefinition.name, (merged.name or "").strip(), (*where, "name"), what="a name"
    )
    if not name:
        raise InvalidInput("a tag needs a name", field=(*where, "name"))
    merged = replace(merged, name=name)
    if merged.category is not None:
        if not CATEGORY_PATTERN.fullmatch(merged.category):
            raise InvalidInput(
                "a category is a path like interest/sports", field=(*where, "category")
            )
        text_for(TagDefinition.category, merged.category, (*where, "category"), what="a category")
    if merged.value_type not in VALUE_TYPES:
        raise InvalidInput(
            f"valueType must be one of {', '.join(VALUE_TYPES)}", field=(*where, "valueType")
        )
    if merged.kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}", field=(*where, "kind"))
    if merged.value_type == "ENUM":
        values = merged.allowed_values or []
        for value in values:  # each is stored as a value when assigned
            text_for(
                TagAssignment.value,
                value,
                (*where, "allowedValues"),
                code="INVALID_INPUT",
                what="an allowed value",
            )
        if not values or len(set(values)) != len(values) or not all(values):
            raise InvalidInput(
                "an ENUM tag needs distinct, non-empty allowedValues",
                field=(*where, "allowedValues"),
            )
    elif merged.allowed_values:
        raise InvalidInput("only ENUM tags have allowedValues", field=(*where, "allowedValues"))
    if merged.kind == "RULE" and merged.condition is None:
        raise InvalidInput("a RULE tag needs a condition", field=(*where, "condition"))
    if merged.kind != "RULE" and merged.condition is not None:
        raise InvalidInput("only RULE tags have a condition", field=(*where, "condition"))
    if merged.kind == "RULE" and merged.value_type != "FLAG":
        raise InvalidInput(
            "a RULE tag is a FLAG: its condition says who holds it, not a value",
            field=(*where, "valueType"),
        )
    if merged.kind == "RULE" and merged.default_ttl_days is not None:
        raise InvalidInput(
            "a RULE tag is held while its condition holds: it takes no defaultTtlDays",
            field=(*where, "defaultTtlDays"),
        )
    if merged.default_ttl_days is not None:
        check_days(merged.default_ttl_days, (*where, "defaultTtlDays"))
        if merged.default_ttl_days < 1:
            raise InvalidInput(
                "defaultTtlDays must be at least 1", field=(*where, "defaultTtlDays")
            )
    return merged


def _record(row: TagDefinition) -> TagDefinitionRecord:
    return TagDefinitionRecord(*(getattr(row, name) for name in TagDefinitionRecord.__slots__))


async def define_tag(
    db: Database, spec: TagSpec, *, actor: str | None = None, now: datetime | None = None
) -> TagDefinitionRecord:
    """Save a tag; a RULE tag's condition is checked like a segment's and the tag is assigned
    at once, in the same transaction, to the profiles it matches."""
    merged = _validate(spec, None)
    now = now or utcnow()

    async def work(session: AsyncSession) -> TagDefinitionRecord:
        taken = await session.scalar(
            select(TagDefinition.id).where(TagDefinition.key == merged.key)
        )
        if taken is not None:
            raise InvalidInput(
                f"a tag {merged.key!r} exists already", field=("input", "key"), code="DUPLICATE_KEY"
            )
        if merged.condition is not None:
            await rule_tags.check_condition(
                session, merged.key, merged.condition, ("input", "condition")
            )
        row = TagDefinition(
            key=merged.key,
            name=merged.name,
            description=merged.description,
            category=merged.category,
            value_type=merged.value_type,
            allowed_values=merged.allowed_values,
            kind=merged.kind,
            condition=merged.condition,
            default_ttl_days=merged.default_ttl_days,
            pii=bool(merged.pii),
        )
        session.add(row)
        await session.flush()
        if row.kind == "RULE":
            await cascade.follow_rule_definition(session, row.key, now, actor)
        return _record(row)

    return await db.transact(work)


async def update_tag(
    db: Database, spec: TagSpec, *, actor: str | None = None, now: datetime | None = None
) -> TagDefinitionRecord:
    """Change a tag; a RULE tag given a new condition is re-evaluated over everyone at once
    (with the RULE tags that read it), in the same transaction."""
    now = now or utcnow()

    async def work(session: AsyncSession) -> TagDefinitionRecord:
        row = await session.scalar(
            select(TagDefinition).where(TagDefinition.key == spec.key).with_for_update()
        )
        if row is None:
            raise NotFound(f"no tag {spec.key!r}", field=("key",), code="UNKNOWN_TAG")
        merged = _validate(spec, _record(row))
        in_use = select(TagAssignment.id).where(TagAssignment.tag_id == row.id)
        if (
            merged.value_type != row.value_type
            and await session.scalar(in_use.limit(1)) is not None
        ):
            raise InvalidInput(
                "the value type of a tag in use cannot change",
                field=("patch", "valueType"),
                code="TAG_IN_USE",
            )
        dropped = set(row.allowed_values or []) - set(merged.allowed_values or [])
        if (
            dropped
            and await session.scalar(in_use.where(TagAssignment.value.in_(dropped)).limit(1))
            is not None
        ):
            raise InvalidInput(
                "a value still assigned cannot leave allowedValues",
                field=("patch", "allowedValues"),
                code="TAG_IN_USE",
            )
        if spec.condition is not None:
            field = ("patch", "condition")
            await rule_tags.check_condition(session, row.key, spec.condition, field)
        for name in (
            "name",
            "description",
            "category",
            "value_type",
            "allowed_values",
            "condition",
            "default_ttl_days",
            "pii",
        ):
            setattr(row, name, getattr(merged, name))
        row.updated_at = now
        await session.flush()
        if spec.condition is not None and not row.archived:
            await cascade.follow_rule_definition(session, row.key, now, actor)
        return _record(row)

    return await db.transact(work)


async def archive_tag(db: Database, key: str) -> TagDefinitionRecord:
    """Archived tags keep their assignments' history but take no new assignments."""

    async def work(session: AsyncSession) -> TagDefinitionRecord:
        row = await session.scalar(
            select(TagDefinition).where(TagDefinition.key == key).with_for_update()
        )
        if row is None:
            raise NotFound(f"no tag {key!r}", field=("key",), code="UNKNOWN_TAG")
        row.archived, row.updated_at = True, utcnow()
        await session.flush()
        return _record(row)

    return await db.transact(work)


async def list_definitions(
    db: Database, category: str | None, include_archived: bool
) -> list[TagDefinitionRecord]:
    statement = select(*DEFINITION_COLUMNS).order_by(TagDefinition.category, TagDefinition.key)
    if not include_archived:
        statement = statement.where(TagDefinition.archived.is_(False))
    if category is not None:
        statement = statement.where(
            or_(
                TagDefinition.category == category,
                TagDefinition.category.startswith(category + "/", autoescape=True),
            )
        )
    async with db.read() as session:
        return [TagDefinitionRecord(*row) for row in await session.execute(statement)]


async def definition_by_key(db: Database, key: str) -> TagDefinitionRecord | None:
    async with db.read() as session:
        row = (
            await session.execute(select(*DEFINITION_COLUMNS).where(TagDefinition.key == key))
        ).first()
        return TagDefinitionRecord(*row) if row else None


async def customer_counts(db: Database, tag_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Live customers carrying each tag now (expired assignments do not count): one statement
    for any number of tags."""
    statement = (
        select(TagAssignment.tag_id, func.count())
        .join(Customer, Customer.id == TagAssignment.customer_id)
        .where(TagAssignment.tag_id.in_(tag_ids), unexpired(), Customer.status == "ACTIVE")
        .group_by(TagAssignment.tag_id)
    )
    async with db.read() as session:
        return {tag_id: count for tag_id, count in await session.execute(statement)}


@dataclass(frozen=True, slots=True)
class TagHistoryRecord:
    id: int
    customer_id: uuid.UUID
    tag_id: uuid.UUID
    action: str
    old_value: str | None
    new_value: str | None
    source: str | None
    actor: str | None
    at: datetime


async def history_pages(
    db: Database, queries: Sequence[HistoryQuery]
) -> list[Page[TagHistoryRecord]]:
    return await newest_first_pages(db, TagHistoryRecord, TagHistory.at, queries)
