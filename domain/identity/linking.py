"""identify / identifyBatch: land identities from any channel on one live profile per person.

One batch is one transaction: normalize every input, lock the identities it names (on
PostgreSQL an advisory lock per identifier, `store.locking.hold_identities`, then row locks on
the profiles holding them, each in a fixed order), load that part of the identity graph,
resolve the inputs in order against it (`domain.identity.resolution`), and write the result in
bulk, the batch's merges included (domain.identity.merge_batch). Deadlocks and lost races
rerun the whole batch (`Database.transact`).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.access.erasure import ErasurePolicy, erased_keys
from domain.changes import Change, record_changes
from domain.derived.batches import transact
from domain.derived.marks import mark
from domain.errors import DomainError, InvalidInput
from domain.identity.merge_batch import MergeRequest, merge_all
from domain.identity.merging import profile_states
from domain.identity.owners import lock_owners
from domain.identity.profile_rows import ProfileRow, load_profiles, load_values, write_profiles
from domain.identity.resolution import Dropped, Key, ProfileState, Step, WorkingSet
from domain.identity.shared import mark_shared, shared_among
from domain.identity.survivorship import load_survivorship
from domain.identity.traits import ProfileValues, Survivorship, Traits, parse_traits
from domain.identity.types import IdentityTypeSpec, load_identity_types
from domain.values import check_moment, text_for
from store.bulk_rows import copy_rows, update_rows
from store.db import Database
from store.locking import hold_identities
from store.models import IdempotencyKey, Identity
from store.types import utcnow

# Core table for the bulk insert: the ORM's bulk path costs several times more per row.
IDENTITIES = cast(Table, Identity.__table__)
MAX_FUTURE = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class IdentifyInput:
    identities: Sequence[tuple[str, str]]
    traits: Any = None
    source: str | None = None
    occurred_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class IdentifyResult:
    """Where one input landed. `customer_id` is None when it was refused or had no identity
    left; `errors` hold refusals and the identifiers that were ignored or dropped."""

    customer_id: uuid.UUID | None
    created: bool = False
    merge_ids: tuple[uuid.UUID, ...] = ()
    errors: tuple[DomainError, ...] = ()


@dataclass(slots=True)
class _Prepared:
    keys: list[tuple[int, Key]]
    traits: Traits
    source: str | None
    at: datetime
    warnings: list[DomainError]


def _prepare(
    item: IdentifyInput, types: dict[str, IdentityTypeSpec], region: str, now: datetime
) -> _Prepared:
    """Normalize one input; refuses it whole (DomainError) for an unknown type or bad value."""
    if not item.identities:
        raise InvalidInput("at least one identity is required", field=["identities"])
    at = item.occurred_at or now
    if at.tzinfo is None:
        raise InvalidInput("occurredAt needs a time zone offset", field=["occurredAt"])
    at = check_moment(at, ["occurredAt"])
    if at > now + MAX_FUTURE:
        raise InvalidInput("occurredAt is more than a day in the future", field=["occurredAt"])
    keys: list[tuple[int, Key]] = []
    warnings: list[DomainError] = []
    for position, (type_key, raw) in enumerate(item.identities):
        spec = types.get(type_key)
        if spec is None:
            raise InvalidInput(
                f"unknown identity type {type_key!r}",
                field=["identities", position, "type"],
                code="UNKNOWN_IDENTITY_TYPE",
            )
        try:
            value = spec.stored_value(raw, region)
        except InvalidInput as error:
            located = error.at("identities", position, "value")
            if error.code != "BLOCKED_IDENTITY":
                raise located from None
            warnings.append(located)
            continue
        keys.append((position, Key(type_key, value)))
    if item.source is not None:
        text_for(Identity.source, item.source, ["source"])
    return _Prepared(keys, parse_traits(item.traits), item.source, at, warnings)


def _refuse_erased(p: _Prepared | DomainError, refused: set[Key]) -> _Prepared | DomainError:
    if isinstance(p, DomainError):
        return p
    for position, key in p.keys:
        if key in refused:
            return InvalidInput(
                "this identity belonged to an erased customer",
                field=["identities", position, "value"],
                code="ERASED_IDENTITY",
            )
    return p


def request_hash(inputs: Sequence[IdentifyInput]) -> str:
    canonical = [
        [
            list(map(list, i.identities)),
            i.traits,
            i.source,
            i.occurred_at.isoformat() if i.occurred_at else None,
        ]
        for i in inputs
    ]
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, default=str).encode()).hexdigest()


def _result_json(result: IdentifyResult) -> dict[str, Any]:
    return {
        "customer_id": str(result.customer_id) if result.customer_id else None,
        "created": result.created,
        "merge_ids": [str(m) for m in result.merge_ids],
        "errors": [
            {"code": e.code, "field": list(e.field), "message": e.message} for e in result.errors
        ],
    }


def _result_of(data: dict[str, Any]) -> IdentifyResult:
    return IdentifyResult(
        customer_id=uuid.UUID(data["customer_id"]) if data["customer_id"] else None,
        created=data["created"],
        merge_ids=tuple(uuid.UUID(m) for m in data["merge_ids"]),
        errors=tuple(
            DomainError(e["message"], field=e["field"], code=e["code"]) for e in data["errors"]
        ),
    )


async def identify(
    db: Database,
    item: IdentifyInput,
    *,
    region: str,
    actor: str | None,
    erased: ErasurePolicy | None = None,
) -> IdentifyResult:
    return (await identify_batch(db, [item], region=region, actor=actor, erased=erased))[0]


async def identify_batch(
    db: Database,
    inputs: Sequence[IdentifyInput],
    *,
    region: str,
    actor: str | None,
    idempotency_key: str | None = None,
    erased: ErasurePolicy | None = None,
) -> list[IdentifyResult]:
    """Resolve every input, in order, in one transaction. A replay of a key returns the first
    answer and writes nothing; the same key with other inputs is IDEMPOTENCY_KEY_REUSED."""
    if idempotency_key:
        text_for(IdempotencyKey.key, idempotency_key, ["idempotencyKey"])
    fingerprint = request_hash(inputs) if idempotency_key else ""

    async def work(session: AsyncSession) -> list[IdentifyResult]:
        if idempotency_key:
            stored = await session.get(IdempotencyKey, idempotency_key)
            if stored is not None:
                if stored.request_hash != fingerprint or stored.operation != "identifyBatch":
                    raise InvalidInput(
                        "this idempotency key was used for a different request",
                        field=["idempotencyKey"],
                        code="IDEMPOTENCY_KEY_REUSED",
                    )
                return [_result_of(r) for r in stored.response["results"]]
            # Claim the key first: a concurrent call with it waits here, then replays our answer.
            session.add(
                IdempotencyKey(
                    key=idempotency_key,
                    operation="identifyBatch",
                    request_hash=fingerprint,
                    response={"results": []},
                )
            )
            await session.flush()
        results = await resolve_batch(session, inputs, region, actor, erased)
        if idempotency_key:
            await session.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.key == idempotency_key)
                .values(response={"results": [_result_json(r) for r in results]})
            )
        # Metrics, RULE tags, stage and materialized segments of the profiles the batch landed
        # on (traits, identities, merges) follow through the worker; ingest marks its own.
        await mark(session, {r.customer_id for r in results if r.customer_id}, actor)
        return results

    return await transact(db, work)


async def resolve_batch(
    session: AsyncSession,
    inputs: Sequence[IdentifyInput],
    region: str,
    actor: str | None,
    erased: ErasurePolicy | None = None,
) -> list[IdentifyResult]:
    """Resolve inputs inside the caller's transaction (ingest of events and orders lands its
    items on profiles this way, creating them when no profile holds the identity). With
    `erased`, an input naming an identity of an erased customer is refused (ERASED_IDENTITY)
    unless the policy allows re-identification."""
    now = utcnow()
    types = await load_identity_types(session)
    policy = await load_survivorship(session)
    prepared: list[_Prepared | DomainError] = []
    for item in inputs:
        try:
            prepared.append(_prepare(item, types, region, now))
        except DomainError as error:
            prepared.append(error)
    all_keys = {key for p in prepared if isinstance(p, _Prepared) for _, key in p.keys}
    await hold_identities(session, ((k.type, k.value) for k in all_keys))
    owners = await lock_owners(session, all_keys)
    if erased is not None:
        refused = await erased_keys(session, all_keys - owners.keys(), erased)
        prepared = [_refuse_erased(p, refused) for p in prepared]
    limited = [k for k in owners if types[k.type].shared_limit is not None]
    shared = await shared_among(session, limited)
    existing_ids = list({customer for _, customer in owners.values()})
    states = await profile_states(session, existing_ids)
    profiles = await load_profiles(session, existing_ids)
    new_ids: list[uuid.UUID] = []

    def new_profile() -> ProfileState:
        new_ids.append(uuid.uuid4())
        profiles[new_ids[-1]] = ProfileRow(
            ProfileValues({}, {}, {}), None, None, None, None, True, now
        )
        return ProfileState(new_ids[-1], now)

    graph = WorkingSet(types, states, new_profile, shared)
    steps: list[tuple[int, Step, _Prepared]] = []
    results: list[IdentifyResult] = []
    for index, p in enumerate(prepared):
        if isinstance(p, DomainError):
            results.append(IdentifyResult(None, errors=(p,)))
            continue
        if not p.keys:
            results.append(IdentifyResult(None, errors=tuple(p.warnings)))
            continue
        step = graph.resolve(p.keys)
        if not isinstance(step, Step):
            results.append(IdentifyResult(None, errors=(*p.warnings, *_refusals(step))))
            continue
        _note(profiles[step.survivor], step, p)
        steps.append((index, step, p))
        dropped = _refusals(step.dropped)
        results.append(IdentifyResult(step.survivor, step.created, (), (*p.warnings, *dropped)))
    await _apply_traits(session, profiles, steps, policy)

    await write_profiles(session, profiles, new_ids)
    await _write_identities(session, steps, owners)
    await mark_shared(session, graph.found_shared, now)
    await record_changes(session, _changes(steps, profiles, new_ids, now))
    requests = [
        MergeRequest(
            survivor,
            loser,
            "identify: a shared identity links them",
            via="identify",
            linked_by=[(k.type, k.value) for k in keys],
        )
        for _, step, _ in steps
        for (survivor, loser), keys in zip(step.merges, step.linked_by, strict=True)
    ]
    merges = iter(await merge_all(session, requests, actor, policy=policy))
    for index, step, _ in steps:
        if step.merges:
            r = results[index]
            merge_ids = tuple(next(merges).id for _ in step.merges)
            results[index] = IdentifyResult(r.customer_id, r.created, merge_ids, r.errors)
    return results


def _refusals(dropped: Sequence[Dropped]) -> list[DomainError]:
    return [
        InvalidInput(d.message, field=["identities", d.position, "value"], code=d.code)
        for d in dropped
    ]


def _changes(
    steps: list[tuple[int, Step, _Prepared]],
    profiles: dict[uuid.UUID, ProfileRow],
    new_ids: list[uuid.UUID],
    now: datetime,
) -> list[Change]:
    """customer.created (with the identity types it was created with), identity.linked for
    identities a known profile gained, customer.updated for known profiles whose traits
    changed. Types and sources only: payloads carry no identity values (PII)."""
    created: dict[uuid.UUID, list[str]] = {i: [] for i in new_ids}
    linked = []
    for _, step, p in steps:
        for key in step.attached:
            if step.survivor in created:
                created[step.survivor].append(key.type)
            else:
                data = {"customerId": str(step.survivor), "type": key.type, "source": p.source}
                linked.append(Change("identity.linked", step.survivor, data, now))
    return [
        *(
            Change("customer.created", i, {"customerId": str(i), "identityTypes": types}, now)
            for i, types in created.items()
        ),
        *linked,
        *(
            Change("customer.updated", i, {"customerId": str(i)}, now)
            for i, profile in profiles.items()
            if profile.changed_traits and not profile.new
        ),
    ]


def _note(profile: ProfileRow, step: Step, p: _Prepared) -> None:
    """What one input changes on the profile it landed on, traits and merges aside."""
    profile.seen.append(p.at)
    profile.dirty = True
    for key in step.attached:
        if key.type == "email":
            profile.email = key.value
        elif key.type == "phone":
            profile.phone = key.value


async def _apply_traits(
    session: AsyncSession,
    profiles: dict[uuid.UUID, ProfileRow],
    steps: list[tuple[int, Step, _Prepared]],
    policy: Survivorship,
) -> None:
    """Offer each input's traits to the profile it landed on, in input order."""
    with_traits = [(step, p) for _, step, p in steps if p.traits.fields or p.traits.attributes]
    unloaded = {step.survivor for step, _ in with_traits if profiles[step.survivor].values is None}
    for customer_id, values in (await load_values(session, list(unloaded))).items():
        profiles[customer_id].values = values
    for step, p in with_traits:
        profile = profiles[step.survivor]
        assert profile.values is not None  # loaded above, or new
        if profile.values.apply(p.traits, p.at, p.source, policy):
            profile.changed_traits = True


async def _write_identities(
    session: AsyncSession,
    steps: list[tuple[int, Step, _Prepared]],
    owners: dict[Key, tuple[int, uuid.UUID]],
) -> None:
    new_rows: dict[Key, dict[str, Any]] = {}
    seen: dict[int, datetime] = {}
    for _, step, p in steps:
        for key in step.attached:
            new_rows[key] = {
                "customer_id": step.survivor,
                "type": key.type,
                "value": key.value,
                "source": p.source,
                "verified": False,
                "first_seen_at": p.at,
                "last_seen_at": p.at,
            }
        for key in step.matched:
            if key in owners:
                identity_id = owners[key][0]
                seen[identity_id] = max(seen.get(identity_id, p.at), p.at)
            elif key in new_rows:
                row = new_rows[key]
                row["last_seen_at"] = max(row["last_seen_at"], p.at)
                row["first_seen_at"] = min(row["first_seen_at"], p.at)
    if new_rows:
        rows = list(new_rows.values())
        await copy_rows(session, IDENTITIES, rows, columns=list(rows[0]))
    await update_rows(session, IDENTITIES, [{"id": i, "last_seen_at": t} for i, t in seen.items()])
