"""Random identify sequences against a union-find oracle (hypothesis), on each backend.

Oracle: identities named together in one input belong together, except those the system
reported as dropped by merge protection; each such drop must be justified (joining would have
put two values of a unique type in one profile), and so must each device id reported shared
(it would have joined a second person's identifier, email, phone, ..., to a profile), which
from then on is dropped from every input. The system's partition of identities into live profiles must equal the
oracle's, and no live profile may break a unique type.
"""

from __future__ import annotations

import asyncio
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.identity.linking import IdentifyInput, identify_batch
from service.settings import Settings
from store.db import Database
from tests.conftest import reset
from tests.integration.identity_helpers import owners

POOL = (
    [("email", f"p{i}@example.com") for i in range(6)]
    + [("phone", f"+86138001380{i:02d}") for i in range(4)]
    + [("device_id", f"device-{i}") for i in range(5)]
    + [("crm_id", f"CRM-{i}") for i in range(3)]
    + [("wechat_unionid", f"union-{i}") for i in range(2)]
)
UNIQUE = {"crm_id", "wechat_unionid"}
STRONGER_THAN_DEVICE = {"email", "phone", "crm_id", "wechat_unionid"}

inputs = st.lists(st.sampled_from(POOL), min_size=1, max_size=4)
batches = st.lists(st.lists(inputs, min_size=1, max_size=4), min_size=1, max_size=6)


class UnionFind:
    def __init__(self) -> None:
        self.parent: dict[tuple[str, str], tuple[str, str]] = {}

    def find(self, key: tuple[str, str]) -> tuple[str, str]:
        self.parent.setdefault(key, key)
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def union(self, a: tuple[str, str], b: tuple[str, str]) -> None:
        self.parent[self.find(a)] = self.find(b)

    def members(self, key: tuple[str, str]) -> set[tuple[str, str]]:
        if key not in self.parent:  # never landed: an identity on its own
            return {key}
        root = self.find(key)
        return {k for k in self.parent if self.find(k) == root}

    def partition(self) -> set[frozenset[tuple[str, str]]]:
        return {frozenset(self.members(k)) for k in self.parent}


def conflicts(keys: set[tuple[str, str]]) -> bool:
    return any(len({v for t, v in keys if t == u}) > 1 for u in UNIQUE)


def overshares(joined: set[tuple[str, str]], other: set[tuple[str, str]]) -> bool:
    """A device id's group `other` brought into `joined` adds people's identifiers (of types
    stronger than a device), past one (device ids have a shared limit of 1) and past what
    either side held."""
    if other <= joined:
        return False

    def people(keys: set[tuple[str, str]]) -> int:
        return len({k for k in keys if k[0] in STRONGER_THAN_DEVICE})

    return people(joined | other) > max(1, people(joined), people(other))


async def run(url: str, sequence: list[list[list[tuple[str, str]]]]) -> None:
    db = Database.from_url(url)
    try:
        await reset(db)
        oracle = UnionFind()
        shared: set[tuple[str, str]] = set()
        for group in sequence:
            results = await identify_batch(
                db, [IdentifyInput(identities) for identities in group], region="CN", actor="prop"
            )
            for identities, result in zip(group, results, strict=True):
                codes = {int(e.field[1]): e.code for e in result.errors}
                assert set(codes.values()) <= {"MERGE_CONFLICT", "SHARED_IDENTIFIER"}
                for i, key in enumerate(identities):
                    assert key not in shared or codes.get(i) == "SHARED_IDENTIFIER"
                kept = [k for i, k in enumerate(identities) if i not in codes]
                assert (result.customer_id is None) == (not kept)
                for key in kept:
                    oracle.union(kept[0], key)
                joined = oracle.members(kept[0]) if kept else set()
                for i, code in codes.items():
                    other = oracle.members(identities[i])
                    if code == "MERGE_CONFLICT":
                        assert conflicts(joined | other), "unjustified drop"
                    elif identities[i] not in shared:
                        assert overshares(joined, other), "unjustified shared identifier"
                        shared.add(identities[i])
        held = await owners(db)
        system: dict[object, set[tuple[str, str]]] = {}
        for key, customer in held.items():
            system.setdefault(customer, set()).add(key)
        assert {frozenset(v) for v in system.values()} == oracle.partition()
        assert not any(conflicts(keys) for keys in system.values())
    finally:
        await db.dispose()


@settings(
    max_examples=int(os.environ.get("C360_PROPERTY_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(sequence=batches)
def test_identify_agrees_with_a_union_find_oracle(settings: Settings, sequence) -> None:  # type: ignore[no-untyped-def]
    asyncio.run(run(settings.database_url, sequence))
