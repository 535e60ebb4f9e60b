"""Reference data every database needs: the default identity types and lifecycle model.

Run after migrating (`c360 migrate`) and by the tests' database reset; idempotent, and it
never overwrites what an admin has changed.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from domain.identity.types import ensure_default_identity_types
from domain.lifecycle.model import ensure_default_model
from store.db import Database


async def ensure_reference_data(db: Database) -> None:
    async def work(session: AsyncSession) -> None:
        await ensure_default_identity_types(session)
        await ensure_default_model(session)

    await db.transact(work)
