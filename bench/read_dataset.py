"""The read benchmark's dataset: N customers with the shape of a real customer base, built in
set-based SQL (generate_series), plus tag definitions and segments made by the domain's own
verbs so that they are valid by the rules the API enforces.

Per customer (drawn once into a scratch table, so every child table agrees with it):
1-6 identities (email, phone, device, WeChat openid/unionid, CRM id, in that order), 0-12 tags
of 40 (skewed, 8% with a future expiry, 3% already expired), 1-5 stage transitions along the
funnel, 0-40 orders (5% refunded) and 0-200 events, both long-tailed (most customers have few,
some many: mean about 10 orders and 40 events). Metrics come from
`domain.activity.metrics.recompute_all`
over those rows; `last_seen_at` is the last activity (or creation). Child rows are inserted in
customer-id order, which keeps index maintenance sequential and the build fast; a customer's
rows are therefore adjacent on disk, as they would be after a CLUSTER.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, literal, select, text, update

from domain.activity import metrics
from domain.segments.definitions import SegmentDraft, customer_filter, define_segment
from domain.tags import TagSpec, define_tag
from store.db import Database
from store.models import Customer, Segment, SegmentMembership
from store.types import UTCDateTime

TAG_COUNT = 40
FUNNEL = "ARRAY['awareness','consideration','purchase','loyalty','churned']"
IDENTITY_TYPES = "ARRAY['email','phone','device_id','wechat_openid','wechat_unionid','crm_id']"
SURNAMES = "ARRAY['王','李','张','刘','陈','杨','黄','赵','吴','周','徐','孙','马','朱','胡','郭']"
GIVEN = "ARRAY['伟','芳','娜','秀英','敏','静','丽','强','磊','军','洋','勇','艳','杰','娟','涛']"
CITIES = "ARRAY['上海','北京','深圳','广州','杭州','成都','武汉','南京']"
REGIONS = "ARRAY['上海','北京','广东','广东','浙江','四川','湖北','江苏']"
EVENT_TYPES = (
    "ARRAY['page_view','page_view','page_view','product_view','product_view','add_to_cart',"
    "'login','search','checkout_start','share']"
)
CHANNELS = "ARRAY['web','app','wechat','store']"
INTERESTS = (
    "sports",
    "beauty",
    "travel",
    "food",
    "tech",
    "fashion",
    "books",
    "music",
    "outdoor",
    "parenting",
)


def tag_specs() -> list[TagSpec]:
    """40 definitions: interests, channels, lifecycle marks, and a few valued tags."""
    specs = [
        TagSpec(f"interest_{i}", f"Interest: {i}", category=f"interest/{i}") for i in INTERESTS
    ]
    specs += [
        TagSpec(f"channel_{c}", f"Channel: {c}", category="channel")
        for c in ("web", "app", "wechat", "store", "crm")
    ]
    specs += [
        TagSpec(k, k.replace("_", " ").title(), category="marketing")
        for k in (
            "vip",
            "newsletter",
            "sms_opt_in",
            "coupon_user",
            "gift_buyer",
            "reviewer",
            "returner",
            "bargain_hunter",
            "early_adopter",
            "brand_fan",
            "referrer",
            "member",
            "student",
            "corporate",
            "influencer",
            "test_group_a",
            "test_group_b",
            "holiday_shopper",
            "night_owl",
            "weekend_shopper",
            "high_intent",
        )
    ]
    specs += [
        TagSpec(
            "tier",
            "Tier",
            category="loyalty",
            value_type="ENUM",
            allowed_values=["bronze", "silver", "gold"],
        ),
        TagSpec(
            "size",
            "Clothing size",
            category="profile",
            value_type="ENUM",
            allowed_values=["s", "m", "l", "xl"],
        ),
        TagSpec("nps", "NPS score", category="survey", value_type="NUMBER"),
        TagSpec("favourite_store", "Favourite store", category="profile", value_type="TEXT"),
    ]
    assert len(specs) == TAG_COUNT
    return specs


# One scratch row per customer: every count and time the child tables are drawn from.
SHAPE = f"""
CREATE UNLOGGED TABLE bench_shape AS
SELECT g AS n,
       md5('c360-bench-' || g)::uuid AS id,
       1 + floor(random() * 6)::int AS identities,
       floor(13 * random() ^ 1.5)::int AS tags,
       floor({TAG_COUNT} * random() ^ 2)::int AS tag_offset,
       1 + floor(random() * 5)::int AS stages,
       floor(41 * random() ^ 3)::int AS orders,
       floor(201 * random() ^ 4)::int AS events,
       CAST(:now AS timestamptz) - random() * interval '730 days' AS created_at
