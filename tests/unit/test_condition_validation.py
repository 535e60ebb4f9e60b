"""Validation of conditions: every refusal carries a stable code and the path of the bad node.

Pure: the catalog (what a condition may name) is built in memory.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from domain.conditions.language import (
    MAX_DEPTH,
    MAX_LEAVES,
    Catalog,
    SegmentSpec,
    TagSpec,
    parse,
    referenced_segments,
)
from domain.conditions.tree import AllOf, MembershipLeaf, Negation, TagLeaf
from domain.errors import InvalidInput

VIP = {"tag": {"key": "vip"}}


CATALOG = Catalog(
    tags={
        "vip": TagSpec(uuid.uuid4(), "FLAG", None),
        "tier": TagSpec(uuid.uuid4(), "ENUM", ("gold", "silver")),
        "points": TagSpec(uuid.uuid4(), "NUMBER", None),
        "since": TagSpec(uuid.uuid4(), "DATE", None),
    },
    stages=frozenset({"awareness", "purchase"}),
    identity_types=frozenset({"email", "phone"}),
    segments={
        # b refers to c, c to a: saving a condition on `a` that refers to b closes a cycle.
        "b": SegmentSpec(uuid.uuid4(), {"segment": {"key": "c"}}, False),
        "c": SegmentSpec(uuid.uuid4(), {"not": {"segment": {"key": "a"}}}, True),
        "a": SegmentSpec(uuid.uuid4(), VIP, False),
        "vips": SegmentSpec(uuid.uuid4(), VIP, False),
        "stored": SegmentSpec(uuid.uuid4(), VIP, True),
        "broken": SegmentSpec(uuid.uuid4(), {"tag": {"key": "gone"}}, False),
    },
)


def refusal(condition: Any, owner: str | None = None) -> tuple[str, tuple[str, ...]]:
    with pytest.raises(InvalidInput) as caught:
        parse(condition, CATALOG, owner=owner)
    return caught.value.code, caught.value.field


def attr(field: str, op: str, **rest: Any) -> dict[str, Any]:
    return {"attribute": {"field": field, "op": op, **rest}}


@pytest.mark.parametrize(
    ("condition", "code", "path"),
    [
        (
            {"and": [VIP, attr("shoeSize", "EQ", value=42)]},
            "UNKNOWN_FIELD",
            ("and", "1", "attribute"),
        ),
        (attr("attributes.", "EXISTS"), "UNKNOWN_FIELD", ("attribute",)),
        ({"and": [VIP, {"tag": {"key": "gold"}}]}, "UNKNOWN_TAG", ("and", "1", "tag")),
        (
            {"or": [{"stage": {"in": ["purchase", "nirvana"]}}]},
            "UNKNOWN_STAGE",
            ("or", "0", "stage"),
        ),
        ({"not": {"identity": {"type": "fax"}}}, "UNKNOWN_IDENTITY_TYPE", ("not", "identity")),
        ({"segment": {"key": "nobody"}}, "UNKNOWN_SEGMENT", ("segment",)),
        ({"metric": {"name": "LOYALTY", "op": "GT", "value": 1}}, "UNKNOWN_FIELD", ("metric",)),
        (attr("birthday", "CONTAINS", value="1990"), "INVALID_OPERATOR", ("attribute",)),
        (attr("country", "LIKE", value="C%"), "INVALID_OPERATOR", ("attribute",)),
        (attr("attributes.vip", "GT", value=True), "INVALID_OPERATOR", ("attribute",)),
        ({"tag": {"key": "vip", "op": "EQ", "value": "yes"}}, "INVALID_OPERATOR", ("tag",)),
        ({"tag": {"key": "tier", "op": "IN", "value": "gold"}}, "INVALID_OPERATOR", ("tag",)),
        ({"event": {"type": "view", "op": "BETWEEN", "count": 1}}, "INVALID_OPERATOR", ("event",)),
        (
            {"metric": {"name": "RFM_SEGMENT", "op": "GT", "value": "Lost"}},
            "INVALID_OPERATOR",
            ("metric",),
        ),
        (attr("country", "EQ", value=5), "INVALID_VALUE", ("attribute",)),
        (attr("country", "EQ"), "INVALID_VALUE", ("attribute",)),
        (attr("birthday", "GT", value="yesterday"), "INVALID_VALUE", ("attribute",)),
        (attr("createdAt", "GT", value="soon"), "INVALID_VALUE", ("attribute",)),
        (attr("attributes.age", "IN", values=[31, "31"]), "INVALID_VALUE", ("attribute",)),
        (attr("attributes.age", "EQ", value={"years": 31}), "INVALID_VALUE", ("attribute",)),
        (attr("country", "IN", values=[]), "INVALID_VALUE", ("attribute",)),
        ({"tag": {"key": "tier", "value": "bronze"}}, "INVALID_VALUE", ("tag",)),
        ({"tag": {"key": "points", "op": "GT", "value": "many"}}, "INVALID_VALUE", ("tag",)),
        ({"tag": {"key": "since", "op": "GT", "value": "May"}}, "INVALID_VALUE", ("tag",)),
        ({"tag": {"key": "tier", "present": False, "value": "gold"}}, "INVALID_VALUE", ("tag",)),
        ({"stage": {"in": []}}, "INVALID_VALUE", ("stage",)),
        ({"stage": {"in": ["purchase"], "enteredWithinDays": -1}}, "INVALID_VALUE", ("stage",)),
        ({"event": {"type": "view", "count": -1}}, "INVALID_VALUE", ("event",)),
        ({"orders": {"measure": "COUNT", "op": "GT", "value": 1.5}}, "INVALID_VALUE", ("orders",)),
        ({"orders": {"measure": "MEDIAN", "op": "GT", "value": 1}}, "INVALID_VALUE", ("orders",)),
        (
            {"metric": {"name": "RFM_SEGMENT", "op": "EQ", "value": "Whales"}},
            "INVALID_VALUE",
            ("metric",),
        ),
        (
            {"metric": {"name": "RECENCY_DAYS", "op": "GT", "value": 1.5}},
            "INVALID_VALUE",
            ("metric",),
        ),
        ({"metric": {"name": "CLV", "op": "GT", "value": "a lot"}}, "INVALID_VALUE", ("metric",)),
        ({"and": [VIP], "or": [VIP]}, "INVALID_VALUE", ()),
        ({"xor": [VIP]}, "INVALID_VALUE", ("xor",)),
        ({"tag": {"key": "vip", "colour": "red"}}, "INVALID_VALUE", ("tag",)),
        ({"segment": {"key": "broken"}}, "UNKNOWN_TAG", ("segment",)),
    ],
)
def test_a_bad_node_is_refused_with_a_code_and_its_path(
    condition: Any, code: str, path: tuple[str, ...]
) -> None:
    assert refusal(condition) == (code, path)


def test_between_needs_exactly_two_values() -> None:
    for values in ([1], [1, 2, 3]):
        condition = {"and": [VIP, attr("attributes.age", "BETWEEN", values=values)]}
        assert refusal(condition) == ("INVALID_VALUE", ("and", "1", "attribute"))
    assert refusal({"metric": {"name": "CLV", "op": "BETWEEN", "value": 5}}) == (
        "INVALID_VALUE",
        ("metric",),
    )


def nested(depth: int) -> dict[str, Any]:
    condition: dict[str, Any] = VIP
    for _ in range(depth - 1):
        condition = {"not": condition}
    return condition


def test_nesting_deeper_than_twelve_levels_is_refused_at_the_thirteenth() -> None:
    parse(nested(MAX_DEPTH), CATALOG)
    assert refusal(nested(MAX_DEPTH + 1)) == ("CONDITION_TOO_DEEP", ("not",) * MAX_DEPTH)


def test_more_than_two_hundred_leaves_is_refused_for_the_whole_condition() -> None:
    parse({"or": [VIP] * MAX_LEAVES}, CATALOG)
    assert refusal({"and": [{"or": [VIP] * 100}, {"or": [VIP] * 101}]}) == (
        "CONDITION_TOO_LARGE",
        (),
    )


def test_a_segment_that_would_refer_back_to_itself_is_a_cycle() -> None:
    assert refusal({"and": [VIP, {"segment": {"key": "b"}}]}, owner="a") == (
        "SEGMENT_CYCLE",
        ("and", "1", "segment"),
    )
    assert refusal({"segment": {"key": "new"}}, owner="new") == ("SEGMENT_CYCLE", ("segment",))
    parse({"segment": {"key": "b"}}, CATALOG, owner="vips")  # no cycle: fine


def test_referenced_segments_are_inlined_or_read_from_stored_members() -> None:
    tree = parse(
        {"and": [{"segment": {"key": "vips"}}, {"segment": {"key": "stored", "member": False}}]},
        CATALOG,
    )
    assert isinstance(tree, AllOf)
    inlined, stored = tree.children
    assert isinstance(inlined, TagLeaf) and inlined.tag_id == CATALOG.tags["vip"].id
    assert stored == Negation(MembershipLeaf(CATALOG.segments["stored"].id))


def test_referenced_segments_are_found_in_any_stored_tree_even_a_malformed_one() -> None:
    stored = {"and": [{"not": {"segment": {"key": "x"}}}, {"or": [{"segment": {"key": "y"}}, 7]}]}
    assert referenced_segments(stored) == {"x", "y"}
    assert referenced_segments(None) == set()


def test_a_long_chain_of_segments_is_refused_as_too_deep() -> None:
    chain = {
        f"s{i}": SegmentSpec(uuid.uuid4(), {"segment": {"key": f"s{i + 1}"}}, False)
        for i in range(40)
    }
    chain["s40"] = SegmentSpec(uuid.uuid4(), VIP, False)
    catalog = Catalog(tags=CATALOG.tags, segments=chain)
    with pytest.raises(InvalidInput) as caught:
        parse({"segment": {"key": "s0"}}, catalog)
    assert (caught.value.code, caught.value.field) == ("CONDITION_TOO_DEEP", ("segment",))
    parse({"segment": {"key": "s30"}}, catalog)  # ten links: fine
