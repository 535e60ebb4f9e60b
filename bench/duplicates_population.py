"""A population with known truth for the duplicates benchmark (and its tests).

People with Chinese names, emails, phones, birthdays and cities. Some reach us twice with no
identifier in common: the second profile has the email on another provider or with a typo,
a phone with a digit off or none, the name in pinyin or without the surname, a birthday typo.
Namesakes come from the skew of real surnames and given names; the strangers of a shop's
kiosk share its city and nothing else. Each profile carries its person, so a suggested pair is
true exactly when both profiles carry the same one.
"""

from __future__ import annotations

import random
import string
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from pypinyin import lazy_pinyin

# The commonest surnames, roughly by frequency (王, 李 and 张 alone are a fifth of China).
SURNAMES = (
    "王王王王李李李李张张张张刘刘刘陈陈陈杨杨黄黄赵赵吴吴周周徐孙马朱胡郭何高林罗郑梁谢宋唐许"
    "韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦"
)
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉建国志文斌宇浩凯鑫思雨欣怡佳琪晨阳"
)
CITIES = (
    "上海", "北京", "广州", "深圳", "成都", "杭州", "武汉", "重庆", "南京", "天津",
    "苏州", "西安", "长沙", "沈阳", "青岛", "郑州", "大连", "东莞", "宁波", "厦门",
)  # fmt: skip
DOMAINS = ("qq.com", "163.com", "126.com", "gmail.com", "sina.com", "outlook.com", "foxmail.com")
PREFIXES = ("130", "131", "132", "135", "136", "137", "138", "139", "150", "151", "158", "186")


@dataclass(slots=True)
class Profile:
    customer_id: uuid.UUID
    person: int
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    birthday: date | None
    city: str | None


@dataclass(frozen=True, slots=True)
class Shares:
    """How the population is drawn."""

    twice: float = 0.10  # people with a second profile that shares no identifier
    kiosk_groups: int = 20  # shops whose kiosk saw 30 strangers each


@lru_cache(maxsize=1 << 16)
def _pinyin(text: str) -> str:
    return "".join(lazy_pinyin(text))


def _typo(rng: random.Random, text: str) -> str:
    """One keyboard slip: a letter or digit replaced, dropped, doubled, or two swapped."""
    if len(text) < 2:
        return text + rng.choice(string.ascii_lowercase)
    i = rng.randrange(len(text) - 1)
    kind = rng.randrange(4)
    alphabet = string.digits if text[i].isdigit() else string.ascii_lowercase
    if kind == 0:
        return text[:i] + rng.choice(alphabet.replace(text[i], "")) + text[i + 1 :]
    if kind == 1:
        return text[:i] + text[i + 1 :]
    if kind == 2:
        return text[: i + 1] + text[i] + text[i + 1 :]
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


class _Draw:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.emails: set[str] = set()
        self.phones: set[str] = set()

    def email(self, surname: str, given: str, birthday: date | None) -> str:
        rng = self.rng
        while True:
            name = _pinyin(surname) + _pinyin(given)
            style = rng.random()
            if style < 0.4:
                local = name + str(rng.randrange(10, 10000))
            elif style < 0.6:
                local = name + (str(birthday.year) if birthday else str(rng.randrange(100)))
            elif style < 0.8:
                local = _pinyin(given) + "." + _pinyin(surname) + str(rng.randrange(1000))
            else:
                local = "".join(rng.choices(string.ascii_lowercase + string.digits, k=9))
            email = f"{local}@{rng.choice(DOMAINS)}"
            if email not in self.emails:
                self.emails.add(email)
                return email

    def phone(self) -> str:
        while True:
            phone = "+86" + self.rng.choice(PREFIXES) + f"{self.rng.randrange(10**8):08d}"
            if phone not in self.phones:
                self.phones.add(phone)
                return phone

    def other_email(self, email: str) -> str | None:
        """The same person's address elsewhere, never the same address."""
        rng = self.rng
        local, domain = email.split("@")
        roll = rng.random()
        for _ in range(20):
            if roll < 0.35:
                candidate = f"{local}@{rng.choice(DOMAINS)}"
            elif roll < 0.65:
                candidate = f"{_typo(rng, local)}@{domain}"
            elif roll < 0.8:
                return None
            else:
                candidate = "".join(rng.choices(string.ascii_lowercase, k=8)) + "@" + domain
            if candidate not in self.emails:
                self.emails.add(candidate)
                return candidate
        return None

    def other_phone(self, phone: str) -> str | None:
        rng = self.rng
        roll = rng.random()
        if roll < 0.3:
            return None
        if roll < 0.7:
            for _ in range(20):
                i = rng.randrange(6, len(phone))
                candidate = (
                    phone[:i] + rng.choice(string.digits.replace(phone[i], "")) + phone[i + 1 :]
                )
                if candidate not in self.phones:
                    self.phones.add(candidate)
                    return candidate
        return self.phone()


