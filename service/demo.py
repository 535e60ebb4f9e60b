"""Demo data: thousands of realistic customers, so that a fresh install has something to show.

`seed_demo` fills a database with what the API is built for: people reaching us through several
channels (email, China mobile numbers, WeChat open and union ids, devices, CRM ids), about 3% of
them present twice under different identities and not merged yet, tags of every value type, two
years of orders and events, the metrics derived from them (RFM scores, CLV and churn risk
included), each customer's channels and stage histories that walk the default funnel graph.

It writes rows in bulk straight into the tables, bypassing the domain verbs (no identify, no
outbox, no audit): that is what makes it take seconds, and why it must never run against a
production database. One seed gives the same data (times are relative to the start of the
current UTC day); identity values and order ids carry the seed, so seeding again with another
seed adds new people instead of colliding (phone numbers, for seeds that differ modulo 1000).
"""

from __future__ import annotations

import itertools
import math
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.activity import channels
from domain.activity.metrics import recompute, refresh_rfm
from store.db import Database
from store.models import Base, TagDefinition
from store.types import utcnow

Row = dict[str, Any]
Found = tuple[str, str, str]  # an identity as (type, value, source)

TABLES = (  # parents first
    "customers", "identities", "orders", "events", "tag_assignments", "tag_history",
    "stage_transitions", "customer_metrics",
)  # fmt: skip
ACTOR, CHUNK = "demo", 1000
HISTORY, CHURN_AFTER = timedelta(days=730), timedelta(days=180)
LOYAL_AFTER_ORDERS, DUPLICATE_SHARE = 3, 0.03
MAX_IDENTITIES, MAX_TAGS, MAX_ORDERS, MAX_EVENTS = 5, 5, 15, 30
HIGH_VALUE_SPEND, USD_TO_CNY, CENT = Decimal(2000), Decimal("7.10"), Decimal("0.01")
BIRTHDAYS_FROM, BIRTHDAY_SPAN_DAYS = date(1960, 1, 1), 46 * 365


def _table(text: str) -> tuple[tuple[str, ...], ...]:
    """'王:wang, 李:li' -> (('王', 'wang'), ('李', 'li'))"""
    return tuple(tuple(item.split(":")) for item in text.split(", "))


