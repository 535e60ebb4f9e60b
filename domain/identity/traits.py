"""Profile traits: validating what integrations send, and field survivorship.

Core profile fields (displayName, city, ...) map to columns; every other key is a custom trait
kept in `attributes`. When each field was set is kept in `field_times`, and by which source in
`field_sources`, per column and per `attributes.<key>`.

Survivorship, on identify and on merge alike: a value beats no value, and of two values the
field's rule decides (admins keep the rules as data, domain.identity.survivorship):
- MOST_RECENT (the default): the value set later wins;
- MOST_TRUSTED: the value from the more trusted source wins; equal trust, the later one;
- FIRST_NON_NULL: the value set first stays;
- SURVIVOR: on a merge the surviving profile's value stays; on identify, the later one wins.
A custom attribute follows its own rule (`attributes.<key>`), else that of `attributes.*`.

A display name nobody set follows the first and last names (`derive_display_name`): its time
in `field_times` is the epoch, so any displayName sent later beats it, and it is derived again
whenever the names change.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from domain.errors import InvalidInput
from domain.values import check_json, check_text, text_for
from store.models import Customer

# Trait key -> column of `customers`. birthday is a date, the rest strings no longer than
# their columns hold.
PROFILE_FIELDS: dict[str, str] = {
    "displayName": "display_name",
    "firstName": "first_name",
    "lastName": "last_name",
    "gender": "gender",
    "birthday": "birthday",
    "locale": "locale",
    "country": "country",
    "region": "region",
    "city": "city",
}
COLUMNS = tuple(PROFILE_FIELDS.values())
IDENTITY_TRAITS = {"email", "phone"}
MAX_ATTRIBUTES_BYTES = 16_384
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # when a value with no recorded time was set
DERIVED = EPOCH.isoformat()  # the time of a derived display name: older than any value sent
# Han characters (CJK unified ideographs and extension A): a Chinese name is written family
# name first, without a space.
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
ALL_ATTRIBUTES = "attributes.*"


class Rule(StrEnum):
    MOST_RECENT = "MOST_RECENT"
    MOST_TRUSTED = "MOST_TRUSTED"
    FIRST_NON_NULL = "FIRST_NON_NULL"
    SURVIVOR = "SURVIVOR"


@dataclass(frozen=True, slots=True)
class Survivorship:
    """Rules keyed by the stored name (column, or `attributes.<key>`), and source ranks."""

    rules: Mapping[str, Rule] = field(default_factory=dict)
    trust: Mapping[str, int] = field(default_factory=dict)
    default: Rule = Rule.MOST_RECENT

    def rule(self, name: str) -> Rule:
        found = self.rules.get(name)
        if found is None and name.startswith("attributes."):
            found = self.rules.get(ALL_ATTRIBUTES)
        return found or self.default

    def rank(self, source: str | None) -> int:
        return self.trust.get(source, 0) if source is not None else 0

    def keeps(
        self,
        name: str,
        current: tuple[str, str | None],
        offered: tuple[str, str | None],
        *,
        merging: bool,
    ) -> bool:
        """Whether the current value of `name` stays against the offered one; each is given
        as (ISO time it was set, source)."""
        rule = self.rule(name)
        if rule is Rule.FIRST_NON_NULL:
            return current[0] <= offered[0]
        if rule is Rule.SURVIVOR and merging:
            return True
        if rule is Rule.MOST_TRUSTED:
            mine, theirs = self.rank(current[1]), self.rank(offered[1])
            if mine != theirs:
                return mine > theirs
        return current[0] >= offered[0]


@dataclass(frozen=True, slots=True)
class Traits:
    fields: dict[str, Any] = field(default_factory=dict)  # column -> value
    attributes: dict[str, Any] = field(default_factory=dict)


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def display_name_of(first: str | None, last: str | None) -> str | None:
    """How a person with these names is shown: 王 + 小明 -> "王小明" for Chinese names,
    "Ann" + "Lee" -> "Ann Lee" otherwise; None without either name."""
    first, last = first or "", last or ""
    if HAN.search(first + last):
        return (last + first) or None
    return " ".join(part for part in (first, last) if part) or None


def derive_display_name(fields: dict[str, Any], times: dict[str, str]) -> None:
    """Fill `display_name` from the first and last names when it is empty or was derived
    before (its time is DERIVED: any display name someone sends is newer and wins)."""
    if not _empty(fields.get("display_name")) and times.get("display_name") != DERIVED:
        return
    derived = display_name_of(fields.get("first_name"), fields.get("last_name"))
    if derived is None:
        if times.get("display_name") == DERIVED:
            fields["display_name"] = None
            del times["display_name"]
        return
    fields["display_name"], times["display_name"] = derived, DERIVED


def parse_traits(raw: Any, path: tuple[str | int, ...] = ("traits",)) -> Traits:
    """Validate traits; a bad one refuses the whole input with the path of the bad key."""
    if raw is None:
        return Traits()
    if not isinstance(raw, dict):
        raise InvalidInput("traits must be a JSON object", field=path)
    fields: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    for key, value in raw.items():
        where = (*path, key)
        if key in IDENTITY_TRAITS:
            raise InvalidInput(f"send {key} as an identity, not a trait", field=where)
        if key == "attributes":
            if not isinstance(value, dict):
                raise InvalidInput("attributes must be a JSON object", field=where)
            attributes.update(check_json(value, where))
        elif key in PROFILE_FIELDS:
            column = PROFILE_FIELDS[key]
            fields[column] = _field_value(key, value, column, where)
        else:
            check_text(key, where)
            attributes[key] = check_json(value, where)
    if len(repr(attributes)) > MAX_ATTRIBUTES_BYTES:
        raise InvalidInput("custom traits are limited to 16 KB", field=path)
    return Traits(fields, attributes)


def _field_value(key: str, value: Any, column: str, where: tuple[str | int, ...]) -> Any:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{key} must be a string", field=where)
    value = value.strip()
    if key == "birthday" and value:
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise InvalidInput("birthday must be a date like 1990-04-23", field=where) from None
    return text_for(getattr(Customer, column), value, where, code="INVALID_INPUT", what=key)


@dataclass(slots=True)
class ProfileValues:
    """The survivorship-relevant state of one profile: values, when and by whom each was set."""

    fields: dict[str, Any]
    attributes: dict[str, Any]
    times: dict[str, str]
    sources: dict[str, str | None] = field(default_factory=dict)

    def offer(
        self,
        name: str,
        value: Any,
        at: datetime,
        source: str | None = None,
        *,
        policy: Survivorship = Survivorship(),
        merging: bool = False,
    ) -> bool:
        """Take `value` for `name` if it survives against the current one; True if it did."""
        if _empty(value):
            return False
        current = (
            self.attributes.get(name[11:])
            if name.startswith("attributes.")
            else self.fields.get(name)
        )
        stamp = at.astimezone(UTC).isoformat()
        mine = (self.times.get(name, EPOCH.isoformat()), self.sources.get(name))
        if not _empty(current) and policy.keeps(name, mine, (stamp, source), merging=merging):
            return False
        if name.startswith("attributes."):
            self.attributes[name[11:]] = value
        else:
            self.fields[name] = value
        self.times[name] = stamp
        self.sources[name] = source
        return current != value

    def apply(self, traits: Traits, at: datetime, source: str | None, policy: Survivorship) -> bool:
        changed = False
        for column, value in traits.fields.items():
            changed |= self.offer(column, value, at, source, policy=policy)
        for key, value in traits.attributes.items():
            changed |= self.offer(f"attributes.{key}", value, at, source, policy=policy)
        before = self.fields.get("display_name")
        derive_display_name(self.fields, self.times)
        return changed or self.fields.get("display_name") != before

    def absorb(self, other: ProfileValues, policy: Survivorship) -> None:
        """Survivorship on merge: every value of `other` is offered as it was set (when, and
        by which source), against the survivor's."""
        names = [*COLUMNS, *(f"attributes.{key}" for key in other.attributes)]
        for name in names:
            value = (
                other.attributes.get(name[11:])
                if name.startswith("attributes.")
                else other.fields.get(name)
            )
            if not _empty(value):
                self.offer(
                    name,
                    value,
                    _time(other.times.get(name)),
                    other.sources.get(name),
                    policy=policy,
                    merging=True,
                )
        derive_display_name(self.fields, self.times)


def _time(stamp: str | None) -> datetime:
    return datetime.fromisoformat(stamp) if stamp else EPOCH
