"""domain.profile_bundle reads a page's lists in one statement on PostgreSQL, and returns
exactly the records the per-list functions return (the API serves either, by backend)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import update

from domain import profile, tags
from domain.activity import metrics
from domain.lifecycle import model as lifecycle
from domain.profile_bundle import PARTS, bundles_of, supported
from store.db import Database
from store.models import CustomerMetrics, TagAssignment
from store.types import utcnow
from tests.builders import make_customer


async def _customers(db: Database) -> list:
    ids = [
        await make_customer(
            db,
            identities=[("email", f"p{i}@example.com"), ("phone", f"1380013800{i}")],
            tags=["vip", "newsletter"][: i % 3],
            stages=["awareness", "consideration", "purchase"][: 1 + i % 3],
        )
        for i in range(6)
    ]
    ids.append(await make_customer(db))  # no identities, tags, stages or metrics
    now = utcnow()
    async with db.write() as session:
        # One tag already expired, one expiring later; metrics with money, RFM and nulls.
        await session.execute(
            update(TagAssignment)
            .where(TagAssignment.customer_id == ids[1])
            .values(expires_at=now - timedelta(seconds=1))
        )
        await session.execute(
            update(TagAssignment)
            .where(TagAssignment.customer_id == ids[2])
            .values(expires_at=now + timedelta(days=3))
        )
        for i, customer_id in enumerate(ids[:4]):
            session.add(
                CustomerMetrics(
                    customer_id=customer_id,
                    order_count=i,
                    total_spent=Decimal("1234.50") * i,
                    first_order_at=now - timedelta(days=40, microseconds=i * 10),
                    last_order_at=now - timedelta(days=2) if i else None,
                    last_activity_at=now,
                    rfm_recency=i or None,
                    rfm_frequency=2,
                    rfm_monetary=3,
                    rfm_segment="Loyal",
                    clv=Decimal("99.90") if i % 2 else None,
                    churn_risk=0.1 * i if i else None,
                    updated_at=now,
                )
            )
    return ids


async def test_one_statement_returns_the_records_the_per_list_reads_return(db: Database) -> None:
    ids = await _customers(db)
    if not supported(db):
        assert db.dialect != "postgresql"  # elsewhere the API reads list by list
        return
    bundles = await bundles_of(db, ids, PARTS, utcnow())
    identities = await profile.identities_of(db, ids)
    assignments = await tags.assignments_of(db, ids)
    history = await lifecycle.history_of(db, ids)
    figures = await metrics.metrics_of(db, ids)
    assert set(bundles) == set(ids)
    for customer_id in ids:
        bundle = bundles[customer_id]
        assert bundle.identities == identities.get(customer_id, [])
        assert bundle.tags == assignments.get(customer_id, [])
        assert bundle.history == history.get(customer_id, [])
        assert bundle.metrics == figures.get(customer_id)
    assert not bundles[ids[1]].tags  # expired: gone at once, for every read
    assert [a.expires_at is not None for a in bundles[ids[2]].tags or []] == [True, True]


async def test_only_the_parts_asked_for_are_read(db: Database) -> None:
    ids = await _customers(db)
    if not supported(db):
        assert db.dialect != "postgresql"
        return
    bundles = await bundles_of(db, ids, ["metrics"], utcnow())
    assert all(
        b.identities is None and b.tags is None and b.history is None for b in bundles.values()
    )
    assert bundles[ids[3]].metrics is not None and bundles[ids[6]].metrics is None
