"""How identifiers as channels send them map to stored values, or to a refusal."""

from __future__ import annotations

import os

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import InvalidInput
from domain.identity.normalize import _plain_email, normalize

ACCEPTED = [
    ("email", "alice@example.com", "alice@example.com"),
    ("email", "  Alice@Example.COM ", "alice@example.com"),
    ("email", "ALICE.Smith+promo@Example.co.uk", "alice.smith+promo@example.co.uk"),
    ("email", "ａｌｉｃｅ＠ｅｘａｍｐｌｅ．ｃｏｍ", "alice@example.com"),
    ("email", "\talice@example.com\n", "alice@example.com"),
    ("phone", "13800138000", "+8613800138000"),
    ("phone", "+86 138 0013 8000", "+8613800138000"),
    ("phone", "+86-138-0013-8000", "+8613800138000"),
    ("phone", "008613800138000", "+8613800138000"),
    ("phone", "0086 138 0013 8000", "+8613800138000"),
    ("phone", "１３８００１３８０００", "+8613800138000"),
    ("phone", "＋８６ １３８ ００１３ ８０００", "+8613800138000"),
    ("phone", " (138) 0013-8000 ", "+8613800138000"),
    ("phone", "+1 (415) 555-2671", "+14155552671"),
    ("phone", "+44 20 7946 0958", "+442079460958"),
    ("lowercase", " ABCDEF-1234 ", "abcdef-1234"),
    ("exact", " oAbC_dEf ", "oAbC_dEf"),
]

REFUSED = [
    ("email", "not-an-email", "INVALID_IDENTITY"),
    ("email", "alice@", "INVALID_IDENTITY"),
    ("email", "alice@@example.com", "INVALID_IDENTITY"),
    ("email", "a@b", "INVALID_IDENTITY"),
    ("email", "null", "BLOCKED_IDENTITY"),
    ("email", "", "BLOCKED_IDENTITY"),
    ("email", "test@test.com", "BLOCKED_IDENTITY"),
    ("phone", "12345", "INVALID_IDENTITY"),
    ("phone", "1380013800", "INVALID_IDENTITY"),
    ("phone", "call me", "INVALID_IDENTITY"),
    ("phone", "11111111111", "BLOCKED_IDENTITY"),
    ("phone", "+86 138 0013", "INVALID_IDENTITY"),
    ("phone", "000-0000", "BLOCKED_IDENTITY"),
    ("exact", "undefined", "BLOCKED_IDENTITY"),
    ("exact", "Anonymous", "BLOCKED_IDENTITY"),
    ("exact", "-1", "BLOCKED_IDENTITY"),
    ("lowercase", "00000000-0000-0000-0000-000000000000", "BLOCKED_IDENTITY"),
]


@pytest.mark.parametrize(("normalizer", "raw", "expected"), ACCEPTED)
def test_normalize_maps_spellings_to_one_value(normalizer: str, raw: str, expected: str) -> None:
    assert normalize(normalizer, raw, region="CN") == expected


@pytest.mark.parametrize(("normalizer", "raw", "code"), REFUSED)
def test_normalize_refuses_with_a_code(normalizer: str, raw: str, code: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        normalize(normalizer, raw, region="CN", blocked_values={"test@test.com"})
    assert refused.value.code == code


def test_phone_default_region_decides_national_numbers() -> None:
    assert normalize("phone", "(415) 555-2671", region="US") == "+14155552671"


_local = st.text(alphabet="abcXYZ09.-_+!'", min_size=1, max_size=70)
_label = st.text(alphabet="abxn09-", min_size=1, max_size=12)
_tld = st.sampled_from(["com", "cn", "Test", "local", "io", "x", "COM", "onion", "c0m"])


@settings(max_examples=int(os.environ.get("C360_PROPERTY_EXAMPLES", "3000")), deadline=None)
@given(local=_local, labels=st.lists(_label, min_size=1, max_size=3), tld=_tld)
def test_email_fast_path_agrees_with_email_validator(
    local: str, labels: list[str], tld: str
) -> None:
    """Whatever the fast path accepts, email-validator accepts with the same normalized value."""
    address = f"{local}@{'.'.join([*labels, tld])}"
    fast = _plain_email(address)
    if fast is None:
        return
    try:
        slow = validate_email(address, check_deliverability=False).normalized.lower()
    except EmailNotValidError as error:
        raise AssertionError(f"fast path accepted {address!r}: {error}") from None
    assert fast == slow


# --- the email fast path's edges, and what it leaves to email-validator -----------------------

LABEL_63 = "d" * 63


def test_the_fast_path_takes_a_local_part_of_64_and_leaves_65_to_the_validator() -> None:
    assert _plain_email(f"{'a' * 64}@x.com") == f"{'a' * 64}@x.com"
    longer = f"{'A' * 65}@x.com"
    assert _plain_email(longer) is None
    slow = validate_email(longer, check_deliverability=False).normalized.lower()
    assert normalize("email", longer, region="CN") == slow


def test_the_fast_path_takes_an_address_of_254_and_leaves_255_to_the_validator() -> None:
    domain = f"{LABEL_63}.{LABEL_63}.{LABEL_63}.cn"
    longest = f"{'a' * (253 - len(domain))}@{domain}"
    assert len(longest) == 254 and _plain_email(longest) == longest
    too_long = f"a{longest}"
    assert len(too_long) == 255 and _plain_email(too_long) is None
    with pytest.raises(InvalidInput) as refused:
        normalize("email", too_long, region="CN")
    assert refused.value.code == "INVALID_IDENTITY"


def test_the_fast_path_refuses_a_domain_over_253() -> None:
    domain = f"{LABEL_63}.{LABEL_63}.{LABEL_63}.{'e' * 58}.com"
    assert len(domain) == 254
    assert _plain_email(f"a@{domain}") is None


def test_the_fast_path_lowercases_and_leaves_special_use_domains_to_the_validator() -> None:
    assert _plain_email("Ann.Li@Shop.CN") == "ann.li@shop.cn"
    assert _plain_email("ann@shop.test") is None
    assert _plain_email("ann@shop.Local") is None
    assert _plain_email("ann@shop-.cn") is None
    assert _plain_email("ann@x--y.cn") is None
    assert _plain_email("ann@shop.c0m") is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("用户@例子.中国", "用户@例子.中国"),
        ("JOSÉ@Example.com", "josé@example.com"),
        ("ann@BÜCHER.de", "ann@bücher.de"),
    ],
)
def test_international_addresses_go_through_email_validator(raw: str, expected: str) -> None:
    assert _plain_email(raw) is None
    assert normalize("email", raw, region="CN") == expected


