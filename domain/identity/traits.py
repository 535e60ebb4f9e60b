"""Profile traits: validating what integrations send, and field survivorship.

Core profile fields (displayName, city, ...) map to columns; every other key is a custom trait
kept in `attributes`. Survivorship, on identify and on merge alike: a non-empty value beats an
empty one, and of two non-empty values the one set later wins. When each field was set is kept
in `field_times`, per column and per `attributes.<key>`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
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


@dataclass(frozen=True, slots=True)
class Traits:
    fields: dict[str, Any] = field(default_factory=dict)  # column -> value
    attributes: dict[str, Any] = field(default_factory=dict)


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


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
    """The survivorship-relevant state of one profile: values and when each was set."""

    fields: dict[str, Any]
    attributes: dict[str, Any]
    times: dict[str, str]

    def offer(self, name: str, value: Any, at: datetime) -> bool:
        """Take `value` for `name` if it survives against the current one; True if it did."""
        if _empty(value):
            return False
        current = (
            self.attributes.get(name[11:])
            if name.startswith("attributes.")
            else self.fields.get(name)
        )
        stamp = at.astimezone(UTC).isoformat()
        if not _empty(current) and self.times.get(name, EPOCH.isoformat()) >= stamp:
            return False
        if name.startswith("attributes."):
            self.attributes[name[11:]] = value
        else:
            self.fields[name] = value
        self.times[name] = stamp
        return current != value

    def apply(self, traits: Traits, at: datetime) -> bool:
        changed = False
        for column, value in traits.fields.items():
            changed |= self.offer(column, value, at)
        for key, value in traits.attributes.items():
            changed |= self.offer(f"attributes.{key}", value, at)
        return changed

    def absorb(self, other: ProfileValues) -> None:
        """Survivorship on merge: every value of `other` is offered at the time it was set."""
        for column in COLUMNS:
            value = other.fields.get(column)
            if not _empty(value):
                self.offer(column, value, _time(other.times.get(column)))
        for key, value in other.attributes.items():
            name = f"attributes.{key}"
            self.offer(name, value, _time(other.times.get(name)))


def _time(stamp: str | None) -> datetime:
    return datetime.fromisoformat(stamp) if stamp else EPOCH
