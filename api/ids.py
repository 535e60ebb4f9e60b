"""Relay global ids: base64 of `Type:key`, opaque to clients."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence

from domain.errors import InvalidInput


def to_global_id(type_name: str, key: uuid.UUID | str | int) -> str:
    return base64.b64encode(f"{type_name}:{key}".encode()).decode()


def _path(field: str | Sequence[str]) -> list[str]:
    return [field] if isinstance(field, str) else list(field)


def from_global_id(global_id: str, field: str | Sequence[str] = "id") -> tuple[str, str]:
    try:
        type_name, _, key = base64.b64decode(global_id, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        type_name, key = "", ""
    if not type_name or not key:
        raise InvalidInput(
            f"{global_id!r} is not an id this API issued", field=_path(field), code="INVALID_ID"
        )
    return type_name, key


def parse_uuid_id(global_id: str, expected: str, field: str | Sequence[str] = "id") -> uuid.UUID:
    """The UUID inside a global id of type `expected`; `field` names the argument, or its path
    (an item of a list argument)."""
    type_name, key = from_global_id(global_id, field)
    if type_name != expected:
        raise InvalidInput(
            f"expected a {expected} id, got a {type_name} id", field=_path(field), code="INVALID_ID"
        )
    try:
        return uuid.UUID(key)
    except ValueError:
        raise InvalidInput(
            f"{global_id!r} is not an id this API issued", field=_path(field), code="INVALID_ID"
        ) from None
