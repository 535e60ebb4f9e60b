"""Normalizers: turn an identifier as a channel sends it into the one value we store.

Each normalizer either returns the normalized value or raises a DomainError: INVALID_IDENTITY
for a value that cannot be what its type says, BLOCKED_IDENTITY for a placeholder or a value
an admin blocked. Placeholders are data: a few values no type accepts (PLACEHOLDERS), and per
type the blocked values and placeholder patterns admins keep (domain.identity.types). Input
first goes through NFKC, so full-width digits and letters (common in Chinese input methods)
count as their ASCII forms.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection, Iterable

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from domain.errors import InvalidInput
from domain.values import text_for, unstorable_text
from store.models import Identity

NORMALIZERS = ("email", "phone", "lowercase", "exact")
# What integrations leak when they have no value: never an identity of anyone.
PLACEHOLDERS = frozenset(
    {"", "null", "none", "nil", "undefined", "anonymous", "unknown", "n/a", "-1"}
)
_ZEROS_AND_DASHES = re.compile(r"^[0\-]+$")


def invalid(message: str) -> InvalidInput:
    return InvalidInput(message, code="INVALID_IDENTITY")


def blocked(message: str) -> InvalidInput:
    return InvalidInput(message, code="BLOCKED_IDENTITY")


# Plain ASCII addresses, the vast majority, are checked here; anything else (quoted or
# international local parts, IDNA domains, odd hyphens, special-use TLDs) goes to
# email-validator. test_email_fast_path_agrees_with_email_validator pins the equivalence.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"(?![A-Za-z0-9-]*--)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"  # no "--" at all
_PLAIN_EMAIL = re.compile(rf"^{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+(?P<tld>[A-Za-z]{{2,63}})$")
_SPECIAL_USE_TLDS = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})


def _plain_email(value: str) -> str | None:
    match = _PLAIN_EMAIL.match(value)
    if not match or match["tld"].lower() in _SPECIAL_USE_TLDS:
        return None
    local, _, domain = value.rpartition("@")
    if len(local) > 64 or len(value) > 254 or len(domain) > 253:
        return None
    return value.lower()


def normalize_email(value: str, _region: str) -> str:
    plain = _plain_email(value)
    if plain is not None:
        return plain
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as error:
        raise invalid(f"not an email address: {error}") from error
    return result.normalized.lower()


def normalize_phone(value: str, region: str) -> str:
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as error:
        raise invalid(f"not a phone number: {error}") from error
    national = str(number.national_number)
    if len(set(national)) == 1:
        raise blocked("a phone number made of one repeated digit is a placeholder")
    if not phonenumbers.is_valid_number(number):
        raise invalid("not a possible phone number for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_lowercase(value: str, _region: str) -> str:
    return value.lower()


def normalize_exact(value: str, _region: str) -> str:
    return value


_BY_NAME: dict[str, Callable[[str, str], str]] = {
    "email": normalize_email,
    "phone": normalize_phone,
    "lowercase": normalize_lowercase,
    "exact": normalize_exact,
}


def normalize(
    normalizer: str,
    raw: str,
    *,
    region: str,
    blocked_values: Collection[str] = (),
    placeholders: Iterable[str] = (),
) -> str:
    """The stored form of `raw`, or a DomainError saying why there is none."""
    value = unicodedata.normalize("NFKC", raw).strip()
    if value.lower() in PLACEHOLDERS or _ZEROS_AND_DASHES.match(value):
        raise blocked(f"{raw!r} is a placeholder, not an identity")
    if unstorable_text(value):
        raise invalid("an identity may not hold U+0000 or a lone surrogate")
    # Before the normalizer too: a phone or email parser is never given 100,000 characters.
    text_for(Identity.value, value, (), code="INVALID_IDENTITY", what="an identity")
    normalized = _BY_NAME[normalizer](value, region)
    # Lowercasing can make text longer: "İ" is 2 characters.
    text_for(Identity.value, normalized, (), code="INVALID_IDENTITY", what="a normalized identity")
    if normalized in blocked_values:
        raise blocked(f"{normalized!r} is blocked for this identity type")
    if any(re.fullmatch(pattern, normalized, re.IGNORECASE) for pattern in placeholders):
        raise blocked(f"{normalized!r} is a placeholder for this identity type")
    return normalized
