"""Survivorship rules as data, stored and configured (the rules themselves: domain.identity.traits).

A rule per field (`survivorship_rules`, keyed by the API's field name: `firstName`, `city`,
`attributes.vip`, or `attributes.*` for every custom attribute without a rule of its own), and
a rank per source (`source_trust`, higher is more trusted, unknown sources rank 0). The rules:

- MOST_RECENT (the default): the value set later wins;
- MOST_TRUSTED: the value from the more trusted source wins; equal trust, the later one;
- FIRST_NON_NULL: the value set first stays;
- SURVIVOR: on a merge the surviving profile's value stays; on identify, the later one wins.

Whatever the rule, a value beats no value. An explicit edit (updateCustomer) is not subject to
them: it sets what it says. Admins replace the whole configuration (`configureSurvivorship`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.errors import InvalidInput
from domain.identity.traits import DERIVED, PROFILE_FIELDS, Rule, Survivorship
from store.db import Database
from store.models import Customer, SourceTrust, SurvivorshipRule

_COLUMN_OF = dict(PROFILE_FIELDS)
_FIELD_OF = {column: key for key, column in _COLUMN_OF.items()}


def _stored_name(name: str, index: int) -> str:
    if name in _COLUMN_OF:
        return _COLUMN_OF[name]
    if name.startswith("attributes.") and len(name) > len("attributes."):
        return name
    raise InvalidInput(
        "a rule names a profile field (firstName, city, ...), attributes.<key> or attributes.*",
        field=["rules", index, "field"],
    )


def api_name(stored: str) -> str:
    return _FIELD_OF.get(stored, stored)


@dataclass(frozen=True, slots=True)
class FieldProvenance:
    """Where a profile's field value came from: the source that set it, and when."""

    field: str  # API name: firstName, city, attributes.<key>
    source: str | None
    at: datetime


async def field_provenance(
    db: Database, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[FieldProvenance]]:
    """Per profile, every field with a recorded time, by name. A display name derived from the
    names (traits.DERIVED) has none of its own: the names' entries say where it came from."""
    statement = select(Customer.id, Customer.field_times, Customer.field_sources).where(
        Customer.id.in_(customer_ids)
    )
    found: dict[uuid.UUID, list[FieldProvenance]] = {}
    async with db.read() as session:
        for customer_id, times, sources in await session.execute(statement):
            found[customer_id] = [
                FieldProvenance(api_name(name), (sources or {}).get(name), _moment(stamp))
                for name, stamp in sorted((times or {}).items(), key=lambda i: api_name(i[0]))
                if stamp != DERIVED
            ]
    return found


def _moment(stamp: str) -> datetime:
    at = datetime.fromisoformat(stamp)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


async def load_survivorship(session: AsyncSession) -> Survivorship:
    rules = await session.execute(select(SurvivorshipRule.field, SurvivorshipRule.rule))
    trust = await session.execute(select(SourceTrust.source, SourceTrust.rank))
    return Survivorship(
        {_COLUMN_OF.get(f, f): Rule(r) for f, r in rules}, {s: rank for s, rank in trust}
    )


async def get_survivorship(db: Database) -> Survivorship:
    async with db.read() as session:
        return await load_survivorship(session)


async def configure_survivorship(
    db: Database, rules: Sequence[tuple[str, str]], trusted_first: Sequence[str]
) -> Survivorship:
    """Replace the rules ((API field name, rule) pairs) and the source ranking (most trusted
    first); a bad one refuses the whole configuration with its path."""
    stored: dict[str, Rule] = {}
    for index, (name, rule) in enumerate(rules):
        if rule not in Rule.__members__:
            raise InvalidInput(
                f"rule must be one of {', '.join(Rule)}", field=["rules", index, "rule"]
            )
        column = _stored_name(name, index)
        if column in stored:
            raise InvalidInput("a field has one rule", field=["rules", index, "field"])
        stored[column] = Rule(rule)
    for index, source in enumerate(trusted_first):
        if not source or len(source) > 64 or source in trusted_first[:index]:
            raise InvalidInput(
                "a source is 1 to 64 characters, named once", field=["sourceTrust", index]
            )
    trust = {s: len(trusted_first) - i for i, s in enumerate(trusted_first)}

    async def work(session: AsyncSession) -> Survivorship:
        await session.execute(delete(SurvivorshipRule))
        await session.execute(delete(SourceTrust))
        if stored:
            rows = [{"field": api_name(n), "rule": r.value} for n, r in stored.items()]
            await session.execute(insert(SurvivorshipRule), rows)
        if trust:
            rows_ = [{"source": s, "rank": r} for s, r in trust.items()]
            await session.execute(insert(SourceTrust), rows_)
        return Survivorship(stored, trust)

    return await db.transact(work)
