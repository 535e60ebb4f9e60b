"""A display name nobody set follows the first and last names."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.identity.traits import (
    DERIVED,
    ProfileValues,
    Survivorship,
    Traits,
    derive_display_name,
    display_name_of,
)

AT = datetime(2026, 1, 1, tzinfo=UTC)
RULES = Survivorship()


def test_chinese_names_are_family_name_first_without_a_space() -> None:
    assert display_name_of("小明", "王") == "王小明"
    assert display_name_of(None, "王") == "王"


def test_other_names_are_first_name_then_last_name() -> None:
    assert display_name_of("Ann", "Lee") == "Ann Lee"
    assert display_name_of("Ann", None) == "Ann"
    assert display_name_of(None, None) is None


def test_a_derived_name_follows_the_names_until_someone_sets_one() -> None:
    values = ProfileValues({}, {}, {})
    assert values.apply(Traits({"first_name": "Ann", "last_name": "Lee"}), AT, "api", RULES)
    assert values.fields["display_name"] == "Ann Lee"
    values.apply(Traits({"last_name": "Wong"}), AT.replace(day=2), "api", RULES)
    assert values.fields["display_name"] == "Ann Wong"
    values.apply(Traits({"display_name": "Annie"}), AT.replace(day=3), "api", RULES)
    values.apply(Traits({"first_name": "Anne"}), AT.replace(day=4), "api", RULES)
    assert values.fields["display_name"] == "Annie"


def test_a_display_name_stored_without_a_time_is_left_alone() -> None:
    values = ProfileValues({"display_name": "Legacy", "first_name": "Ann"}, {}, {})
    values.apply(Traits({"last_name": "Lee"}), AT, "api", RULES)
    assert values.fields["display_name"] == "Legacy"


def test_a_merge_derives_the_name_from_the_surviving_names() -> None:
    survivor = ProfileValues({}, {}, {})
    survivor.apply(Traits({"first_name": "小明"}), AT, "api", RULES)
    loser = ProfileValues({}, {}, {})
    loser.apply(Traits({"last_name": "王"}), AT, "api", RULES)
    survivor.absorb(loser, RULES)
    assert survivor.fields["display_name"] == "王小明"


def test_a_derived_name_goes_when_the_names_go_and_a_set_one_stays() -> None:
    derived = {"first_name": None, "last_name": None, "display_name": "Ann Lee"}
    times = {"display_name": DERIVED, "first_name": AT.isoformat()}
    derive_display_name(derived, times)
    assert derived["display_name"] is None
    assert times == {"first_name": AT.isoformat()}
    chosen = {"first_name": None, "last_name": None, "display_name": "Annie"}
    times = {"display_name": AT.isoformat()}
    derive_display_name(chosen, times)
    assert chosen["display_name"] == "Annie" and times == {"display_name": AT.isoformat()}