FAMILY_NAMES = _table(
    "王:wang, 李:li, 张:zhang, 刘:liu, 陈:chen, 杨:yang, 黄:huang, 赵:zhao, 吴:wu, 周:zhou, "
    "徐:xu, 孙:sun, 马:ma, 朱:zhu, 胡:hu, 郭:guo, 何:he, 林:lin, 高:gao, 罗:luo"
)
GIVEN_NAMES = {
    "female": _table("娜:na, 敏:min, 静:jing, 丽:li, 艳:yan, 芳:fang, 秀英:xiuying, 婷婷:tingting"),
    "male": _table("伟:wei, 强:qiang, 磊:lei, 洋:yang, 勇:yong, 军:jun, 杰:jie, 浩然:haoran"),
}
LATIN_GIVEN = {
    "female": ("Emma", "Anna", "Sophie", "Olivia", "Mia", "Laura", "Hannah", "Emily"),
    "male": ("Lukas", "Max", "Paul", "James", "Oliver", "Jonas", "Daniel", "Thomas"),
}
LATIN_FAMILY = ("Schmidt", "Fischer", "Weber", "Wagner", "Smith", "Brown", "Taylor", "Miller")
CN_CITIES = _table(  # region:city
    "Shanghai:Shanghai, Beijing:Beijing, Guangdong:Shenzhen, Zhejiang:Hangzhou, Guangdong:Guangzhou"
)
CN_CITY_WEIGHTS = (30, 25, 20, 15, 10)
ABROAD = _table(  # country:locale:region:city
    "US:en-US:California:San Francisco, US:en-US:New York:New York, DE:de-DE:Bavaria:Munich, "
    "DE:de-DE:Berlin:Berlin, GB:en-GB:England:London"
)
EMAIL_DOMAINS = {  # by whether the person is Chinese
    True: ("qq.com", "163.com", "126.com", "foxmail.com", "sina.com", "outlook.com"),
    False: ("gmail.com", "outlook.com", "yahoo.com", "gmx.de", "web.de"),
}
# No prefix is one repeated digit, so no generated number is refused as a placeholder.
MOBILE_PREFIXES = tuple(f"1{n}" for n in (30, 31, 32, 35, 36, 37, 38, 39, 50, 51, 52, 58, 86, 87))
PHONES_PER_SEED = 1_400_000  # a thousand seeds' numbers fill the prefixes' 14 * 10^8
URL_SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
ORDER_COUNT_WEIGHTS = (30, 18, 12, 9, 7, 5, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1)  # of 0..15 orders
EVENT_TYPES = ("page_view", "product_view", "add_to_cart", "checkout", "login", "wechat_message")
EVENT_WEIGHTS = (40, 25, 10, 5, 12, 8)
BROWSING = frozenset({"product_view", "add_to_cart", "checkout"})
CHANNELS, CHANNEL_WEIGHTS = ("web", "app", "wechat", "store"), (35, 35, 20, 10)
PAGES = ("/", "/products", "/promotions/618", "/promotions/double-11", "/membership")
SKUS = tuple(f"SKU-{number}" for number in range(100, 1000))
EVENT_PROPERTIES = {  # the one property each type of event carries, and its possible values
    "page_view": ("path", PAGES),
    "product_view": ("sku", SKUS),
    "add_to_cart": ("sku", SKUS),
    "checkout": ("items", (1, 2, 3, 4, 5)),
    "login": ("method", ("password", "sms", "wechat")),
    "wechat_message": ("direction", ("inbound", "outbound")),
}
STORES = ("shanghai_jingan", "beijing_sanlitun", "shenzhen_futian", "hangzhou_xihu")
SERVICE_NOTES = ("prefers evening calls", "asked about membership", "buys gifts")
# key, name, category, value type, share of customers drawn (None: derived from their data)
DEMO_TAGS = (
    ("vip", "VIP", "value", "FLAG", None),
    ("high_value", "High value", "value", "FLAG", None),
    ("price_sensitive", "Price sensitive", "value", "FLAG", 0.2),
    ("newsletter", "Newsletter subscriber", "marketing", "FLAG", 0.5),
    ("interest_sports", "Interested in sports", "interest/sports", "FLAG", 0.25),
    ("interest_beauty", "Interested in beauty", "interest/beauty", "FLAG", 0.25),
    ("preferred_store", "Preferred store", "store", "ENUM", 0.3),
    ("satisfaction_score", "Satisfaction score", "feedback", "NUMBER", 0.2),
    ("service_note", "Service note", "service", "TEXT", 0.05),
)
REASONS = {
    "awareness": "demo data: first seen",
    "consideration": "demo data: viewed products",
    "purchase": "demo data: placed an order",
    "loyalty": "demo data: repeat orders",
    "churned": "demo data: no activity in 180 days",
}


@dataclass(frozen=True, slots=True)
class DemoSummary:
    customers: int
    identities: int
    orders: int
    events: int
    tag_assignments: int
    stage_transitions: int
    duplicate_people: int


@dataclass(frozen=True, slots=True)
class _Person:
    """Who someone is; both profiles of a duplicated person share it."""

    profile: Row  # the customer columns that describe the person
    handle: str  # ASCII, how their email addresses start
    chinese: bool


