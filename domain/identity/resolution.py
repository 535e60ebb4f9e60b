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

Shared identifiers: a type with a `shared_limit` (device ids: 1) names a thing several people
may use, such as a shop's kiosk. One of its identifiers may bring a profile into an input only
while that joins at most `shared_limit` identifiers of stronger types, people's identifiers
such as emails and phones (or no more than one of the profiles, or the input, already had):
past that it is found shared, links nothing from then on, and is reported as
SHARED_IDENTIFIER. The profile holding it keeps it and is not split.
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
    # Per merge: the input's identifiers held by the survivor or by the merged-away profile,
    # which joined the two.
    linked_by: tuple[tuple[Key, ...], ...] = ()


def _tally(
    profiles: Iterable[ProfileState], extra: Iterable[Key]
) -> tuple[dict[str, set[str]], dict[str, int]]:
    """Per type: the values one profile made of `profiles` plus `extra` would hold, and the
    most any one of the profiles holds already."""
    combined: dict[str, set[str]] = {}
    worst: dict[str, int] = {}
    for profile in profiles:
        for type_key, values in profile.identities.items():
            combined.setdefault(type_key, set()).update(values)
            worst[type_key] = max(worst.get(type_key, 0), len(values))
    for key in extra:
        combined.setdefault(key.type, set()).add(key.value)
    return combined, worst


def violation(
    types: Mapping[str, IdentityTypeSpec], profiles: Iterable[ProfileState], extra: Iterable[Key]
) -> tuple[str, str, str] | None:
    """(code, type, message) if one profile made of `profiles` plus `extra` would break a rule
    that none of the profiles already breaks on its own."""
    combined, worst = _tally(profiles, extra)
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
        shared: Iterable[Key] = (),
    ) -> None:
        self.types = types
        self.profiles = {p.id: p for p in profiles}
        self.owner = {key: p.id for p in self.profiles.values() for key in p.holds()}
        self.new_profile = new_profile
        self.shared = set(shared)
        self.found_shared: list[Key] = []  # found shared by this working set, in order

    def rank(self, profile: ProfileState) -> tuple[int, float, str]:
        """Survivor order: the highest-priority identity held, then the oldest, then the id."""
        best = max(
            (self.types[t].priority for t, v in profile.identities.items() if v), default=-(10**9)
        )
        return (-best, profile.created_at.timestamp(), str(profile.id))

    def _owners(self, keys: Iterable[Key]) -> list[ProfileState]:
        ids = dict.fromkeys(self.owner[k] for k in keys if k in self.owner)
        return [self.profiles[i] for i in ids]

    def resolve(self, keys: list[tuple[int, Key]]) -> Step | tuple[Dropped, ...]:
        """Land one input (its identities, each with its position in the input); when every
        identifier of it is dropped (all shared), it lands nowhere: only the drops."""
        ordered = sorted(keys, key=lambda item: (-self.types[item[1].type].priority, item[0]))
        accepted: list[Key] = []
        dropped: list[Dropped] = []
        for position, key in ordered:
            if key in accepted:
                continue
            if key in self.shared or self._overshares(key, accepted):
                if key not in self.shared:
                    self.shared.add(key)
                    self.found_shared.append(key)
                message = f"{key.type} {key.value!r} was not linked: several people share it"
                dropped.append(Dropped(position, key, "SHARED_IDENTIFIER", message))
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
        if not accepted:
            return tuple(sorted(dropped, key=lambda d: d.position))
        return self._land(accepted, dropped)

    def _overshares(self, key: Key, accepted: list[Key]) -> bool:
        """Whether `key` would bring its holder into the input past its type's shared limit:
        add identifiers of stronger types (people's: emails, phones, ...) so that there are
        more of them than the limit, than any one profile held, and than the input had."""
        spec = self.types[key.type]
        if spec.shared_limit is None or key not in self.owner or not accepted:
            return False
        joined = self._owners(accepted)
        holder = self.profiles[self.owner[key]]
        if any(profile.id == holder.id for profile in joined):
            return False  # the stronger identifiers land on its holder anyway
        new = [k for k in accepted if k not in self.owner]

        def people(profiles: list[ProfileState], extra: list[Key]) -> int:
            combined, _ = _tally(profiles, extra)
            return sum(
                len(values)
                for type_key, values in combined.items()
                if self.types[type_key].priority > spec.priority
            )

        most = max(people([profile], []) for profile in [*joined, holder])
        before = people(joined, new)
        return people([*joined, holder], new) > max(spec.shared_limit, most, before)

    def _land(self, accepted: list[Key], dropped: list[Dropped]) -> Step:
        owners = sorted(self._owners(accepted), key=self.rank)
        created = not owners
        survivor = self.new_profile() if created else owners[0]
        if created:
            self.profiles[survivor.id] = survivor
        held_by = {key: self.owner.get(key) for key in accepted}
        merges, linked_by = [], []
        for loser in owners[1:]:
            pair = (survivor.id, loser.id)
            linked_by.append(tuple(k for k in accepted if held_by[k] in pair))
            self.absorb(survivor, loser)
            merges.append(pair)
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
            tuple(linked_by),
        )

    def absorb(self, survivor: ProfileState, loser: ProfileState) -> None:
        """Move everything `loser` holds to `survivor`, as a merge does."""
        for key in loser.holds():
            survivor.identities.setdefault(key.type, set()).add(key.value)
            self.owner[key] = survivor.id
        del self.profiles[loser.id]
