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
