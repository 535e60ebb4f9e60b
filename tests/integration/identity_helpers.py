"""Shared arrangements for identity-resolution tests."""

from __future__ import annotations

from sqlalchemy import func, select

from domain.identity.linking import IdentifyInput, IdentifyResult, identify, identify_batch
from store.db import Database
from store.models import Base


def item(
    *identities: tuple[str, str], traits: object = None, source: str | None = "test", at=None
) -> IdentifyInput:
    return IdentifyInput(list(identities), traits, source, at)


async def ident(db: Database, *identities: tuple[str, str], **kwargs) -> IdentifyResult:
    return await identify(db, item(*identities, **kwargs), region="CN", actor="test")


async def batch(
    db: Database, *items: IdentifyInput, key: str | None = None
) -> list[IdentifyResult]:
    return await identify_batch(db, list(items), region="CN", actor="test", idempotency_key=key)


async def row_counts(db: Database) -> dict[str, int]:
    """Rows per table: compared before and after a refused call, it proves nothing was written."""
    async with db.read() as session:
        return {
            table.name: (
                await session.execute(select(func.count()).select_from(table))
            ).scalar_one()
            for table in Base.metadata.sorted_tables
        }


async def owners(db: Database) -> dict[tuple[str, str], object]:
    from store.models import Customer, Identity

    async with db.read() as session:
        rows = await session.execute(
            select(Identity.type, Identity.value, Identity.customer_id, Customer.status).join(
                Customer, Customer.id == Identity.customer_id
            )
        )
        result = {}
        for type_key, value, customer_id, status in rows:
            assert status == "ACTIVE", f"{type_key}:{value} is held by a {status} profile"
            result[(type_key, value)] = customer_id
        return result
