"""Inputs and payloads of editing a profile: updateCustomer."""

from __future__ import annotations

from datetime import date

import strawberry
from strawberry.scalars import JSON

from api.schema.common import UserError
from api.schema.customers import Customer


@strawberry.input
class CustomerPatch:
    display_name: str | None = strawberry.UNSET
    first_name: str | None = strawberry.UNSET
    last_name: str | None = strawberry.UNSET
    gender: str | None = strawberry.UNSET
    birthday: date | None = strawberry.UNSET
    locale: str | None = strawberry.UNSET
    country: str | None = strawberry.UNSET
    region: str | None = strawberry.UNSET
    city: str | None = strawberry.UNSET
    attributes: JSON | None = strawberry.field(
        default=strawberry.UNSET,
        description="Merged into the custom attributes; null removes a key.",
    )


@strawberry.type
class CustomerPayload:
    customer: Customer | None
    errors: list[UserError]
