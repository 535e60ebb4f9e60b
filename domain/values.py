"""The values both databases can hold and compare: one check per kind of value.

Every value a caller sends goes through one of these before it is stored or compared, so a
value PostgreSQL or SQLite would reject (or mangle, or fail to compare later) is refused with a
code and the path of the offending field, never met as a database error.

    text      no U+0000 and no lone surrogate (neither backend stores them as sent); text
              bound for a String(n) column (text_for) at most n characters as it is stored,
              after normalisation (NFKC and lowercasing can make text longer: 'İ' lowercases
              to two characters, 'ﬃ' is three once NFKC). PostgreSQL's varchar(n) counts
              characters, as len() does, and refuses more; SQLite stores anything: checked
              here, both give the same answer.
    number    finite, and at most MAX_NUMBER in magnitude: every integer in that range is exact
              in a double, so a stored number compares alike on both backends, and sums of them
              stay far from overflow; 0 or at least MIN_MAGNITUDE (no double underflow)
    moment    an instant between EARLIEST and LATEST once converted to UTC (a naive one is UTC)
    days      a count of days from 0 to MAX_DAYS (a window such as `withinDays`)
    JSON      every number in it a number as above, every string and key text as above

Nothing here touches a database (text_for reads a column's declared length from the model);
callers add the field path of what they check.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import QueryableAttribute

from domain.errors import InvalidInput

MAX_NUMBER = 10**15
MIN_MAGNITUDE = 1e-300  # closer to 0 and PostgreSQL's double precision reports an underflow
MAX_DAYS = 36_500  # a hundred years
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

Field = Sequence[str | int]


def unstorable_text(text: str) -> bool:
    """Whether `text` holds U+0000 or a lone surrogate (half of a UTF-16 pair)."""
    return _UNSTORABLE.search(text) is not None


def representable_number(value: object) -> bool:
    """A number (not a boolean) that is finite, within ±MAX_NUMBER, and 0 or at least
    MIN_MAGNITUDE away from it."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -MAX_NUMBER <= value <= MAX_NUMBER
    if isinstance(value, float) and math.isfinite(value):
        return value == 0 or MIN_MAGNITUDE <= abs(value) <= MAX_NUMBER
    if isinstance(value, Decimal) and value.is_finite():
        return value == 0 or Decimal(MIN_MAGNITUDE) <= abs(value) <= MAX_NUMBER
    return False


def check_text(value: str, field: Field, *, code: str = "INVALID_INPUT") -> str:
    if unstorable_text(value):
        raise InvalidInput("text may not hold U+0000 or a lone surrogate", field=field, code=code)
    return value


_lengths: dict[tuple[Any, str], int | None] = {}


def column_length(column: QueryableAttribute[Any]) -> int | None:
    """The characters a String(n) column holds (n), or None for an unbounded one (Text).
    Remembered per column: ingest asks it for every text of every item."""
    key = (column.class_, column.key)
    if key not in _lengths:
        _lengths[key] = getattr(column.type, "length", None)
    return _lengths[key]


def text_for(
    column: QueryableAttribute[Any],
    value: str,
    field: Field,
    *,
    code: str = "VALUE_TOO_LONG",
    what: str = "this text",
) -> str:
    """`value`, which is stored in `column` exactly as given (normalise it first), when the
    column can hold it; otherwise a refusal with `code` at `field`. `code` is VALUE_TOO_LONG
    but where a check of that value had another code before this one existed."""
    check_text(value, field)
    limit = column_length(column)
    if limit is not None and len(value) > limit:
        raise InvalidInput(
            f"{what} is at most {limit} characters as stored ({len(value)} given)",
            field=field,
            code=code,
        )
    return value


def check_number(value: Any, field: Field, *, code: str = "INVALID_INPUT") -> Any:
    if not representable_number(value):
        raise InvalidInput(
            f"a number is finite and at most {MAX_NUMBER:.0e} in magnitude", field=field, code=code
        )
    return value


def check_moment(value: datetime, field: Field, *, code: str = "INVALID_INPUT") -> datetime:
    """`value` in UTC, or a refusal when it falls outside EARLIEST..LATEST."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        moment = aware.astimezone(UTC)
    except (OverflowError, ValueError):
        moment = None  # before year 1 or after year 9999 once converted
    if moment is None or not EARLIEST <= moment <= LATEST:
        raise InvalidInput(
            f"a date-time is between {EARLIEST.year} and {LATEST.year} (UTC)",
            field=field,
            code=code,
        )
    return moment


def check_days(value: int, field: Field, *, code: str = "INVALID_INPUT") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DAYS:
        raise InvalidInput(
            f"a number of days is a whole number from 0 to {MAX_DAYS}", field=field, code=code
        )
    return value


def check_json(value: Any, field: Field, *, code: str = "INVALID_INPUT") -> Any:
    """`value` (a decoded JSON document) when every number and text in it can be stored."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, tuple(field))]
    while stack:  # no recursion: a deeply nested document is walked like a flat one
        item, path = stack.pop()
        if isinstance(item, str):
            check_text(item, path, code=code)
        elif isinstance(item, dict):
            for key, inner in item.items():
                check_text(str(key), path, code=code)
                stack.append((inner, (*path, str(key))))
        elif isinstance(item, list | tuple):
            stack.extend((inner, (*path, i)) for i, inner in enumerate(item))
        elif item is not None and not isinstance(item, bool):
            check_number(item, path, code=code)
    return value