FROM generate_series(1, :customers) AS g
"""

CUSTOMERS = f"""
INSERT INTO customers (id, status, display_name, first_name, last_name, email, phone, gender,
                       birthday, locale, country, region, city, attributes, field_times,
                       created_at, updated_at, first_seen_at, last_seen_at, stage,
                       stage_entered_at, version)
SELECT s.id, 'ACTIVE',
       ({SURNAMES})[1 + s.n % 16] || ({GIVEN})[1 + (s.n / 16) % 16],
       ({GIVEN})[1 + (s.n / 16) % 16], ({SURNAMES})[1 + s.n % 16],
       'user' || s.n || '@example.com',
       CASE WHEN s.identities >= 2 THEN '+86139' || lpad(s.n::text, 8, '0') END,
       CASE s.n % 3 WHEN 0 THEN 'female' WHEN 1 THEN 'male' END,
       DATE '1960-01-01' + ((s.n::bigint * 7919) % 16000)::int,
       'zh-CN', 'CN', ({REGIONS})[1 + s.n % 8], ({CITIES})[1 + s.n % 8],
       jsonb_build_object('vip', s.n % 10 = 0, 'signup', ({CHANNELS})[1 + s.n % 4]),
       '{{}}'::jsonb, s.created_at, s.created_at, s.created_at, s.created_at,
       ({FUNNEL})[s.stages],
       s.created_at + (s.stages - 0.5) / s.stages * (CAST(:now AS timestamptz) - s.created_at),
       1
FROM bench_shape s ORDER BY s.n
"""

IDENTITIES = f"""
INSERT INTO identities (customer_id, type, value, source, verified, first_seen_at, last_seen_at)
SELECT s.id, ({IDENTITY_TYPES})[k],
       CASE k WHEN 1 THEN 'user' || s.n || '@example.com'
              WHEN 2 THEN '+86139' || lpad(s.n::text, 8, '0')
              WHEN 3 THEN 'dev-' || md5('d' || s.n)
              WHEN 4 THEN 'o' || md5('o' || s.n)
              WHEN 5 THEN 'u' || md5('u' || s.n)
              ELSE 'CRM' || lpad(s.n::text, 9, '0') END,
       ({CHANNELS})[1 + (s.n + k) % 4], k <= 2, s.created_at, s.created_at
FROM bench_shape s CROSS JOIN LATERAL generate_series(1, s.identities) AS k
ORDER BY s.id, k
"""

TAG_ASSIGNMENTS = f"""
WITH d AS (SELECT id, value_type, allowed_values,
                  row_number() OVER (ORDER BY key) - 1 AS position FROM tag_definitions),
     a AS (SELECT s.id AS customer_id, s.created_at, random() AS r,
                  (s.tag_offset + k * 11) % {TAG_COUNT} AS position
           FROM bench_shape s CROSS JOIN LATERAL generate_series(0, s.tags - 1) AS k)
INSERT INTO tag_assignments (customer_id, tag_id, value, source, confidence, actor, assigned_at,
                             expires_at)
SELECT a.customer_id, d.id,
       CASE d.value_type
            WHEN 'ENUM'
            THEN d.allowed_values ->> floor(a.r * jsonb_array_length(d.allowed_values))::int
            WHEN 'NUMBER' THEN floor(a.r * 11)::int::text
            WHEN 'TEXT' THEN 'store-' || floor(a.r * 30)::int
       END,
       'bench', round(a.r::numeric, 2), 'bench',
       a.created_at + a.r * (CAST(:now AS timestamptz) - a.created_at),
       CASE WHEN a.r < 0.08 THEN CAST(:now AS timestamptz) + (1 + a.r * 700) * interval '1 day'
            WHEN a.r > 0.97 THEN CAST(:now AS timestamptz) - (a.r - 0.96) * interval '1000 days'
       END
