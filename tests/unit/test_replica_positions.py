"""Consistency tokens are WAL positions as PostgreSQL writes them; replicas are PostgreSQL's."""

from __future__ import annotations

import pytest

from store.db import Database
from store.replicas import parse_position


def test_positions_parse_as_postgresql_orders_them() -> None:
    assert parse_position("0/0") == 0
    assert parse_position("16/B374D848") == (0x16 << 32) | 0xB374D848
    assert parse_position("1/0") > parse_position("0/FFFFFFFF")  # type: ignore[operator]
    for bad in (None, "", "16", "/1", "1/", "x/1", "123456789/0", "1/2/3"):
        assert parse_position(bad) is None, bad


def test_replicas_are_refused_on_sqlite() -> None:
    with pytest.raises(ValueError, match="PostgreSQL"):
        Database.from_url("sqlite:///:memory:", replica_urls=["postgresql://replica/db"])
