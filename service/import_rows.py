"""The file formats of `c360 import`: reading CSV or JSONL one record at a time, and turning a
record into the item the domain takes (the same shapes as the GraphQL inputs).

A JSONL line is one JSON object with the keys of the GraphQL input:
- customers: `IdentifyInput` — `identities` ([{type, value}]), `traits` (object), `source`,
  `occurredAt`;
- events: `EventInput` — `customer` ({type, value}), `type`, `channel`, `occurredAt`,
  `properties` (object), `idempotencyKey`;
- orders: `OrderInput` — `customer`, `externalId`, `amount`, `currency`, `status`, `placedAt`,
  `source`.

A CSV file has a header line; a column is a key's path with dots (`customer.type`,
`customer.value`), `properties` holds JSON text, and customers give one column per identity
type (`identities.email`, `identities.phone`, ...) and one per trait (`traits.firstName`, ...);
empty cells are absent values.

An event without `idempotencyKey` gets one derived from its line number and its content
(`import:<sha256>`), so that a second run of the same file finds its events already stored;
give the column when the file may be edited between runs.

Nothing here touches the database: a record that cannot be read or parsed becomes an
InvalidInput with the path of the bad key, which the importer writes to the reject file.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, BinaryIO

from domain.activity.ingest import EventItem, OrderItem
from domain.errors import DomainError, InvalidInput
from domain.identity.linking import IdentifyInput

FORMATS = ("csv", "jsonl")
KINDS = ("customers", "events", "orders")

Item = IdentifyInput | EventItem | OrderItem


@dataclass(frozen=True, slots=True)
class Record:
    """One record of the file: where it starts, and its keys (nested as in JSON)."""

    line: int
    data: dict[str, Any] | DomainError


class ByteCounter:
    """The bytes read so far, for a progress bar that knows the file's size."""

    def __init__(self) -> None:
        self.read = 0

    def lines(self, stream: BinaryIO) -> Iterator[str]:
        """The file's lines as text: UTF-8, with a byte-order mark allowed before the first."""
        encoding = "utf-8-sig"
        for raw in stream:
            self.read += len(raw)
            yield raw.decode(encoding)
            encoding = "utf-8"


def format_of(path: Path, chosen: str | None) -> str:
    """The format named, or the one the extension names (.csv, .jsonl, .ndjson)."""
    if chosen is not None:
        if chosen not in FORMATS:
            raise InvalidInput(f"--format is one of {', '.join(FORMATS)}", field=["format"])
        return chosen
    suffix = path.suffix.lower().lstrip(".")
    if suffix in ("jsonl", "ndjson"):
        return "jsonl"
    if suffix == "csv":
        return "csv"
    raise InvalidInput(
        f"cannot tell the format of {path.name}: name it .csv or .jsonl, or pass --format",
        field=["format"],
    )


def read_jsonl(lines: Iterable[str]) -> Iterator[Record]:
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            yield Record(number, InvalidInput(f"not JSON: {error.msg}", code="MALFORMED_ROW"))
            continue
        if not isinstance(data, dict):
            yield Record(number, InvalidInput("a line is one JSON object", code="MALFORMED_ROW"))
            continue
        yield Record(number, data)


def read_csv(lines: Iterable[str]) -> Iterator[Record]:
    """Records keyed by the header's dotted paths, nested; a record starts on the line after
    the previous one ended (quoted cells may span lines)."""
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        return
    paths = [name.strip().split(".") for name in header]  # once, not once a record
    start = reader.line_num + 1
    for cells in reader:
        line, start = start, reader.line_num + 1
        if not "".join(cells).strip():
            continue
        if len(cells) != len(header):
            message = f"{len(cells)} cells under a header of {len(header)} columns"
            yield Record(line, InvalidInput(message, code="MALFORMED_ROW"))
            continue
        data: dict[str, Any] = {}
        for path, cell in zip(paths, cells, strict=True):
            if cell == "":
                continue
            *parents, last = path
            target = data
            for parent in parents:
                target = target.setdefault(parent, {})
            target[last] = cell
        yield Record(line, data)


def _text(data: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise InvalidInput(f"{key} is required", field=[key])
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{key} must be a string", field=[key])
    return value


def _moment(data: dict[str, Any], key: str) -> datetime | None:
    value = _text(data, key)
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{key} is an ISO-8601 date and time", field=[key]) from None


def _json_object(data: dict[str, Any], key: str, csv_text: bool) -> Any:
    value = data.get(key)
    if csv_text and isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise InvalidInput(f"{key} must be JSON text", field=[key]) from None
    return value


def _identity(data: dict[str, Any], key: str) -> tuple[str, str]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise InvalidInput(f"{key} is an identity: {{type, value}}", field=[key])
    return (
        _text(value, "type", required=True) or "",
        _text(value, "value", required=True) or "",
    )


def _customer(data: dict[str, Any], csv_text: bool) -> IdentifyInput:
    raw = data.get("identities", {} if csv_text else None)
    if csv_text and isinstance(raw, dict):  # identities.<type> columns
        identities = [(str(kind), str(value)) for kind, value in raw.items()]
    elif isinstance(raw, list):
        identities = []
        for index, entry in enumerate(raw):
            try:
                identities.append(_identity({"identity": entry}, "identity"))
            except DomainError as error:
                raise error.at("identities", index) from None
    else:
        raise InvalidInput("identities is a list of {type, value}", field=["identities"])
    if not identities:
        raise InvalidInput("a customer needs at least one identity", field=["identities"])
    return IdentifyInput(
        identities=identities,
        traits=data.get("traits"),
        source=_text(data, "source"),
        occurred_at=_moment(data, "occurredAt"),
    )


def derived_event_key(line: int, data: dict[str, Any]) -> str:
    """A stable idempotency key for an event that brings none: its line and its content."""
    content = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
    return "import:" + hashlib.sha256(f"{line}\n{content}".encode()).hexdigest()[:40]


def _event(data: dict[str, Any], csv_text: bool, line: int) -> EventItem:
    return EventItem(
        identity=_identity(data, "customer"),
        type=_text(data, "type", required=True) or "",
        channel=_text(data, "channel"),
        occurred_at=_moment(data, "occurredAt"),
        properties=_json_object(data, "properties", csv_text),
        idempotency_key=_text(data, "idempotencyKey") or derived_event_key(line, data),
    )


def _order(data: dict[str, Any]) -> OrderItem:
    raw = data.get("amount")
    if raw is None:
        raise InvalidInput("amount is required", field=["amount"])
    try:
        amount = Decimal(str(raw)) if isinstance(raw, str | int | float) else None
    except InvalidOperation:
        amount = None
    if amount is None or isinstance(raw, bool):
        raise InvalidInput("amount must be a decimal number", field=["amount"])
    return OrderItem(
        identity=_identity(data, "customer"),
        external_id=_text(data, "externalId", required=True) or "",
        amount=amount,
        currency=_text(data, "currency", required=True) or "",
        status=_text(data, "status") or "completed",
        placed_at=_moment(data, "placedAt"),
        source=_text(data, "source"),
    )


def item_parser(kind: str, file_format: str) -> Callable[[Record], Item]:
    """record -> the domain's item for `kind`; raises InvalidInput for a record it refuses."""
    csv_text = file_format == "csv"

    def parse(record: Record) -> Item:
        if isinstance(record.data, DomainError):
            raise record.data
        if kind == "customers":
            return _customer(record.data, csv_text)
        if kind == "events":
            return _event(record.data, csv_text, record.line)
        return _order(record.data)

    return parse