FROM a JOIN d USING (position)
ORDER BY a.customer_id, a.position
"""

STAGE_TRANSITIONS = f"""
INSERT INTO stage_transitions (customer_id, from_stage, to_stage, at, reason, actor)
SELECT s.id, CASE WHEN k > 1 THEN ({FUNNEL})[k - 1] END, ({FUNNEL})[k],
       s.created_at + (k - 0.5) / s.stages * (CAST(:now AS timestamptz) - s.created_at),
       'lifecycle rule', 'rule:bench'
FROM bench_shape s CROSS JOIN LATERAL generate_series(1, s.stages) AS k
ORDER BY s.id, k
"""

ORDERS = """
INSERT INTO orders (customer_id, source, external_id, amount, currency, base_amount, status,
                    placed_at, created_at)
SELECT o.id, 'bench', 'o-' || o.n || '-' || o.k, o.amount, 'CNY', o.amount,
       CASE WHEN o.r < 0.05 THEN 'refunded' ELSE 'completed' END, o.at, o.at
FROM (SELECT s.id, s.n, k, random() AS r, round((20 + random() * 980)::numeric, 2) AS amount,
             s.created_at + random() * (CAST(:now AS timestamptz) - s.created_at) AS at
      FROM bench_shape s CROSS JOIN LATERAL generate_series(1, s.orders) AS k) AS o
ORDER BY o.id, o.k
"""

EVENTS = f"""
INSERT INTO events (customer_id, type, channel, occurred_at, received_at, properties)
SELECT e.id, ({EVENT_TYPES})[1 + floor(e.r * 10)::int], ({CHANNELS})[1 + e.n % 4], e.at, e.at,
       jsonb_build_object('sku', 'S' || floor(e.r * 997)::int)
FROM (SELECT s.id, s.n, k, random() AS r,
             s.created_at + random() * (CAST(:now AS timestamptz) - s.created_at) AS at
      FROM bench_shape s CROSS JOIN LATERAL generate_series(1, s.events) AS k) AS e
ORDER BY e.id, e.k
"""

LAST_SEEN = """
UPDATE customers AS c
SET last_seen_at = greatest(c.created_at, m.last_activity_at),
    updated_at = greatest(c.created_at, m.last_activity_at)
