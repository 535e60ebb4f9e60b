"""domain.access.privacy's policy alone: which conditions read PII, through any chain of segments and
RULE tags, and what a partner sees of a condition."""

from __future__ import annotations

from domain.access.privacy import PiiPolicy, _with_conditions_reading_pii

EMAIL = {"attribute": {"field": "email", "op": "IN", "values": ["a@x.com", "b@x.com"]}}


def test_a_chain_of_segments_and_rule_tags_reads_pii_when_its_end_does() -> None:
    segments = {
        "base": EMAIL,
        "via_base": {"not": {"segment": {"key": "via_base_tag_user"}}},
        "via_base_tag_user": {"tag": {"key": "rule_on_base"}},
        "plain": {"attribute": {"field": "country", "op": "EQ", "value": "CN"}},
    }
    rule_tags = {"rule_on_base": {"segment": {"key": "base"}}, "manual": None}
    policy = _with_conditions_reading_pii(PiiPolicy(), segments, rule_tags)
    assert policy.segments == {"base", "via_base", "via_base_tag_user"}
    assert policy.rule_tags == {"rule_on_base"}
    assert list(policy.reads_pii({"or": [{"tag": {"key": "manual"}}, segments["via_base"]]})) == [
        ("or", 1, "not", "segment", "key")
    ]


def test_masking_nulls_only_the_literals_of_leaves_that_compare_pii() -> None:
    policy = PiiPolicy(attributes=frozenset({"salary"}), pii_tags=frozenset({"note"}))
    condition = {
        "and": [
            EMAIL,
            {"attribute": {"field": "attributes.salary", "op": "GT", "value": 1}},
            {"attribute": {"field": "attributes.shoe", "op": "EQ", "value": 42}},
            {"tag": {"key": "note", "op": "EQ", "value": "secret"}},
            {"tag": {"key": "note"}},
        ]
    }
    assert policy.masked_condition(condition) == {
        "and": [
            {"attribute": {"field": "email", "op": "IN", "values": None}},
            {"attribute": {"field": "attributes.salary", "op": "GT", "value": None}},
            {"attribute": {"field": "attributes.shoe", "op": "EQ", "value": 42}},
            {"tag": {"key": "note", "op": "EQ", "value": None}},
            {"tag": {"key": "note"}},
        ]
    }
    assert condition["and"][0] == EMAIL  # the stored condition is left as it was


def test_partners_change_events_lose_free_text_and_values_of_tags_not_known_safe() -> None:
    policy = PiiPolicy(plain_tags=frozenset({"tier"}))
    assert policy.masked_change("tag.assigned", {"tag": "tier", "value": "gold"})["value"] == "gold"
    assert policy.masked_change("tag.assigned", {"tag": "new", "value": "x"})["value"] is None
    assert policy.masked_change("stage.changed", {"to": "b", "reason": "r"}) == {
        "to": "b",
        "reason": None,
    }