def population(people: int, seed: int = 7, shares: Shares | None = None) -> list[Profile]:
    """`people` people's profiles (some twice), kiosk strangers included in the count."""
    shares = shares or Shares()
    draw = _Draw(seed)
    rng = draw.rng
    profiles: list[Profile] = []
    kiosk_cities = [rng.choice(CITIES) for _ in range(shares.kiosk_groups)]
    for person in range(people):
        surname = rng.choice(SURNAMES)
        given = "".join(rng.choices(GIVEN, k=rng.choice((1, 2, 2))))
        born = date(1960, 1, 1) + timedelta(days=rng.randrange(365 * 45))
        birthday = born if rng.random() < 0.85 else None
        kiosk = person < shares.kiosk_groups * 30
        city = kiosk_cities[person // 30] if kiosk else rng.choice(CITIES)
        first = Profile(
            customer_id=uuid.UUID(int=rng.getrandbits(128)),
            person=person,
            first_name=given,
            last_name=surname,
            email=draw.email(surname, given, birthday),
            phone=draw.phone() if rng.random() < 0.8 else None,
            birthday=birthday,
            city=city if rng.random() < 0.9 else None,
        )
        profiles.append(first)
        if not kiosk and rng.random() < shares.twice:
            profiles.append(_second(draw, first, surname, given))
    rng.shuffle(profiles)
    return profiles


def _second(draw: _Draw, first: Profile, surname: str, given: str) -> Profile:
    rng = draw.rng
    roll = rng.random()
    first_name: str | None = given
    last_name: str | None = surname
    if roll < 0.25:  # written in pinyin, e.g. "Wei" "Zhang"
        first_name, last_name = _pinyin(given).capitalize(), _pinyin(surname).capitalize()
    elif roll < 0.4:
        last_name = None
    elif roll < 0.5:
        first_name = _typo(rng, _pinyin(given))
        last_name = _pinyin(surname)
    birthday = first.birthday
    if birthday is not None:
        roll = rng.random()
        if roll < 0.1:
            birthday = None
        elif roll < 0.2:
            birthday = birthday.replace(day=min(28, birthday.day % 28 + 1))
    return Profile(
        customer_id=uuid.UUID(int=rng.getrandbits(128)),
        person=first.person,
        first_name=first_name,
        last_name=last_name,
        email=draw.other_email(first.email) if first.email else None,
        phone=draw.other_phone(first.phone) if first.phone else draw.phone(),
        birthday=birthday,
        city=first.city if rng.random() < 0.8 else None,
    )


def true_pairs(profiles: list[Profile]) -> set[tuple[str, str]]:
    by_person: dict[int, list[str]] = {}
    for p in profiles:
        by_person.setdefault(p.person, []).append(str(p.customer_id))
    pairs = set()
    for ids in by_person.values():
        ids.sort()
        pairs.update((a, b) for i, a in enumerate(ids) for b in ids[i + 1 :])
    return pairs