FROM customer_metrics AS m
WHERE m.customer_id = c.id AND m.last_activity_at IS NOT NULL
"""


def segment_drafts() -> list[SegmentDraft]:
    """A dozen segments over every kind of leaf; half of them materialized."""

    def draft(key: str, condition: dict[str, Any], materialized: bool) -> SegmentDraft:
        return SegmentDraft(key, key.replace("_", " ").capitalize(), None, condition, materialized)

    return [
        draft("vip", {"tag": {"key": "vip"}}, True),
        draft("high_value", {"metric": {"name": "MONETARY", "op": "GTE", "value": 8000}}, True),
        draft("loyal", {"stage": {"in": ["loyalty"]}}, True),
        draft(
            "champions", {"metric": {"name": "RFM_SEGMENT", "op": "EQ", "value": "Champions"}}, True
        ),
        draft("sports_fans", {"tag": {"key": "interest_sports"}}, True),
        draft("wechat_users", {"identity": {"type": "wechat_openid"}}, True),
        draft("churned", {"stage": {"in": ["churned"]}}, False),
        draft("shanghai", {"attribute": {"field": "city", "op": "EQ", "value": "上海"}}, False),
        draft("at_risk", {"metric": {"name": "CHURN_RISK", "op": "GT", "value": 0.7}}, False),
        draft(
            "recent_buyers",
            {"orders": {"measure": "COUNT", "op": "GTE", "value": 1, "withinDays": 30}},
            False,
        ),
        draft(
            "cart_abandoners",
            {
                "and": [
                    {"event": {"type": "add_to_cart", "withinDays": 7}},
                    {
                        "not": {
                            "orders": {"measure": "COUNT", "op": "GTE", "value": 1, "withinDays": 7}
                        }
                    },
                ]
            },
            False,
        ),
        draft("new_signups", {"stage": {"in": ["awareness"], "enteredWithinDays": 30}}, False),
    ]


COUNTED = (
    "customers",
    "identities",
    "tag_assignments",
    "stage_transitions",
    "orders",
    "events",
    "customer_metrics",
    "segments",
    "segment_memberships",
)


async def _sql(db: Database, *statements: str, **params: Any) -> None:
    """One transaction of set-based statements; one session, so setseed() holds for all."""
    async with db.write() as session:
        await session.execute(text("SET LOCAL synchronous_commit = off"))
        await session.execute(text("SET LOCAL work_mem = '256MB'"))
        # Rows are consistent by construction: skip the per-row foreign-key triggers.
        await session.execute(text("SET LOCAL session_replication_role = replica"))
        await session.execute(text("SELECT setseed(:seed)"), {"seed": params.pop("seed", 0.36)})
        for statement in statements:
            names = {k: v for k, v in params.items() if f":{k}" in statement}
            await session.execute(text(statement), names)


async def _timed(log: Callable[[str], None], name: str, step: Awaitable[Any]) -> float:
    started = time.perf_counter()
    await step
    seconds = time.perf_counter() - started
    log(f"  {name}: {seconds:.1f} s")
    return seconds


async def _counts(db: Database) -> dict[str, int]:
    async with db.read() as session:
        counts = {
            table: int((await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())
            for table in COUNTED
        }
        size = await session.execute(text("SELECT pg_database_size(current_database())"))
        return counts | {"database_mb": int(size.scalar_one()) // 2**20}


async def existing(db: Database) -> dict[str, Any] | None:
    """What a kept database already holds, or None when it holds no dataset yet."""
    rows = await _counts(db)
    if not rows["customers"]:
        return None
    return {"customers": rows["customers"], "rows": rows, "build_seconds": {}, "reused": True}


async def build(
    db: Database, customers: int, now: datetime, log: Callable[[str], None], seed: float = 0.36
) -> dict[str, Any]:
    """Fill an empty, migrated database; returns what was built and how long each step took."""
    seconds: dict[str, float] = {}
    params = {"customers": customers, "now": now, "seed": seed}
    await _timed(log, "tag definitions", _define_tags(db))
    seconds["customers"] = await _timed(log, "customers", _sql(db, SHAPE, CUSTOMERS, **params))
    for name, statement in (
        ("identities", IDENTITIES),
        ("tag_assignments", TAG_ASSIGNMENTS),
        ("stage_transitions", STAGE_TRANSITIONS),
        ("orders", ORDERS),
        ("events", EVENTS),
    ):
        seconds[name] = await _timed(log, name, _sql(db, statement, **params))
    seconds["metrics"] = await _timed(log, "metrics", metrics.recompute_all(db, now))
    seconds["last_seen"] = await _timed(
        log, "last_seen_at", _sql(db, LAST_SEEN, "DROP TABLE bench_shape")
    )
    seconds["segments"] = await _timed(log, "segments", _define_segments(db, now))
    seconds["vacuum"] = await _timed(log, "vacuum analyze", _vacuum(db))
    return {"customers": customers, "rows": await _counts(db), "build_seconds": seconds}


async def _define_tags(db: Database) -> None:
    for spec in tag_specs():
        await define_tag(db, spec)


async def _define_segments(db: Database, now: datetime) -> None:
    """Every segment is defined (and validated) by the domain; the materialized ones then get
    the members `refreshSegment` would store, selected by the domain's own compiled filter in
    one INSERT ... SELECT. A live refresh also writes a history row and a change event per
    member: bookkeeping of a million rows that no read looks at, left out to keep the build
    fast."""
    for draft in segment_drafts():
        record = await define_segment(db, dataclasses.replace(draft, materialized=False), now)
        if not draft.materialized:
            continue
        matches = await customer_filter(db, draft.condition, None, now)
        assert matches is not None
        chosen = select(Customer.id, literal(record.id), literal(now, UTCDateTime()))
        async with db.write() as session:
            await session.execute(
                insert(SegmentMembership).from_select(
                    ["customer_id", "segment_id", "entered_at"], matches.apply(chosen)
                )
            )
            members = select(func.count()).where(SegmentMembership.segment_id == record.id)
            await session.execute(
                update(Segment)
                .where(Segment.id == record.id)
                .values(
                    materialized=True,
                    member_count=members.scalar_subquery(),
                    last_refreshed_at=now,
                )
            )


async def _vacuum(db: Database) -> None:
    """VACUUM cannot run in a transaction: an autocommit connection of the same engine."""
    async with db.engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text("VACUUM ANALYZE"))
