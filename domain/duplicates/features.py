"""What duplicate detection compares of a profile, derived from its core fields.

Names and cities are compared by their pinyin, so 张伟 in one channel and "Zhang Wei" in another
are the same name and 上海 is Shanghai; an email by its local part (the same person on two
providers); a phone by its national digits. Pure functions: no database, no Splink.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from pypinyin import lazy_pinyin

# The columns of a compared profile, in the order the feature table and Splink hold them.
FEATURE_COLUMNS = (
    "first_name",
    "last_name",
    "email_local",
    "phone_digits",
    "birthday",
    "city",
    "first_initial",
    "phone_prefix",
)

_NOT_LETTERS = re.compile(r"[^a-z]")
_NOT_DIGITS = re.compile(r"\D")
# Country codes written before the national number of the phones we hold (E.164).
_COUNTRY_CODES = ("86", "852", "853", "886", "1")


@dataclass(frozen=True, slots=True)
class ProfileFields:
    """The core fields of one live profile, as stored."""

    customer_id: uuid.UUID
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    birthday: date | None
    city: str | None


@lru_cache(maxsize=1 << 16)  # names and cities repeat: a million profiles hold few thousand
def romanized(text: str | None) -> str | None:
    """Lowercase ASCII letters of `text`, Chinese characters spelled in toneless pinyin and
    accents dropped: "张伟", "Zhang Wei" and "zhāng wěi" all give "zhangwei"."""
    if not text:
        return None
    spelled = "".join(lazy_pinyin(text))
    plain = unicodedata.normalize("NFKD", spelled).encode("ascii", "ignore").decode()
    return _NOT_LETTERS.sub("", plain.lower()) or None


def email_local(email: str | None) -> str | None:
    """The part before the @, without a +tag and without dots (the same mailbox at most
    providers)."""
    if not email or "@" not in email:
        return None
    local = email.rsplit("@", 1)[0].lower().split("+", 1)[0].replace(".", "")
    return local or None


def phone_digits(phone: str | None) -> str | None:
    """The national number's digits: "+8613800138000" gives "13800138000"."""
    if not phone:
        return None
    digits = _NOT_DIGITS.sub("", phone)
    if phone.startswith("+"):
        for code in _COUNTRY_CODES:
            if digits.startswith(code) and len(digits) - len(code) >= 7:
                digits = digits[len(code) :]
                break
    return digits or None


def features(profile: ProfileFields) -> dict[str, str | None]:
    """The compared values of a profile, plus the two blocking keys derived from them."""
    first = romanized(profile.first_name)
    phone = phone_digits(profile.phone)
    return {
        "first_name": first,
        "last_name": romanized(profile.last_name),
        "email_local": email_local(profile.email),
        "phone_digits": phone,
        "birthday": profile.birthday.isoformat() if profile.birthday else None,
        "city": romanized(profile.city),
        "first_initial": first[0] if first else None,
        "phone_prefix": phone[:7] if phone and len(phone) >= 7 else None,
    }
