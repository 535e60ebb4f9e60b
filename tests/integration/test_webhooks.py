"""Webhooks against a real HTTP receiver on loopback: signatures, retries with backoff, dead
deliveries and replay, order per customer, and no loss when the dispatcher is killed."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from domain.delivery.webhooks import (
    DeliveryRecord,
    DeliveryStatus,
    define_webhook,
    delete_webhook,
    list_deliveries,
    list_webhooks,
    replay_delivery,
)
from domain.errors import InvalidInput, NotFound
from domain.pagination import PageRequest
from service.dispatcher import Dispatcher
from service.settings import Settings
from store.db import Database
from store.models import OutboxEvent
from store.pubsub import InProcessBroker
from store.types import utcnow
from tests.integration.change_helpers import SECRET, created, emit, updated
from tests.servers import c360_env, c360_process, receiver, wait_until

KINDS = ["customer.created", "customer.updated"]


@pytest.fixture
def retrying(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "webhook_max_attempts": 3,
            "webhook_backoff_seconds": 10.0,
            "webhook_timeout_seconds": 2.0,
        }
    )


async def deliveries(db: Database, status: DeliveryStatus | None = None) -> list[DeliveryRecord]:
    return (await list_deliveries(db, PageRequest(first=100), status=status)).items


async def test_a_delivery_is_signed_with_the_secret_and_names_its_event(
    db: Database, settings: Settings
) -> None:
    customer = uuid.uuid4()
    async with receiver() as endpoint, Dispatcher(db, InProcessBroker(), settings) as dispatcher:
        await define_webhook(db, endpoint.url + "/hook", ["customer.created"], SECRET, "admin")
        await emit(db, created(customer), updated(customer))
        assert await dispatcher.dispatch_once() == 2
        assert await dispatcher.deliver_once() == 1  # customer.updated is not subscribed

    [got] = endpoint.at("/hook")
    expected = "sha256=" + hmac.new(SECRET.encode(), got.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(got.headers["x-c360-signature"], expected)
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-c360-event-kind"] == "customer.created"
    assert got.event_id == got.json["id"]
    assert got.json["customerId"] == str(customer)
    assert got.json["data"] == {"customerId": str(customer)}
    [delivery] = await deliveries(db)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
        DeliveryStatus.DELIVERED,
        1,
        200,
    )
    assert str(delivery.event_id) == got.event_id


async def test_a_failing_endpoint_is_retried_with_exponential_backoff(
    db: Database, retrying: Settings
) -> None:
    now = utcnow()
    async with receiver() as endpoint, Dispatcher(db, InProcessBroker(), retrying) as dispatcher:
        endpoint.statuses.extend([500, 503])
        await define_webhook(db, endpoint.url, KINDS, SECRET, "admin")
        await emit(db, created(uuid.uuid4()))
        await dispatcher.dispatch_once(now)
        assert await dispatcher.deliver_once(now) == 1
        [failed] = await deliveries(db)
        assert (failed.status, failed.attempts, failed.last_status_code) == (
            DeliveryStatus.PENDING,
            1,
            500,
        )
        assert failed.next_attempt_at == now + timedelta(seconds=10)
        assert await dispatcher.deliver_once(now + timedelta(seconds=9)) == 0
        assert await dispatcher.deliver_once(now + timedelta(seconds=10)) == 1
        assert await dispatcher.deliver_once(now + timedelta(seconds=29)) == 0  # then 20 s
        assert await dispatcher.deliver_once(now + timedelta(seconds=30)) == 1

    [delivered] = await deliveries(db)
    assert (delivered.status, delivered.attempts) == (DeliveryStatus.DELIVERED, 3)
    assert len({r.event_id for r in endpoint.at("/")}) == 1
    assert len(endpoint.at("/")) == 3


async def test_a_delivery_is_dead_after_the_last_attempt_and_a_replay_sends_it_again(
    db: Database, retrying: Settings
) -> None:
    at = utcnow()
    async with receiver() as endpoint, Dispatcher(db, InProcessBroker(), retrying) as dispatcher:
        endpoint.statuses.extend([500, 500, 500])
        await define_webhook(db, endpoint.url, KINDS, SECRET, "admin")
        await emit(db, created(uuid.uuid4()))
        await dispatcher.dispatch_once(at)
        for _ in range(3):
            assert await dispatcher.deliver_once(at) == 1
            at += timedelta(hours=1)
        assert await dispatcher.deliver_once(at) == 0
        [dead] = await deliveries(db, DeliveryStatus.DEAD)
        assert (dead.attempts, dead.last_error, dead.next_attempt_at) == (3, "HTTP 500", None)

        replayed = await replay_delivery(db, dead.id, now=at)
        assert (replayed.status, replayed.attempts) == (DeliveryStatus.PENDING, 0)
        with pytest.raises(InvalidInput):
            await replay_delivery(db, dead.id, now=at)  # already pending again
        assert await dispatcher.deliver_once(at) == 1

    [delivered] = await deliveries(db)
    assert (delivered.status, delivered.attempts) == (DeliveryStatus.DELIVERED, 1)
    assert [r.event_id for r in endpoint.at("/")] == [str(dead.event_id)] * 4


async def test_a_failing_delivery_holds_back_later_events_of_its_customer_only(
    db: Database, retrying: Settings
) -> None:
    stuck, other = uuid.uuid4(), uuid.uuid4()
    now = utcnow()
    async with receiver() as endpoint, Dispatcher(db, InProcessBroker(), retrying) as dispatcher:
        healthy = False
        endpoint.answer = lambda r: 200 if healthy or r.json["customerId"] != str(stuck) else 500
        await define_webhook(db, endpoint.url, KINDS, SECRET, "admin")
        await emit(db, created(stuck), created(other))
        await emit(db, updated(stuck), updated(other))
        await dispatcher.dispatch_once(now)
        await dispatcher.deliver_once(now)
        sent = [(r.json["customerId"], r.json["kind"]) for r in endpoint.at("/")]
        assert sorted(sent) == sorted(
            [
                (str(stuck), "customer.created"),
                (str(other), "customer.created"),
                (str(other), "customer.updated"),
            ]
        )
        assert await dispatcher.deliver_once(now + timedelta(seconds=5)) == 0
        healthy = True
        assert await dispatcher.deliver_once(now + timedelta(seconds=10)) == 2

    stuck_kinds = [r.json["kind"] for r in endpoint.at("/") if r.json["customerId"] == str(stuck)]
    assert stuck_kinds == ["customer.created", "customer.created", "customer.updated"]


async def test_a_customer_stuck_on_a_failing_delivery_does_not_starve_the_others(
    db: Database, retrying: Settings
) -> None:
    stuck, other = uuid.uuid4(), uuid.uuid4()
    now = utcnow()
    small = retrying.model_copy(update={"dispatch_batch_size": 2})
    async with receiver() as endpoint, Dispatcher(db, InProcessBroker(), small) as dispatcher:
        endpoint.answer = lambda r: 500 if r.json["customerId"] == str(stuck) else 200
        await define_webhook(db, endpoint.url, KINDS, SECRET, "admin")
        await emit(db, created(stuck), *(updated(stuck, n) for n in range(5)), created(other))
        while await dispatcher.dispatch_once(now):
            pass
        assert await dispatcher.deliver_once(now) == 1  # the stuck head fails
        assert await dispatcher.deliver_once(now) == 1  # its queue waits; the other goes
    assert [r.json["customerId"] for r in endpoint.at("/")] == [str(stuck), str(other)]


async def test_deleting_a_webhook_cancels_its_pending_deliveries_and_keeps_their_history(
    db: Database, settings: Settings
) -> None:
    hook = await define_webhook(db, "http://127.0.0.1:9/never", KINDS, SECRET, "admin")
    async with Dispatcher(db, InProcessBroker(), settings) as dispatcher:
        await emit(db, created(uuid.uuid4()))
        await dispatcher.dispatch_once()
        await delete_webhook(db, hook.id)
        assert await dispatcher.deliver_once() == 0
    assert await list_webhooks(db) == []
    [cancelled] = await deliveries(db)
    assert cancelled.status is DeliveryStatus.CANCELLED
    with pytest.raises(NotFound):
        await delete_webhook(db, hook.id)
    with pytest.raises(InvalidInput):
        await replay_delivery(db, cancelled.id)


@pytest.mark.parametrize(
    ("url", "kinds", "secret", "field"),
    [
        ("ftp://example.com/x", KINDS, SECRET, ("url",)),
        ("/relative", KINDS, SECRET, ("url",)),
        ("https://example.com/x", [], SECRET, ("kinds",)),
        (
            "https://example.com/x",
            ["customer.created", "customer.exploded"],
            SECRET,
            ("kinds", "1"),
        ),
        ("https://example.com/x", KINDS, "short", ("secret",)),
    ],
)
async def test_an_invalid_webhook_is_refused_and_nothing_is_written(
    db: Database, url: str, kinds: list[str], secret: str, field: tuple[str, ...]
) -> None:
    with pytest.raises(InvalidInput) as refused:
        await define_webhook(db, url, kinds, secret, "admin")
    assert refused.value.field == field
    assert await list_webhooks(db) == []


async def test_no_event_is_lost_when_the_dispatcher_is_killed_mid_batch_and_restarted(
    db: Database, settings: Settings
) -> None:
    customers = [uuid.uuid4() for _ in range(12)]
    env = c360_env(
        settings.database_url,
        settings.redis_url,
        webhook_timeout_seconds="1",
        dispatch_interval_seconds="0.02",
        trigger_interval_seconds="3600",
    )
    async with receiver() as endpoint:
        await define_webhook(db, endpoint.url, KINDS, SECRET, "admin")
        await emit(db, *(created(c) for c in customers))
        endpoint.stall_after = 4  # four answered, the rest hang: the batch is cut mid-way
        with c360_process(["dispatch"], env) as first:
            await wait_until(
                lambda: len(endpoint.requests) >= 6, timeout=30, what="the first batch"
            )
            first.kill()
            first.wait(5)
        endpoint.unstall()
        with c360_process(["dispatch"], env):
            await wait_until(
                lambda: (
                    {r.json["customerId"] for _, r in endpoint.requests}
                    >= {str(c) for c in customers}
                ),
                timeout=30,
                what="every event after the restart",
            )
            await wait_until_delivered(db, len(customers))

    async with db.read() as session:
        event_ids = set((await session.execute(select(OutboxEvent.event_id))).scalars())
    assert {r.event_id for r in endpoint.at("/")} == {str(e) for e in event_ids}
    # What was in flight when the first dispatcher died went out again: at least once.
    assert len(endpoint.at("/")) > len(customers)


async def wait_until_delivered(db: Database, expected: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(await deliveries(db, DeliveryStatus.DELIVERED)) == expected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("deliveries were not all marked delivered")
