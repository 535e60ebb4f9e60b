"""Traits as integrations send them, and field survivorship: pure rules, no database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from domain.errors import InvalidInput
from domain.identity.traits import (
    COLUMNS,
    EPOCH,
    MAX_ATTRIBUTES_BYTES,
    ProfileValues,
    Rule,
    Survivorship,
    Traits,
    parse_traits,
)

T1 = datetime(2025, 1, 1, tzinfo=UTC)
T2 = datetime(2025, 6, 1, tzinfo=UTC)


def values(**fields: object) -> ProfileValues:
    return ProfileValues(dict(fields), {}, {})


# --- parsing -----------------------------------------------------------------------------


def test_core_fields_map_to_columns_and_everything_else_is_a_custom_attribute() -> None:
    parsed = parse_traits(
        {
            "displayName": " Ann Li ",
            "firstName": "Ann",
            "lastName": "Li",
            "gender": "f",
            "birthday": " 1990-04-23 ",
            "locale": "zh-CN",
            "country": "CN",
            "region": "SH",
            "city": "上海",
            "tier": "gold",
            "attributes": {"vip": True, "tier": "platinum"},
            "score": 3,
        }
    )
    assert parsed.fields == {
        "display_name": "Ann Li",
        "first_name": "Ann",
        "last_name": "Li",
        "gender": "f",
        "birthday": date(1990, 4, 23),
        "locale": "zh-CN",
        "country": "CN",
        "region": "SH",
        "city": "上海",
    }
    assert parsed.attributes == {"tier": "platinum", "vip": True, "score": 3}
    assert tuple(parsed.fields) == COLUMNS


def test_no_traits_is_empty_traits() -> None:
    assert parse_traits(None) == Traits({}, {})
    assert parse_traits({}) == Traits({}, {})


def test_an_empty_or_null_field_parses_as_given() -> None:
    assert parse_traits({"city": None, "birthday": "", "firstName": "  "}).fields == {
        "city": None,
        "birthday": "",
        "first_name": "",
    }


@pytest.mark.parametrize(
    ("raw", "path", "message"),
    [
        ([1], ("traits",), "traits must be a JSON object"),
        ({"email": "a@x.com"}, ("traits", "email"), "send email as an identity, not a trait"),
        ({"phone": "1"}, ("traits", "phone"), "send phone as an identity, not a trait"),
        ({"attributes": [1]}, ("traits", "attributes"), "attributes must be a JSON object"),
        ({"city": 3}, ("traits", "city"), "city must be a string"),
        ({"birthday": "23/04/1990"}, ("traits", "birthday"), "birthday must be a date like"),
        ({"city": "x" * 101}, ("traits", "city"), "city is at most 100 characters"),
        ({"displayName": "x" * 201}, ("traits", "displayName"), "displayName is at most 200"),
        ({"city": "a\x00b"}, ("traits", "city"), "text may not hold U+0000"),
        ({"bad\x00key": 1}, ("traits", "bad\x00key"), "U+0000"),
        ({"attributes": {"k": "a\x00"}}, ("traits", "attributes", "k"), "U+0000"),
        ({"note": "a\x00"}, ("traits", "note"), "U+0000"),
    ],
)
def test_a_bad_trait_is_refused_with_its_path(raw: object, path: tuple, message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_traits(raw)
    assert refused.value.field == path
    assert message in refused.value.message
    assert refused.value.message.startswith(message) or "U+0000" in message
    assert refused.value.code == "INVALID_INPUT"


def test_a_field_at_its_limit_is_accepted() -> None:
    assert parse_traits({"city": "x" * 100}).fields == {"city": "x" * 100}


def test_the_path_prefix_is_the_callers() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_traits({"city": 1}, ("patch",))
    assert refused.value.field == ("patch", "city")


def test_custom_traits_are_limited_in_size() -> None:
    at_limit = {"blob": "x" * (MAX_ATTRIBUTES_BYTES - 12)}  # repr: {'blob': '...'}
    assert len(repr(at_limit)) == MAX_ATTRIBUTES_BYTES
    assert parse_traits(at_limit).attributes == at_limit
    with pytest.raises(InvalidInput) as refused:
        parse_traits({"blob": "x" * (MAX_ATTRIBUTES_BYTES - 11)})
    assert refused.value.field == ("traits",)
    assert "16 KB" in refused.value.message


# --- survivorship: one value offered -------------------------------------------------------


def test_a_value_fills_an_empty_field_and_records_when_and_from_where() -> None:
    profile = values()
    assert profile.offer("city", "上海", T1, "web") is True
    assert profile.fields == {"city": "上海"}
    assert profile.times == {"city": T1.isoformat()}
    assert profile.sources == {"city": "web"}


@pytest.mark.parametrize("empty", [None, "", [], {}])
def test_an_empty_value_never_replaces_anything(empty: object) -> None:
    profile = values(city="上海")
    assert profile.offer("city", empty, T2, "web") is False
    assert profile.fields == {"city": "上海"} and profile.times == {}


@pytest.mark.parametrize("empty", [None, "", [], {}])
def test_any_value_replaces_an_empty_one_whatever_the_rule(empty: object) -> None:
    for rule in Rule:
        profile = values(city=empty)
        profile.times["city"] = T2.isoformat()
        policy = Survivorship({"city": rule})
        assert profile.offer("city", "上海", T1, "web", policy=policy, merging=True) is True
        assert profile.fields["city"] == "上海"


def test_most_recent_takes_a_later_value_and_keeps_against_an_earlier_or_equal_one() -> None:
    profile = values(city="上海")
    profile.times["city"] = T1.isoformat()
    assert profile.offer("city", "北京", T1, "web") is False
    assert profile.offer("city", "北京", T1 - timedelta(seconds=1), "web") is False
    assert profile.fields["city"] == "上海"
    assert profile.offer("city", "北京", T1 + timedelta(seconds=1), "web") is True
    assert profile.fields["city"] == "北京"


def test_the_same_value_again_moves_its_time_and_reports_no_change() -> None:
    profile = values(city="上海")
    assert profile.offer("city", "上海", T2, "app") is False
    assert profile.times["city"] == T2.isoformat() and profile.sources["city"] == "app"


def test_times_are_compared_in_utc() -> None:
    profile = values()
    profile.offer("city", "上海", datetime(2025, 1, 1, 8, tzinfo=timezone(timedelta(hours=8))))
    assert profile.times["city"] == "2025-01-01T00:00:00+00:00"
    # 00:30 UTC is later than 08:00+08:00 (00:00 UTC), though "07:30" < "08:00" as text.
    later = datetime(2025, 1, 1, 7, 30, tzinfo=timezone(timedelta(hours=7)))
    assert profile.offer("city", "北京", later) is True


def test_a_value_with_no_recorded_time_counts_as_set_at_the_epoch() -> None:
    profile = values(city="上海")
    assert profile.offer("city", "北京", EPOCH, "web") is False
    assert profile.offer("city", "北京", EPOCH + timedelta(seconds=1), "web") is True


def test_a_custom_attribute_is_offered_by_its_attributes_name() -> None:
    profile = values(city="上海")
    assert profile.offer("attributes.tier", "gold", T1, "crm") is True
    assert profile.attributes == {"tier": "gold"} and profile.fields == {"city": "上海"}
    assert profile.offer("attributes.tier", "silver", T2, "web") is True
    assert profile.offer("attributes.tier", "bronze", T1, "web") is False
    assert profile.attributes == {"tier": "silver"}
    assert profile.times == {"attributes.tier": T2.isoformat()}
    assert profile.sources == {"attributes.tier": "web"}


def test_apply_offers_fields_and_attributes_and_says_whether_anything_changed() -> None:
    profile = values(city="上海")
    profile.times["city"] = T2.isoformat()
    traits = Traits({"first_name": "Ann", "city": "北京"}, {"tier": "gold"})
    assert profile.apply(traits, T1, "crm", Survivorship()) is True
    assert profile.fields == {"city": "上海", "first_name": "Ann", "display_name": "Ann"}
    assert profile.attributes == {"tier": "gold"}
    assert profile.sources == {"first_name": "crm", "attributes.tier": "crm"}
    assert profile.apply(Traits({"city": "北京"}, {}), T1, "crm", Survivorship()) is False
    assert profile.apply(Traits({}, {"tier": "gold"}), T2, "crm", Survivorship()) is False
    both = Traits({}, {"new": 1, "tier": "gold"})  # a change first, then none
    assert profile.apply(both, T2, "crm", Survivorship()) is True
    later = T2 + timedelta(seconds=1)
    assert profile.apply(Traits({}, {"tier": "jade"}), later, "crm", Survivorship()) is True


# --- survivorship: the rules ----------------------------------------------------------------


def test_the_default_rule_is_most_recent_for_fields_and_attributes() -> None:
    policy = Survivorship()
    assert policy.default is Rule.MOST_RECENT
    assert policy.rule("city") is Rule.MOST_RECENT
    assert policy.rule("attributes.tier") is Rule.MOST_RECENT


def test_an_attribute_has_its_own_rule_else_the_wildcard_else_the_default() -> None:
    policy = Survivorship(
        {
            "attributes.tier": Rule.FIRST_NON_NULL,
            "attributes.*": Rule.SURVIVOR,
            "city": Rule.SURVIVOR,
        }
    )
    assert policy.rule("attributes.tier") is Rule.FIRST_NON_NULL
    assert policy.rule("attributes.vip") is Rule.SURVIVOR
    assert policy.rule("first_name") is Rule.MOST_RECENT
    assert policy.rule("city") is Rule.SURVIVOR
    # The wildcard is for attributes only.
    assert Survivorship({"attributes.*": Rule.SURVIVOR}).rule("city") is Rule.MOST_RECENT


def test_unknown_and_missing_sources_rank_zero() -> None:
    policy = Survivorship(trust={"crm": 2, "web": -1})
    assert (policy.rank("crm"), policy.rank("web"), policy.rank("app"), policy.rank(None)) == (
        2,
        -1,
        0,
        0,
    )


EARLY, LATE = T1.isoformat(), T2.isoformat()


@pytest.mark.parametrize(
    ("rule", "current", "offered", "merging", "keeps"),
    [
        (Rule.MOST_RECENT, (EARLY, "crm"), (LATE, "web"), False, False),
        (Rule.MOST_RECENT, (LATE, "web"), (EARLY, "crm"), True, True),
        (Rule.MOST_RECENT, (EARLY, "web"), (EARLY, "crm"), True, True),
        (Rule.FIRST_NON_NULL, (EARLY, "web"), (LATE, "crm"), False, True),
        (Rule.FIRST_NON_NULL, (LATE, "web"), (EARLY, "crm"), True, False),
        (Rule.FIRST_NON_NULL, (EARLY, "web"), (EARLY, "crm"), True, True),
        (Rule.SURVIVOR, (EARLY, "web"), (LATE, "web"), True, True),
        (Rule.SURVIVOR, (EARLY, "web"), (LATE, "web"), False, False),
        (Rule.SURVIVOR, (LATE, "web"), (EARLY, "web"), False, True),
        (Rule.MOST_TRUSTED, (EARLY, "crm"), (LATE, "web"), False, True),
        (Rule.MOST_TRUSTED, (LATE, "web"), (EARLY, "crm"), True, False),
        (Rule.MOST_TRUSTED, (EARLY, "web"), (LATE, "web"), False, False),
        (Rule.MOST_TRUSTED, (LATE, "web"), (EARLY, "web"), False, True),
        (Rule.MOST_TRUSTED, (EARLY, "web"), (EARLY, "app"), False, True),
        (Rule.MOST_TRUSTED, (LATE, None), (EARLY, "web"), False, False),
    ],
)
def test_which_value_a_rule_keeps(rule, current, offered, merging, keeps) -> None:  # type: ignore[no-untyped-def]
    policy = Survivorship({"city": rule}, {"crm": 2, "web": 1})
    assert policy.keeps("city", current, offered, merging=merging) is keeps


# --- survivorship on merge ------------------------------------------------------------------


def survivor_and_loser() -> tuple[ProfileValues, ProfileValues]:
    survivor = ProfileValues(
        {"first_name": "Ann", "city": "上海", "last_name": None},
        {"tier": "gold", "vip": True},
        {"first_name": EARLY, "city": EARLY, "attributes.tier": EARLY},
        {"first_name": "crm", "city": "crm", "attributes.tier": "crm"},
    )
    loser = ProfileValues(
        {"first_name": "Bobby", "city": "北京", "last_name": "Wu", "gender": ""},
        {"tier": "silver", "note": "hi", "empty": None},
        {
            "first_name": LATE,
            "city": LATE,
            "last_name": LATE,
            "attributes.tier": LATE,
            "attributes.note": LATE,
        },
        {"first_name": "web", "city": "web", "last_name": "web", "attributes.tier": "web"},
    )
    return survivor, loser


def test_a_merge_by_default_takes_the_later_values_with_their_times_and_sources() -> None:
    survivor, loser = survivor_and_loser()
    survivor.absorb(loser, Survivorship())
    assert survivor.fields == {
        "first_name": "Bobby",
        "city": "北京",
        "last_name": "Wu",
        "display_name": "Bobby Wu",  # derived from the names that survived
    }
    assert survivor.attributes == {"tier": "silver", "vip": True, "note": "hi"}
    assert survivor.times["last_name"] == LATE and survivor.sources["last_name"] == "web"
    assert survivor.sources["attributes.tier"] == "web"
    assert survivor.sources["attributes.note"] is None  # set with no source recorded


def test_survivor_rule_on_merge_keeps_the_survivors_values_and_fills_its_gaps() -> None:
    survivor, loser = survivor_and_loser()
    survivor.absorb(loser, Survivorship(default=Rule.SURVIVOR))
    assert survivor.fields == {
        "first_name": "Ann",
        "city": "上海",
        "last_name": "Wu",
        "display_name": "Ann Wu",
    }
    assert survivor.attributes == {"tier": "gold", "vip": True, "note": "hi"}


def test_an_older_custom_attribute_does_not_overwrite_a_newer_one_on_merge() -> None:
    survivor, loser = survivor_and_loser()
    loser.times["attributes.tier"] = "2024-01-01T00:00:00+00:00"
    survivor.absorb(loser, Survivorship())
    assert survivor.attributes["tier"] == "gold"
    assert survivor.times["attributes.tier"] == EARLY


def test_values_without_a_recorded_time_lose_to_timed_ones_and_fill_gaps_on_merge() -> None:
    survivor = ProfileValues({"city": "上海"}, {"tier": "gold"}, {"city": EARLY}, {})
    loser = ProfileValues({"city": "北京", "region": "BJ"}, {"tier": "x", "vip": 1}, {}, {})
    survivor.absorb(loser, Survivorship())
    assert survivor.fields == {"city": "上海", "region": "BJ"}
    assert survivor.attributes == {"tier": "gold", "vip": 1}
    assert survivor.times["region"] == EPOCH.isoformat()
    assert survivor.times["attributes.vip"] == EPOCH.isoformat()


def test_an_untimed_survivor_value_loses_to_a_timed_one_on_merge() -> None:
    survivor = ProfileValues({"city": "上海"}, {"tier": "gold"}, {}, {})
    loser = ProfileValues(
        {"city": "北京"}, {"tier": "silver"}, {"city": EARLY, "attributes.tier": EARLY}, {}
    )
    survivor.absorb(loser, Survivorship())
    assert (survivor.fields["city"], survivor.attributes["tier"]) == ("北京", "silver")


def test_most_trusted_on_merge_keeps_the_crms_older_values() -> None:
    survivor, loser = survivor_and_loser()
    policy = Survivorship(
        {"first_name": Rule.MOST_TRUSTED, "attributes.*": Rule.MOST_TRUSTED}, {"crm": 2, "web": 1}
    )
    loser.absorb(survivor, policy)
    assert loser.fields["first_name"] == "Ann"
    assert loser.attributes["tier"] == "gold"
    assert loser.fields["city"] == "北京"  # no rule: the later value


def test_apply_follows_the_policy_for_fields_and_attributes_and_reports_a_change() -> None:
    profile = ProfileValues(
        {"city": "上海"}, {"tier": "gold"}, {"city": EARLY, "attributes.tier": EARLY}, {}
    )
    first_wins = Survivorship({"city": Rule.FIRST_NON_NULL, "attributes.tier": Rule.FIRST_NON_NULL})
    assert profile.apply(Traits({"city": "北京"}, {"tier": "x"}), T2, "web", first_wins) is False
    assert (profile.fields["city"], profile.attributes["tier"]) == ("上海", "gold")
    assert (
        profile.apply(Traits({"region": "SH", "city": "北京"}, {}), T2, "web", first_wins) is True
    )
    assert profile.apply(Traits({"gender": "f"}, {}), T2, "web", first_wins) is True


def test_offer_outside_a_merge_lets_the_later_value_win_under_survivor() -> None:
    profile = values(city="上海")
    profile.times["city"] = EARLY
    assert profile.offer("city", "北京", T2, "web", policy=Survivorship({"city": Rule.SURVIVOR}))
    assert profile.fields["city"] == "北京"


def test_offer_weighs_the_recorded_source_of_the_current_value() -> None:
    profile = ProfileValues({"city": "上海"}, {}, {"city": EARLY}, {"city": "crm"})
    trusted = Survivorship({"city": Rule.MOST_TRUSTED}, {"crm": 2, "web": 1})
    assert profile.offer("city", "北京", T2, "web", policy=trusted) is False
    assert profile.fields["city"] == "上海"
