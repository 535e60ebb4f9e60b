"""Validation of an event condition's `channel` and `where`: each refusal carries a stable code
and the path of the bad entry; a valid one becomes typed property tests."""

from __future__ import annotations

from typing import Any

import pytest

from domain.conditions.language import Catalog, parse
from domain.conditions.tree import EventLeaf, Kind, Op, PropertyTest, Test
from domain.errors import InvalidInput

CATALOG = Catalog(tags={}, stages=frozenset(), identity_types=frozenset(), segments={})


def event(**rest: Any) -> dict[str, Any]:
    return {"event": {"type": "view_item", **rest}}


def where(*tests: dict[str, Any]) -> dict[str, Any]:
    return event(where=list(tests))


@pytest.mark.parametrize(
    ("condition", "code", "path"),
    [
        (event(channel=""), "INVALID_VALUE", ("event", "channel")),
        (event(channel=3), "INVALID_VALUE", ("event", "channel")),
        (event(where={"property": "a"}), "INVALID_VALUE", ("event", "where")),
        (event(where=[{"property": "a", "op": "EQ", "value": 1}] * 21), "INVALID_VALUE",
         ("event", "where")),
        (where({"property": "a", "op": "EQ", "value": 1, "x": 1}), "INVALID_VALUE",
         ("event", "where", 0)),
        (where("a"), "INVALID_VALUE", ("event", "where", 0)),
        (where({"property": "", "op": "EQ", "value": 1}), "UNKNOWN_FIELD",
         ("event", "where", 0, "property")),
        (where({"property": 'a"b', "op": "EQ", "value": 1}), "UNKNOWN_FIELD",
         ("event", "where", 0, "property")),
        (where({"op": "EQ", "value": 1}), "UNKNOWN_FIELD", ("event", "where", 0, "property")),
        (where({"property": "a", "op": "LIKE", "value": 1}), "INVALID_OPERATOR",
         ("event", "where", 0, "op")),
        (where({"property": "a", "op": "EQ"}), "INVALID_VALUE", ("event", "where", 0, "value")),
        (where({"property": "a", "op": "EQ", "value": 1},
               {"property": "b", "op": "GT", "value": True}), "INVALID_OPERATOR",
         ("event", "where", 1, "value")),
        (where({"property": "a", "op": "CONTAINS", "value": 3}), "INVALID_OPERATOR",
         ("event", "where", 0, "value")),
        (where({"property": "a", "op": "IN", "value": [1, "1"]}), "INVALID_VALUE",
         ("event", "where", 0, "value")),
        (where({"property": "a", "op": "IN", "value": []}), "INVALID_VALUE",
         ("event", "where", 0, "value")),
        (where({"property": "a", "op": "EQ", "value": {"x": 1}}), "INVALID_VALUE",
         ("event", "where", 0, "value")),
        (where({"property": "a", "op": "EQ", "value": 1e308}), "INVALID_VALUE",
         ("event", "where", 0, "value")),
        (where({"property": "a", "op": "BETWEEN", "value": [1]}), "INVALID_VALUE",
         ("event", "where", 0, "value")),
        ({"and": [event(), where({"property": "a", "op": "EQ"})]}, "INVALID_VALUE",
         ("and", 1, "event", "where", 0, "value")),
    ],
)  # fmt: skip
def test_a_bad_channel_or_property_condition_is_refused_with_its_path(
    condition: dict[str, Any], code: str, path: tuple[str | int, ...]
) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(condition, CATALOG)
    assert (caught.value.code, caught.value.field) == (code, tuple(map(str, path)))


def test_property_comparisons_are_typed_by_their_values() -> None:
    leaf = parse(
        event(
            channel="app",
            withinDays=30,
            count=3,
            where=[
                {"property": "category", "op": "EQ", "value": "sports"},
                {"property": "price", "op": "IN", "value": [5, 12.5]},
                {"property": "gift", "op": "EXISTS"},
                {"property": "member", "op": "NEQ", "value": True},
            ],
        ),
        CATALOG,
    )
    assert leaf == EventLeaf(
        "view_item",
        30,
        Test(Op.GTE, (3,)),
        "app",
        (
            PropertyTest("category", Kind.TEXT, Test(Op.EQ, ("sports",))),
            PropertyTest("price", Kind.NUMBER, Test(Op.IN, (5.0, 12.5))),
            PropertyTest("gift", None, Test(Op.EXISTS, ())),
            PropertyTest("member", Kind.BOOLEAN, Test(Op.NEQ, (True,))),
        ),
    )


def test_an_event_condition_without_channel_or_where_counts_every_event_of_its_type() -> None:
    assert parse(event(), CATALOG) == EventLeaf("view_item", None, Test(Op.GTE, (1,)))
