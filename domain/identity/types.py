"""Identity types as data: the seeded defaults, loading them, and admins defining new ones."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.errors import InvalidInput
from domain.identity.normalize import NORMALIZERS, normalize
from domain.values import text_for
from store.db import Database
from store.models import IdentityType

KEY_PATTERN = re.compile(r"[a-z][a-z0-9_]{1,62}")  # fullmatch: `$` allows a final "\n"


@dataclass(frozen=True, slots=True)
class IdentityTypeSpec:
    key: str
    label: str
    normalizer: str
    is_pii: bool = True
    unique: bool = False
    max_per_customer: int | None = None
    priority: int = 0
    blocked_values: tuple[str, ...] = field(default=())
    placeholder_patterns: tuple[str, ...] = field(default=())
    shared_limit: int | None = None

    def stored_value(self, raw: str, region: str) -> str:
        """`raw` as this type stores it, or InvalidInput (BLOCKED_IDENTITY for a blocked value
        or a placeholder) saying why there is none."""
        return normalize(
            self.normalizer,
            raw,
            region=region,
            blocked_values=self.blocked_values,
            placeholders=self.placeholder_patterns,
        )


# Placeholders as data (identity_types.placeholder_patterns, editable by defineIdentityType):
# regular expressions matched against the whole normalized value, in any case. Integrations
# fill a required field with these when they have no value; they name nobody.
EMAIL_PLACEHOLDERS = (
    r"(null|none|nil|test|testing|tester|noemail|no-email|noreply|no-reply|donotreply|"
    r"unknown|anonymous|asdf|qwerty|xxx+|abc|example)@.*",
    r".*@(null|none|test|noemail|nomail)\.(com|net|org|cn)",
)
PHONE_PLACEHOLDERS = (
    r"\+861(\d)\1{9}",  # 1 and ten times one digit: 18888888888
    r"\+861[3-9]\d(\d)\1{7}",  # a mobile prefix and eight times one digit: 13800000000
    r"\+\d*(0123456789|123456789|987654321)\d*",  # nine digits in a row, up or down
)
MAX_PATTERN_LENGTH = 200


# Priorities order survivor choice on merge: crm_id > wechat_unionid > phone > email >
# wechat_openid > device_id. A CRM id or a WeChat union id names one person; a device does not.
DEFAULT_TYPES = (
    IdentityTypeSpec("crm_id", "CRM id", "exact", is_pii=False, unique=True, priority=100),
    IdentityTypeSpec("wechat_unionid", "WeChat union id", "exact", unique=True, priority=90),
    IdentityTypeSpec(
        "phone", "Phone", "phone", priority=80, placeholder_patterns=PHONE_PLACEHOLDERS
    ),
    IdentityTypeSpec(
        "email",
        "Email",
        "email",
        priority=70,
        blocked_values=("test@test.com", "noemail@example.com"),
        placeholder_patterns=EMAIL_PLACEHOLDERS,
    ),
    IdentityTypeSpec("wechat_openid", "WeChat open id", "exact", priority=60),
    IdentityTypeSpec(
        "device_id",
        "Device id",
        "lowercase",
        is_pii=False,
        max_per_customer=20,
        priority=10,
        blocked_values=("00000000-0000-0000-0000-000000000000",),
        shared_limit=1,  # a kiosk's device links nobody to a second email or phone
    ),
)


def _spec(row: IdentityType) -> IdentityTypeSpec:
    return IdentityTypeSpec(
        key=row.key,
        label=row.label,
        normalizer=row.normalizer,
        is_pii=row.is_pii,
        unique=row.unique,
        max_per_customer=row.max_per_customer,
        priority=row.priority,
        blocked_values=tuple(row.blocked_values or ()),
        placeholder_patterns=tuple(row.placeholder_patterns or ()),
        shared_limit=row.shared_limit,
    )


async def load_identity_types(session: AsyncSession) -> dict[str, IdentityTypeSpec]:
    rows = (
        await session.scalars(select(IdentityType).order_by(IdentityType.priority.desc()))
    ).all()
    return {row.key: _spec(row) for row in rows}


async def list_identity_types(db: Database) -> list[IdentityTypeSpec]:
    async with db.read() as session:
        return list((await load_identity_types(session)).values())


async def ensure_default_identity_types(session: AsyncSession) -> None:
    existing = set((await session.scalars(select(IdentityType.key))).all())
    for spec in DEFAULT_TYPES:
        if spec.key not in existing:
            session.add(_row(spec))


def _row(spec: IdentityTypeSpec) -> IdentityType:
    return IdentityType(
        key=spec.key,
        label=spec.label,
        normalizer=spec.normalizer,
        is_pii=spec.is_pii,
        unique=spec.unique,
        max_per_customer=spec.max_per_customer,
        priority=spec.priority,
        blocked_values=list(spec.blocked_values),
        placeholder_patterns=list(spec.placeholder_patterns),
        shared_limit=spec.shared_limit,
    )


def _checked_pattern(pattern: str, index: int) -> str:
    where: list[str | int] = ["input", "placeholderPatterns", index]
    if not pattern or len(pattern) > MAX_PATTERN_LENGTH:
        raise InvalidInput(f"a pattern is 1 to {MAX_PATTERN_LENGTH} characters", field=where)
    try:
        re.compile(pattern)
    except re.error as error:
        raise InvalidInput(f"not a regular expression: {error}", field=where) from None
    return pattern


def validate_spec(spec: IdentityTypeSpec, region: str) -> IdentityTypeSpec:
    """Check an admin's definition; blocked values are stored normalized, as they are compared."""
    if not KEY_PATTERN.fullmatch(spec.key):
        raise InvalidInput("a key is a lowercase slug: a-z, 0-9 and _", field=["input", "key"])
    text_for(IdentityType.key, spec.key, ["input", "key"], what="a key")
    label = text_for(IdentityType.label, spec.label.strip(), ["input", "label"], what="a label")
    if not label:
        raise InvalidInput("a label is required", field=["input", "label"])
    if spec.normalizer not in NORMALIZERS:
        raise InvalidInput(
            f"normalizer must be one of {', '.join(NORMALIZERS)}", field=["input", "normalizer"]
        )
    if spec.max_per_customer is not None and spec.max_per_customer < 1:
        raise InvalidInput("maxPerCustomer must be at least 1", field=["input", "maxPerCustomer"])
    if spec.shared_limit is not None and spec.shared_limit < 1:
        raise InvalidInput("sharedLimit must be at least 1", field=["input", "sharedLimit"])
    patterns = tuple(_checked_pattern(p, i) for i, p in enumerate(spec.placeholder_patterns))
    normalized = []
    for index, value in enumerate(spec.blocked_values):
        try:
            normalized.append(normalize(spec.normalizer, value, region=region))
        except InvalidInput as error:
            if error.code == "BLOCKED_IDENTITY":
                continue  # already refused for every type
            raise error.at("input", "blockedValues", index) from None
    return IdentityTypeSpec(
        key=spec.key,
        label=label,
        normalizer=spec.normalizer,
        is_pii=spec.is_pii,
        unique=spec.unique,
        max_per_customer=spec.max_per_customer,
        priority=spec.priority,
        blocked_values=tuple(dict.fromkeys(normalized)),
        placeholder_patterns=tuple(dict.fromkeys(patterns)),
        shared_limit=spec.shared_limit,
    )


async def define_identity_type(
    db: Database, spec: IdentityTypeSpec, region: str
) -> IdentityTypeSpec:
    """Create a type, or redefine one; the normalizer of a type in use cannot change, since the
    values already stored were normalized by the old one."""
    spec = validate_spec(spec, region)

    async def work(session: AsyncSession) -> IdentityTypeSpec:
        row = await session.get(IdentityType, spec.key, with_for_update=True)
        if row is None:
            session.add(_row(spec))
            return spec
        if row.normalizer != spec.normalizer:
            raise InvalidInput(
                "the normalizer of an existing identity type cannot change",
                field=["input", "normalizer"],
            )
        for name in ("label", "is_pii", "unique", "max_per_customer", "priority", "shared_limit"):
            setattr(row, name, getattr(spec, name))
        row.blocked_values = list(spec.blocked_values)
        row.placeholder_patterns = list(spec.placeholder_patterns)
        return spec

    return await db.transact(work)