def test_an_address_email_validator_refuses_says_why() -> None:
    with pytest.raises(InvalidInput) as refused:
        normalize("email", "ann@shop.test", region="CN")
    assert refused.value.code == "INVALID_IDENTITY"
    assert refused.value.message.startswith("not an email address: ")


# --- refusals: their codes and messages ----------------------------------------------------------


def test_a_value_of_512_characters_is_accepted_and_513_is_not() -> None:
    assert normalize("exact", "x" * 512, region="CN") == "x" * 512
    with pytest.raises(InvalidInput) as refused:
        normalize("exact", "x" * 513, region="CN")
    assert refused.value.code == "INVALID_IDENTITY"
    assert refused.value.message == "an identity is at most 512 characters as stored (513 given)"


def test_a_value_that_grows_past_512_when_lowercased_is_refused() -> None:
    assert len(normalize("lowercase", "İ" * 256, region="CN")) == 512
    with pytest.raises(InvalidInput) as refused:
        normalize("lowercase", "İ" * 257, region="CN")
    assert refused.value.code == "INVALID_IDENTITY"
    assert (
        refused.value.message
        == "a normalized identity is at most 512 characters as stored (514 given)"
    )


def test_unstorable_text_is_invalid() -> None:
    with pytest.raises(InvalidInput) as refused:
        normalize("exact", "ab\x00c", region="CN")
    assert refused.value.code == "INVALID_IDENTITY"
    assert refused.value.message == "an identity may not hold U+0000 or a lone surrogate"


@pytest.mark.parametrize(
    "raw", ["", " ", "NULL", "None", "nil", "n/a", "Unknown", "0", "00-00", "-"]
)
def test_universal_placeholders_are_blocked_for_every_type(raw: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        normalize("exact", raw, region="CN")
    assert refused.value.code == "BLOCKED_IDENTITY"
    assert refused.value.message == f"{raw!r} is a placeholder, not an identity"


def test_zeros_and_dashes_only_in_the_whole_value() -> None:
    assert normalize("exact", "0-1", region="CN") == "0-1"
    assert normalize("exact", "a-0", region="CN") == "a-0"


def test_a_blocked_value_is_compared_once_normalized() -> None:
    with pytest.raises(InvalidInput) as refused:
        normalize("email", " Test@Test.com ", region="CN", blocked_values={"test@test.com"})
    assert refused.value.code == "BLOCKED_IDENTITY"
    assert refused.value.message == "'test@test.com' is blocked for this identity type"


def test_placeholder_patterns_match_the_whole_normalized_value_in_any_case() -> None:
    patterns = ["null@.*", r"card-0+"]
    for raw in ("NULL@null.com", "Null@Shop.cn"):
        with pytest.raises(InvalidInput) as refused:
            normalize("email", raw, region="CN", placeholders=patterns)
        assert refused.value.code == "BLOCKED_IDENTITY"
        assert refused.value.message.endswith("is a placeholder for this identity type")
    assert normalize("email", "nullah@shop.cn", region="CN", placeholders=patterns)
    assert normalize("exact", "my-card-000", region="CN", placeholders=patterns) == "my-card-000"
    with pytest.raises(InvalidInput):
        normalize("exact", "CARD-000", region="CN", placeholders=patterns)


def test_a_phone_of_one_repeated_digit_is_blocked_and_an_impossible_one_invalid() -> None:
    with pytest.raises(InvalidInput) as refused:
        normalize("phone", "+86 3333 3333 333", region="CN")
    assert refused.value.code == "BLOCKED_IDENTITY"
    assert refused.value.message == "a phone number made of one repeated digit is a placeholder"
    with pytest.raises(InvalidInput) as refused:
        normalize("phone", "+86 100 0000", region="CN")
    assert refused.value.code == "INVALID_IDENTITY"
    assert refused.value.message == "not a possible phone number for its country"


def test_an_unparseable_phone_says_why() -> None:
    with pytest.raises(InvalidInput) as refused:
        normalize("phone", "call me", region="CN")
    assert refused.value.message.startswith("not a phone number: ")


def test_codes_of_the_two_refusal_kinds() -> None:
    from domain.identity.normalize import blocked, invalid

    assert (invalid("x").code, invalid("x").message) == ("INVALID_IDENTITY", "x")
    assert (blocked("y").code, blocked("y").message) == ("BLOCKED_IDENTITY", "y")
