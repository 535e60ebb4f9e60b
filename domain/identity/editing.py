"""Editing a profile directly (updateCustomer): what a person at a frontend corrects.

Unlike traits sent through identify, an edit is authoritative: every field it names is set,
and stamped now, so later survivorship treats it as the newest value. An attribute set to null
is removed.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from domain.changes import Change, record_changes
from domain.derived.batches import transact
from domain.derived.marks import mark
from domain.errors import InvalidInput, NotFound
from domain.identity.traits import COLUMNS, PROFILE_FIELDS, derive_display_name, parse_traits
from domain.profile import CustomerRecord, customer_select, resolve_live_id, to_record
from domain.values import check_json
from store.db import Database
from store.models import Customer
from store.types import utcnow

# The source an edit records for the fields it sets (Customer.fieldSources).
EDIT_SOURCE = "updateCustomer"


def _traits_of(patch: dict[str, Any]) -> dict[str, Any]:
    """The patch in the traits' shape (a birthday arrives as a date, traits carry text)."""
    unknown = set(patch) - set(PROFILE_FIELDS) - {"attributes"}
    if unknown:
        raise InvalidInput(
            f"unknown field {sorted(unknown)[0]!r}", field=("patch", sorted(unknown)[0])
        )
    return {
        k: v.isoformat() if isinstance(v, date) else v
        for k, v in patch.items()
        if k != "attributes"
    }


async def update_customer(
    db: Database,
    customer_id: uuid.UUID,
    patch: dict[str, Any],
    actor: str | None,
    now: datetime | None = None,
) -> CustomerRecord:
    now = now or utcnow()
    traits = parse_traits(_traits_of(patch), ("patch",))
    attributes = patch.get("attributes")
    if attributes is not None and not isinstance(attributes, dict):
        raise InvalidInput("attributes must be a JSON object", field=("patch", "attributes"))
    check_json(attributes, ("patch", "attributes"))

    async def work(session: AsyncSession) -> CustomerRecord:
        live = await resolve_live_id(session, customer_id)
        customer = await session.get(Customer, live, with_for_update=True) if live else None
        if customer is None or customer.status != "ACTIVE":
            raise NotFound("no such live customer", field=("id",))
        stamp = now.isoformat()
        times = dict(customer.field_times or {})
        sources = dict(customer.field_sources or {})
        values = {column: getattr(customer, column) for column in COLUMNS}
        for column, value in traits.fields.items():
            values[column] = value
            times[column], sources[column] = stamp, EDIT_SOURCE
        derive_display_name(values, times)
        for column, value in values.items():
            setattr(customer, column, value)
        merged = dict(customer.attributes or {})
        for key, value in (attributes or {}).items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
            times[f"attributes.{key}"] = stamp
            sources[f"attributes.{key}"] = EDIT_SOURCE
        customer.attributes, customer.field_times = merged, times
        customer.field_sources = sources
        customer.updated_at, customer.version = now, customer.version + 1
        await session.flush()
        fields = sorted([*traits.fields, *(f"attributes.{k}" for k in attributes or {})])
        await record_changes(
            session,
            [
                Change(
                    "customer.updated",
                    customer.id,
                    {"customerId": str(customer.id), "fields": fields},
                    now,
                )
            ],
        )
        row = (await session.execute(customer_select().where(Customer.id == customer.id))).one()
        await mark(session, [customer.id], actor, now)  # RULE tags, stage, segments follow
        return to_record(row)

    return await transact(db, work)
