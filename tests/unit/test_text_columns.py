"""domain.values.text_for: text is checked against the column it is stored in, in characters
as stored, with the column's declared length as the only source of the limit."""

from __future__ import annotations

import pytest

from domain.errors import InvalidInput
from domain.values import text_for
from store.models import AuditEntry, Base, MergeRecord, Segment


def test_the_limit_is_the_columns_length_in_characters() -> None:
    assert text_for(Segment.name, "İ" * 200, ["name"]) == "İ" * 200
    with pytest.raises(InvalidInput) as refused:
        text_for(Segment.name, ("İ" * 101).lower(), ["input", "name"])  # 202 characters
    assert (refused.value.code, refused.value.field) == ("VALUE_TOO_LONG", ("input", "name"))


def test_trailing_spaces_count_although_postgresql_would_drop_them() -> None:
    with pytest.raises(InvalidInput):  # varchar(200) would store 200, SQLite all 201
        text_for(Segment.name, "x" * 200 + " ", ["name"])


def test_an_older_check_keeps_its_code() -> None:
    with pytest.raises(InvalidInput) as refused:
        text_for(Segment.name, "x" * 201, ["name"], code="INVALID_INPUT")
    assert refused.value.code == "INVALID_INPUT"


def test_an_unbounded_column_takes_any_storable_text() -> None:
    assert text_for(MergeRecord.reason, "r" * 100_000, ["reason"]) == "r" * 100_000
    with pytest.raises(InvalidInput) as refused:
        text_for(MergeRecord.reason, "nul \x00", ["reason"])
    assert refused.value.code == "INVALID_INPUT"


def test_every_column_that_keeps_an_actor_is_as_long_as_the_audit_logs() -> None:
    """domain.access.keys.create_api_key checks a key's actor against audit_log.actor."""
    names = {"actor", "created_by", "declared_by"}
    columns = [
        column
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if column.name in names
    ]
    assert len(columns) >= 7
    assert {column.type.length for column in columns} == {AuditEntry.actor.type.length}
