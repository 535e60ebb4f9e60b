"""Identity resolution as pure planning: which profile an input lands on, what merges.

`WorkingSet` holds the part of the identity graph a batch touches (who owns each identity,
what each profile holds) and resolves inputs against it one by one, in order, updating itself,
so that links made by item 1 count for item 3. It does no I/O: the caller loads the working
set, asks for a `Step` per input, then writes the steps. Keeping the rules here, free of SQL,
lets the property tests drive them with thousands of random sequences.

Merge protection: an input never glues together two values of a `unique` type, and never takes
a profile past a type's `maxPerCustomer`. When an input would, its identifiers are accepted from
the strongest (highest type priority) down, and each one that would break a rule is dropped from
the match and reported, so the strongest identifiers still land.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from domain.identity.types import IdentityTypeSpec


@dataclass(frozen=True, slots=True, order=True)
class Key:
    type: str
    value: str


@dataclass(slots=True)
class ProfileState:
    id: uuid.UUID
    created_at: datetime
    identities: dict[str, set[str]] = field(default_factory=dict)

    def holds(self) -> Iterable[Key]:
        for type_key, values in self.identities.items():
            for value in values:
                yield Key(type_key, value)


@dataclass(frozen=True, slots=True)
class Dropped:
    """An identifier left out of the match, and why (MERGE_CONFLICT or IDENTITY_LIMIT)."""

    position: int
    key: Key
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Step:
    survivor: uuid.UUID
    created: bool
    merges: tuple[tuple[uuid.UUID, uuid.UUID], ...]  # (survivor, merged away), in order
    attached: tuple[Key, ...]  # new identities, now held by the survivor
    matched: tuple[Key, ...]  # identities it already held (seen again)
    dropped: tuple[Dropped, ...]


def violation(
    types: Mapping[str, IdentityTypeSpec], profiles: Iterable[ProfileState], extra: Iterable[Key]
) -> tuple[str, str, str] | None:
    """(code, type, message) if one profile made of `profiles` plus `extra` would break a rule
    that none of the profiles already breaks on its own."""
    profiles = list(profiles)
    combined: dict[str, set[str]] = {}
    worst: dict[str, int] = {}
    for profile in profiles:
        for type_key, values in profile.identities.items():
            combined.setdefault(type_key, set()).update(values)
            worst[type_key] = max(worst.get(type_key, 0), len(values))
    for key in extra:
        combined.setdefault(key.type, set()).add(key.value)
    for type_key, values in combined.items():
        spec = types[type_key]
        already = worst.get(type_key, 0)
        if spec.unique and len(values) > max(1, already):
            return (
                "MERGE_CONFLICT",
                type_key,
                f"one profile would hold two different {type_key} values",
            )
        limit = spec.max_per_customer
        if limit is not None and len(values) > max(limit, already):
            return (
                "IDENTITY_LIMIT",
                type_key,
                f"one profile would hold more than {limit} {type_key} identities",
            )
    return None


class WorkingSet:
    def __init__(
        self,
        types: Mapping[str, IdentityTypeSpec],
        profiles: Iterable[ProfileState],
        new_profile: Callable[[], ProfileState],
    ) -> None:
        self.types = types
        self.profiles = {p.id: p for p in profiles}
        self.owner = {key: p.id for p in self.profiles.values() for key in p.holds()}
        self.new_profile = new_profile

    def rank(self, profile: ProfileState) -> tuple[int, float, str]:
        """Survivor order: the highest-priority identity held, then the oldest, then the id."""
        best = max(
            (self.types[t].priority for t, v in profile.identities.items() if v), default=-(10**9)
        )
        return (-best, profile.created_at.timestamp(), str(profile.id))

    def _owners(self, keys: Iterable[Key]) -> list[ProfileState]:
        ids = dict.fromkeys(self.owner[k] for k in keys if k in self.owner)
        return [self.profiles[i] for i in ids]

    def resolve(self, keys: list[tuple[int, Key]]) -> Step:
        """Land one input (its identities, each with its position in the input)."""
        ordered = sorted(keys, key=lambda item: (-self.types[item[1].type].priority, item[0]))
        accepted: list[Key] = []
        dropped: list[Dropped] = []
        for position, key in ordered:
            if key in accepted:
                continue
            trial = [*accepted, key]
            owners = self._owners(trial)
            found = violation(self.types, owners, (k for k in trial if k not in self.owner))
            if found:
                code, _, reason = found
                message = f"{key.type} {key.value!r} was not linked: {reason}"
                dropped.append(Dropped(position, key, code, message))
                continue
            accepted.append(key)
        return self._land(accepted, dropped)

    def _land(self, accepted: list[Key], dropped: list[Dropped]) -> Step:
        owners = sorted(self._owners(accepted), key=self.rank)
        created = not owners
        survivor = self.new_profile() if created else owners[0]
        if created:
            self.profiles[survivor.id] = survivor
        merges = []
        for loser in owners[1:]:
            self.absorb(survivor, loser)
            merges.append((survivor.id, loser.id))
        matched = tuple(k for k in accepted if k in self.owner)
        attached = tuple(k for k in accepted if k not in self.owner)
        for key in attached:
            survivor.identities.setdefault(key.type, set()).add(key.value)
            self.owner[key] = survivor.id
        return Step(
            survivor.id,
            created,
            tuple(merges),
            attached,
            matched,
            tuple(sorted(dropped, key=lambda d: d.position)),
        )

    def absorb(self, survivor: ProfileState, loser: ProfileState) -> None:
        """Move everything `loser` holds to `survivor`, as a merge does."""
        for key in loser.holds():
            survivor.identities.setdefault(key.type, set()).add(key.value)
            self.owner[key] = survivor.id
        del self.profiles[loser.id]
