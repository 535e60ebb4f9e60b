"""The pure rules of change events: ordering of claims, signatures, backoff, feed filters,
birthdays and time zones."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from domain.delivery.dispatch import ChangeRecord, ready_in_order
from domain.delivery.feed import FeedFilter
from domain.delivery.sending import DeliveryPolicy, sign
from domain.delivery.triggers import is_birthday, zone_of
from domain.delivery.webhooks import validate_kinds, validate_url
from domain.errors import Forbidden, InvalidInput

SHANGHAI = ZoneInfo("Asia/Shanghai")


def record(
    kind: str = "customer.updated", customer: uuid.UUID | None = None, **data: str
) -> ChangeRecord:
    return ChangeRecord(1, uuid.uuid4(), kind, customer, datetime.now(UTC), dict(data))


def test_claimed_items_go_out_only_ahead_of_their_keys_first_item_held_elsewhere() -> None:
    claimed = [(1, "a"), (2, "b"), (4, "a"), (5, None), (6, "b"), (9, "c")]
    # Someone else holds a's 3 and b's 8; c has nothing held.
    assert ready_in_order(claimed, {"a": 3, "b": 8}) == [1, 2, 5, 6, 9]
    assert ready_in_order(claimed, {"a": 0}) == [2, 5, 6, 9]


def test_the_signature_is_the_hex_hmac_sha256_of_the_raw_body() -> None:
    body = b'{"id":"x"}'
    expected = hmac.new(b"secret-secret-secret", body, hashlib.sha256).hexdigest()
    assert sign("secret-secret-secret", body) == f"sha256={expected}"


def test_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    policy = DeliveryPolicy(
        timeout_seconds=10, max_attempts=8, backoff_seconds=5, backoff_max_seconds=60
    )
    assert [policy.backoff(n).total_seconds() for n in range(1, 6)] == [5, 10, 20, 40, 60]
    assert policy.lease(3) == timedelta(seconds=40)


def test_a_lease_covers_the_wait_behind_the_batches_in_flight() -> None:
    """500 deliveries in each of 2 lanes, 16 requests at a time: 63 rounds of waiting at
    most, then the customer's own 2 requests, and one more timeout."""
    policy = DeliveryPolicy(
        timeout_seconds=10,
        max_attempts=8,
        backoff_seconds=5,
        backoff_max_seconds=60,
        concurrency=16,
        lanes=2,
    )
    assert policy.lease(2, batch=500) == timedelta(seconds=10 * (2 + 63 + 1))
    assert policy.lease(1, batch=8) == timedelta(seconds=10 * (1 + 1 + 1))


def test_the_wire_form_round_trips() -> None:
    event = record("customer.merged", uuid.uuid4(), mergeId="m")
    assert ChangeRecord.from_json(event.to_json()) == event


@pytest.mark.parametrize("url", ["ftp://x.com", "https://", "example.com/hook", "https://a b.com"])
def test_only_absolute_http_urls_are_webhook_urls(url: str) -> None:
    with pytest.raises(InvalidInput):
        validate_url(url)


def test_kinds_are_known_and_kept_once_in_order() -> None:
    assert validate_kinds(["tag.assigned", "stage.changed", "tag.assigned"]) == (
        "tag.assigned",
        "stage.changed",
    )
    with pytest.raises(InvalidInput) as refused:
        validate_kinds(["tag.assigned", "tag.exploded"])
    assert refused.value.field == ("kinds", "1")


def test_a_feed_for_a_customer_includes_the_merges_that_involve_it() -> None:
    me, other = uuid.uuid4(), uuid.uuid4()
    feed = FeedFilter.of(None, me, None, sees_pii=True)
    assert feed.matches(record(customer=me))
    assert not feed.matches(record(customer=other))
    assert feed.matches(record("customer.merged", other, mergedId=str(me), survivorId=str(other)))


def test_birthdays_are_withheld_from_callers_without_pii() -> None:
    with pytest.raises(Forbidden):
        FeedFilter.of(["customer.birthday"], None, None, sees_pii=False)
    everything = FeedFilter.of(None, None, None, sees_pii=False)
    assert not everything.matches(record("customer.birthday", uuid.uuid4()))
    assert everything.matches(record("customer.created", uuid.uuid4()))


def test_a_locale_names_a_zone_through_its_region() -> None:
    assert zone_of("en-GB", SHANGHAI) == ZoneInfo("Europe/London")
    assert zone_of("zh_Hant_TW", SHANGHAI) == ZoneInfo("Asia/Taipei")
    assert zone_of("en-US", SHANGHAI) == SHANGHAI  # several zones: the configured one
    assert zone_of(None, SHANGHAI) == SHANGHAI
    assert zone_of("fr", SHANGHAI) == SHANGHAI


def test_a_leap_day_birthday_moves_to_28_february_only_in_common_years() -> None:
    leap = date(2000, 2, 29)
    assert is_birthday(leap, date(2027, 2, 28))
    assert not is_birthday(leap, date(2028, 2, 28))
    assert is_birthday(leap, date(2028, 2, 29))
    assert not is_birthday(date(1990, 2, 28), date(2027, 3, 1))