async def seed_demo(
    db: Database,
    customers: int = 3000,
    seed: int = 42,
    progress: Callable[[int, int | None], None] | None = None,
) -> DemoSummary:
    """Insert `customers` demo profiles (duplicates included) and everything they did.
    `progress(done, total)` counts in customers: generating them is the first half of the
    work, inserting their rows the second."""
    report = progress or (lambda _done, _total: None)
    now = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    async with db.write() as session:
        tag_ids = await _ensure_tag_definitions(session, now)
    builder = _DemoBuilder(seed, now, tag_ids)
    duplicates = builder.build(customers, lambda made: report(made, 2 * customers))
    total_rows = sum(len(builder.rows[table]) for table in TABLES) or 1
    inserted = 0
    async with db.write() as session:
        for table in TABLES:
            for chunk in _chunks(builder.rows[table]):
                await session.execute(insert(Base.metadata.tables[table]), chunk)
                inserted += len(chunk)
                report(customers + customers * inserted // total_rows, 2 * customers)
        # What recompute-metrics would derive (RFM, CLV, churn risk are population-wide), so
        # that a fresh demo shows every figure.
        await recompute(session, None, now)
        await refresh_rfm(session, now)
        await channels.rebuild(session, None)
    counted = {field.name for field in fields(DemoSummary)}  # a table's name, for most
    counts = {table: len(rows) for table, rows in builder.rows.items() if table in counted}
    return DemoSummary(**counts, duplicate_people=duplicates)


def _chunks(rows: list[Row]) -> list[list[Row]]:
    # Core inserts on the table: the ORM's bulk path costs about four times as much here.
    return [rows[start : start + CHUNK] for start in range(0, len(rows), CHUNK)]


async def _ensure_tag_definitions(session: AsyncSession, now: datetime) -> dict[str, uuid.UUID]:
    """The demo's tag ids by key; definitions that exist already are left as an admin set them."""
    existing = await _demo_tag_ids(session)
    missing = [
        {"id": uuid.uuid5(uuid.NAMESPACE_URL, f"c360:demo:{key}"), "key": key, "name": name,
         "category": category, "value_type": value_type, "kind": "MANUAL",
         "allowed_values": list(STORES) if value_type == "ENUM" else None,
         "created_at": now, "updated_at": now}
        for key, name, category, value_type, _share in DEMO_TAGS
        if key not in existing
    ]  # fmt: skip
    if missing:
        await session.execute(insert(TagDefinition), missing)
    return await _demo_tag_ids(session)


async def _demo_tag_ids(session: AsyncSession) -> dict[str, uuid.UUID]:
    keys = [key for key, *_ in DEMO_TAGS]
    statement = select(TagDefinition.key, TagDefinition.id).where(TagDefinition.key.in_(keys))
    return {key: tag_id for key, tag_id in await session.execute(statement)}


class _DemoBuilder:
    """Generates every demo row in memory from one random stream, so a seed fixes them all."""

    def __init__(self, seed: int, now: datetime, tag_ids: dict[str, uuid.UUID]) -> None:
        self.rng = random.Random(seed)
        self.seed, self.now, self.tag_ids = seed, now, tag_ids
        self.rows: dict[str, list[Row]] = {table: [] for table in TABLES}
        self._order_numbers = itertools.count(1)

    def build(self, customers: int, made: Callable[[int], None] | None = None) -> int:
        """Generate `customers` profiles; returns how many are a second profile of someone.
        `made(profiles so far)` hears every CHUNK profiles and at the end."""
        duplicates = round(customers * DUPLICATE_SHARE)
        people = [self._person() for _ in range(customers - duplicates)]
        for person in people:
            self._add_customer(person, self._identities(person))
            self._report(made)
        for person in self.rng.sample(people, duplicates):
            self._add_customer(person, self._second_identities(person), most_orders=2)
            self._report(made)
        if made is not None:
            made(len(self.rows["customers"]))
        return duplicates

    def _report(self, made: Callable[[int], None] | None) -> None:
        count = len(self.rows["customers"])
        if made is not None and count % CHUNK == 0:
            made(count)

    def _add_customer(
        self, person: _Person, found: list[Found], most_orders: int = MAX_ORDERS
    ) -> None:
        rng, rows, customer_id = self.rng, self.rows, self._uuid()
        created = self.now - timedelta(seconds=rng.randrange(int(HISTORY.total_seconds())))
        until = self.now if rng.random() < 0.7 else self._between(created, self.now)
        order_count = min(most_orders, rng.choices(range(16), ORDER_COUNT_WEIGHTS)[0])
        orders = [self._order(customer_id, created, until) for _ in range(order_count)]
        event_count = min(MAX_EVENTS, int(rng.expovariate(1 / 9)))
        events = [self._event(customer_id, created, until) for _ in range(event_count)]
        metrics = _metrics_row(customer_id, orders, events, self.now)
        path = _stage_path(created, _activity(orders, events), self.now)
        attributes = self._attributes()
        values = {kind: value for kind, value, _source in found}
        identities = self._identity_rows(customer_id, found, created, until)
        rows["identities"] += identities
        rows["orders"] += orders
        rows["events"] += events
        rows["customer_metrics"].append(metrics)
        rows["stage_transitions"] += [
            {"customer_id": customer_id, "from_stage": before, "to_stage": after, "at": at,
             "reason": REASONS[after], "actor": ACTOR}
            for before, after, at in path
        ]  # fmt: skip
        tags = self._tags(attributes, metrics["total_spent"], "email" in values)
        self._add_tags(customer_id, tags, created)
        seen = [created, *(i["last_seen_at"] for i in identities), metrics["last_activity_at"]]
        last_seen = max(at for at in seen if at is not None)
        rows["customers"].append({
            **person.profile, "id": customer_id, "status": "ACTIVE", "attributes": attributes,
            "email": values.get("email"), "phone": values.get("phone"), "field_times": {},
            "created_at": created, "first_seen_at": created, "last_seen_at": last_seen,
            "updated_at": last_seen, "stage": path[-1][1], "stage_entered_at": path[-1][2],
        })  # fmt: skip

    def _person(self) -> _Person:
        rng = self.rng
        gender = rng.choice(("female", "male"))
        chinese = rng.random() < 0.85
        if chinese:
            family, family_latin = rng.choice(FAMILY_NAMES)
            given, given_latin = rng.choice(GIVEN_NAMES[gender])
            display_name = family + given
            handle = rng.choice((f"{given_latin}.{family_latin}", f"{family_latin}{given_latin}"))
            place = ("CN", "zh-CN", *rng.choices(CN_CITIES, CN_CITY_WEIGHTS)[0])
        else:
            given, family = rng.choice(LATIN_GIVEN[gender]), rng.choice(LATIN_FAMILY)
            display_name, handle = f"{given} {family}", f"{given}.{family}".lower()
            expatriate = rng.random() < 0.3
            place = (
                ("CN", "en-US", *rng.choice(CN_CITIES[:2])) if expatriate else rng.choice(ABROAD)
            )
        birthday = BIRTHDAYS_FROM + timedelta(days=rng.randrange(BIRTHDAY_SPAN_DAYS))
        profile = {
            "display_name": display_name, "first_name": given, "last_name": family,
            "gender": gender if rng.random() < 0.95 else None,
            "birthday": birthday if rng.random() < 0.85 else None,
            **dict(zip(("country", "locale", "region", "city"), place, strict=True)),
        }  # fmt: skip
        return _Person(profile, handle, chinese)

    def _identities(self, person: _Person) -> list[Found]:
        """A person's 1-5 identities, most through the channels people use in China."""
        rng, number = self.rng, len(self.rows["customers"]) + 1
        found: list[Found] = []
        if rng.random() < (0.9 if person.chinese else 0.25):
            found.append(("phone", self._phone(number), rng.choice(("app", "store", "web"))))
        if rng.random() < (0.6 if person.chinese else 0.95):
            found.append(("email", self._email(person), rng.choice(("web", "app", "crm"))))
        if rng.random() < (0.65 if person.chinese else 0.15):
            found.append(("wechat_openid", self._wechat_id(), "wechat"))
            if rng.random() < 0.5:
                found.append(("wechat_unionid", self._wechat_id(), "wechat"))
        if rng.random() < 0.2:
            found.append(("crm_id", f"CRM-{self.seed}-{number:06d}", "crm"))
        devices = min(rng.choice((0, 0, 1, 1, 1, 2, 3)), MAX_IDENTITIES - len(found))
        return found + [self._device() for _ in range(devices if found else 1)]

    def _second_identities(self, person: _Person) -> list[Found]:
        """What a person's second, unmerged profile holds: nothing the first one holds."""
        if self.rng.random() < 0.5:
            return [("wechat_openid", self._wechat_id(), "wechat"), self._device()]
        devices = [self._device()] if self.rng.random() < 0.5 else []
        return [("email", self._email(person), "web"), *devices]

    def _identity_rows(
        self, customer_id: uuid.UUID, found: list[Found], start: datetime, end: datetime
    ) -> list[Row]:
        rows = []
        for kind, value, source in found:
            first_seen = self._between(start, end)
            rows.append({
                "customer_id": customer_id, "type": kind, "value": value, "source": source,
                "verified": self.rng.random() < 0.6, "first_seen_at": first_seen,
                "last_seen_at": self._between(first_seen, end),
            })  # fmt: skip
        return rows

    def _phone(self, number: int) -> str:
        """A valid mainland mobile number, distinct for each (seed mod 1000, number < 1.4M)."""
        key = (self.seed % 1000) * PHONES_PER_SEED + number
        # Multiplying by a number prime to the space's size permutes it: distinct numbers that
        # look random.
        mixed = key * 982_451_653 % (len(MOBILE_PREFIXES) * 10**8)
        return f"+86{MOBILE_PREFIXES[mixed // 10**8]}{mixed % 10**8:08d}"

    def _email(self, person: _Person) -> str:
        """Unique, as the customer's number and the seed end it (handles hold no digits)."""
        number = len(self.rows["customers"]) + 1
        domain = self.rng.choice(EMAIL_DOMAINS[person.chinese])
        return f"{person.handle}{number}.{self.seed}@{domain}"

    def _wechat_id(self) -> str:
        return "o" + "".join(self.rng.choices(URL_SAFE, k=27))

    def _device(self) -> Found:
        return ("device_id", str(self._uuid()), self.rng.choice(("app", "web")))

    def _attributes(self) -> dict[str, Any]:
        rng = self.rng
        attributes: dict[str, Any] = {"vip": True} if rng.random() < 0.1 else {}
        if rng.random() < 0.4:
            attributes["preferred_channel"] = rng.choice(("wechat", "sms", "email", "app"))
        if rng.random() < 0.3:
            attributes["member_level"] = rng.choice(("silver", "gold", "platinum"))
        return attributes

    def _order(self, customer_id: uuid.UUID, start: datetime, end: datetime) -> Row:
        rng = self.rng
        yuan = min(max(math.exp(rng.gauss(5.3, 0.9)), 19.9), 2999.0)
        amount = base_amount = Decimal(f"{yuan:.1f}").quantize(CENT)
        currency = "USD" if rng.random() < 0.05 else "CNY"
        if currency == "USD":
            amount = Decimal(f"{yuan / 7.1:.2f}")
            base_amount = (amount * USD_TO_CNY).quantize(CENT)
        placed_at = self._between(start, end)
        return {
            "customer_id": customer_id, "source": "demo",
            "external_id": f"DEMO-{self.seed}-{next(self._order_numbers):06d}",
            "amount": amount, "currency": currency, "base_amount": base_amount,
            "status": "completed" if rng.random() < 0.92 else "refunded",
            "placed_at": placed_at, "created_at": placed_at,
        }  # fmt: skip

    def _event(self, customer_id: uuid.UUID, start: datetime, end: datetime) -> Row:
        rng = self.rng
        kind = rng.choices(EVENT_TYPES, EVENT_WEIGHTS)[0]
        channel = rng.choices(CHANNELS, CHANNEL_WEIGHTS)[0]
        at = self._between(start, end)
        return {
            "customer_id": customer_id, "type": kind, "occurred_at": at, "received_at": at,
            "channel": "wechat" if kind == "wechat_message" else channel,
            "properties": self._event_properties(kind),
        }  # fmt: skip

    def _event_properties(self, kind: str) -> dict[str, Any]:
        name, choices = EVENT_PROPERTIES[kind]
        return {name: self.rng.choice(choices)}

    def _tags(
        self, attributes: dict[str, Any], spent: Decimal, has_email: bool
    ) -> list[tuple[str, str | None]]:
        """(key, value) of the 0-5 tags one customer carries."""
        rng = self.rng
        derived = {"vip": bool(attributes.get("vip")), "high_value": spent >= HIGH_VALUE_SPEND}
        keys = [
            key
            for key, *_, share in DEMO_TAGS
            if (derived[key] if share is None else rng.random() < share)
            and (key != "newsletter" or has_email)
        ]
        values = {
            "preferred_store": rng.choice(STORES),
            "satisfaction_score": str(rng.randint(1, 10)),
            "service_note": rng.choice(SERVICE_NOTES),
        }
        tags = [(key, values.get(key)) for key in keys]
        return tags if len(tags) <= MAX_TAGS else rng.sample(tags, MAX_TAGS)

    def _add_tags(
        self, customer_id: uuid.UUID, tags: list[tuple[str, str | None]], since: datetime
    ) -> None:
        for key, value in tags:
            common = {"customer_id": customer_id, "tag_id": self.tag_ids[key], "source": "demo"}
            at = self._between(since, self.now)
            self.rows["tag_assignments"].append(
                {**common, "value": value, "actor": ACTOR, "assigned_at": at, "expires_at": None}
            )
            self.rows["tag_history"].append(
                {**common, "action": "ASSIGNED", "old_value": None, "new_value": value,
                 "actor": ACTOR, "at": at}
            )  # fmt: skip

    def _uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def _between(self, start: datetime, end: datetime) -> datetime:
        """A whole second in [start, end]."""
        return start + timedelta(seconds=self.rng.randint(0, int((end - start).total_seconds())))


def _metrics_row(
    customer_id: uuid.UUID, orders: list[Row], events: list[Row], now: datetime
) -> Row:
    """Value counts completed orders only; any order or event counts as activity. What the
    builder's tags read: `seed_demo` derives the stored figures again with the metrics' own
    definition (refunds subtract) once every row is in."""
    completed = [order for order in orders if order["status"] == "completed"]
    placed = [order["placed_at"] for order in completed]
    activity = [order["placed_at"] for order in orders] + [e["occurred_at"] for e in events]
    return {
        "customer_id": customer_id, "order_count": len(completed),
        "total_spent": sum((order["base_amount"] for order in completed), Decimal("0.00")),
        "first_order_at": min(placed, default=None), "last_order_at": max(placed, default=None),
        "last_activity_at": max(activity, default=None), "updated_at": now,
    }  # fmt: skip


def _activity(orders: list[Row], events: list[Row]) -> list[tuple[datetime, str]]:
    """Each order and event as (when, what it means for the funnel), oldest first."""
    found = [(o["placed_at"], "purchase" if o["status"] == "completed" else "") for o in orders]
    found += [(e["occurred_at"], "browse" if e["type"] in BROWSING else "") for e in events]
    return sorted(found)


def _stage_path(
    created: datetime, activity: list[tuple[datetime, str]], now: datetime
) -> list[tuple[str | None, str, datetime]]:
    """The (from, to, at) transitions a customer makes through the funnel graph; 180 days
    without activity churn them."""
    path: list[tuple[str | None, str, datetime]] = [(None, "awareness", created)]
    last_seen, purchases = created, 0
    for at, what in [*activity, (now, "")]:
        if at - last_seen > CHURN_AFTER and path[-1][1] != "churned":
            path.append((path[-1][1], "churned", last_seen + CHURN_AFTER))
        last_seen, purchases = at, purchases + (what == "purchase")
        target = _next_stage(path[-1][1], what, purchases)
        if target:
            path.append((path[-1][1], target, at))
    return path


def _next_stage(stage: str, what: str, purchases: int) -> str | None:
    """Where one piece of activity takes a customer, if anywhere; a churned customer comes back
    only by buying, and becomes loyal again on a later order."""
    if what == "purchase":
        if stage == "purchase" and purchases >= LOYAL_AFTER_ORDERS:
            return "loyalty"
        return None if stage in ("purchase", "loyalty") else "purchase"
    return "consideration" if what == "browse" and stage == "awareness" else None
