"""Small builders that put rows straight into the store, for arranging read tests."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from domain.identity.normalize import normalize
from domain.identity.types import load_identity_types
from store.db import Database
from store.models import Customer, Identity, StageTransition, TagAssignment, TagDefinition
from store.types import utcnow


async def make_customer(
    db: Database,
    *,
    identities: Sequence[tuple[str, str]] = (),
    tags: Sequence[str] = (),
    stages: Sequence[str] = (),
    created_at: datetime | None = None,
    **fields: Any,
) -> uuid.UUID:
    """A live profile with normalized identities, FLAG tags (defined on first use) and a
    stage history walking through `stages`."""
    created = created_at or utcnow()
    async with db.write() as session:
        types = await load_identity_types(session)
        customer = Customer(created_at=created, updated_at=created, **fields)
        session.add(customer)
        await session.flush()
        for type_key, raw in identities:
            value = normalize(types[type_key].normalizer, raw, region="CN")
            session.add(
                Identity(customer_id=customer.id, type=type_key, value=value, source="test")
            )
        for key in tags:
            tag = (
                await session.execute(
                    TagDefinition.__table__.select().where(TagDefinition.key == key)
                )
            ).first()
            tag_id = tag.id if tag else uuid.uuid4()
            if tag is None:
                session.add(TagDefinition(id=tag_id, key=key, name=key.title(), category="test"))
                await session.flush()
            session.add(TagAssignment(customer_id=customer.id, tag_id=tag_id, source="test"))
        previous = None
        for index, stage in enumerate(stages):
            at = created + timedelta(days=index)
            session.add(
                StageTransition(
                    customer_id=customer.id,
                    from_stage=previous,
                    to_stage=stage,
                    at=at,
                    actor="test",
                )
            )
            customer.stage, customer.stage_entered_at, previous = stage, at, stage
        return customer.id
