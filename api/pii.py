"""PII masking, declared where the fields are declared.

- `pii()` on a field that holds PII: null for callers without PII access (partners) and for
  erased profiles, whoever asks.
- `pii_identities()` on Customer.identities: identities of PII types are left out for partners
  (Identity.value is non-null in the contract, so the identity goes, not just its value).
- `no_pii_inference()` on root fields that filter, sort or look profiles up: refuses partners
  the inputs that would reveal PII without showing it (domain.access.privacy says which), a segment
  whose condition reads PII included.
- `pii_condition()` on every field that shows a stored condition: the literals of leaves that
  compare PII read as null for partners.
- `pii_attributes()` on Customer.attributes: attributes declared PII are left out for partners.
- `pii_tag_value()` on tag values (assignments, history): null for partners when the tag is PII.
- `free_text()` on merge and stage reasons: masked for partners.
- `no_pii_members()` on Segment.members / memberCount and TagDefinition.customerCount: refused
  for partners when the condition reads PII; `without_pii_memberships()` on Customer.segments
  and Customer.tags leaves such segments and RULE tags out for partners;
  `without_pii_segment_history()` on Customer.segmentHistory leaves out their entries and exits.
- `refuse_pii_segment` and `change_masker` do the same for change feeds.

No resolver checks a role for PII itself: these extensions are the one place, and
domain.access.privacy's PiiPolicy the one statement of what is PII.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from strawberry.extensions.field_extension import FieldExtension
from strawberry.types import Info

from api.execution import ReadGuard
from api.ids import parse_uuid_id
from api.schema.conditions import condition_dict
from domain.access.keys import Principal, Role
from domain.access.privacy import MASKED_TEXT, PII_SORTS, PiiPolicy
from domain.delivery.dispatch import ChangeRecord
from domain.errors import Forbidden

# Arguments that carry a condition, by their Python names.
CONDITION_ARGUMENTS = ("where", "condition")


def sees_pii(principal: Principal | None) -> bool:
    """The rule: who may read PII. Every extension below asks it, and nothing else does."""
    return principal is not None and principal.role is not Role.PARTNER


def _erased(source: Any) -> bool:
    """An erased profile shows no PII to anyone, even if a value were left behind."""
    status = getattr(source, "status", None)
    return getattr(status, "value", status) == "ERASED"


class _PartnerView(ReadGuard):
    """A value shown as it is where `allows` says so (to callers who see PII), through `mask`
    elsewhere. The one place a field's value meets the rule: every masking extension is one."""

    def allows(self, source: Any, context: Any) -> bool:
        return sees_pii(context.principal)

    def mask(self, value: Any, source: Any, info: Info) -> Any:
        raise NotImplementedError

    def resolve(self, next_: Callable[..., Any], source: Any, info: Info, **kwargs: Any) -> Any:
        value = next_(source, info, **kwargs)
        if self.allows(source, info.context):
            return value
        return self.mask(value, source, info)

    async def resolve_async(
        self, next_: Callable[..., Awaitable[Any]], source: Any, info: Info, **kwargs: Any
    ) -> Any:
        value = await next_(source, info, **kwargs)
        if self.allows(source, info.context):
            return value
        masked = self.mask(value, source, info)
        return await masked if inspect.isawaitable(masked) else masked


class Pii(_PartnerView):
    """Null for callers without PII access, and for erased profiles whoever asks."""

    def allows(self, source: Any, context: Any) -> bool:
        return super().allows(source, context) and not _erased(source)

    def mask(self, value: Any, source: Any, info: Info) -> Any:
        return None


class PiiIdentities(_PartnerView):
    """Identities of PII types left out (their value is non-null in the contract)."""

    async def mask(self, value: Any, source: Any, info: Info) -> list[Any]:
        hidden = await info.context.loaders.pii_identity_types()
        return [identity for identity in value if identity.type not in hidden]


class NoPiiInference(FieldExtension):
    async def resolve_async(
        self, next_: Callable[..., Awaitable[Any]], source: Any, info: Info, **kwargs: Any
    ) -> Any:
        if not sees_pii(info.context.principal):
            await _refuse_pii_inputs(info, kwargs)
        return await next_(source, info, **kwargs)


async def _refuse_pii_inputs(info: Info, kwargs: dict[str, Any]) -> None:
    conditions = [name for name in CONDITION_ARGUMENTS if kwargs.get(name) is not None]
    if conditions or kwargs.get("segment") is not None:
        policy = await info.context.loaders.pii_policy()
        for name in conditions:
            for path in policy.reads_pii(condition_dict(kwargs[name])):
                raise Forbidden("conditions that read PII need PII access", field=[name, *path])
        if kwargs.get("segment") is not None:
            _refuse_segment(policy, parse_uuid_id(kwargs["segment"], "Segment", "segment"))
    for order in kwargs.get("order_by") or ():
        if order.field.value in PII_SORTS:
            raise Forbidden("sorting by a PII field needs PII access", field=["orderBy"])
    identity = kwargs.get("identity")
    if identity is not None and identity.type in await info.context.loaders.pii_identity_types():
        raise Forbidden("looking up by a PII identity needs PII access", field=["identity"])


def _refuse_segment(policy: PiiPolicy, segment_id: uuid.UUID) -> None:
    if segment_id in policy.segment_ids:
        raise Forbidden(
            "this segment's condition reads PII: its members need PII access", field=["segment"]
        )


async def refuse_pii_segment(context: Any, segment_id: uuid.UUID | None) -> None:
    """A change feed of a segment whose condition reads PII tells who matches it."""
    if segment_id is not None and not sees_pii(context.principal):
        _refuse_segment(await context.loaders.pii_policy(), segment_id)


async def change_masker(context: Any) -> Callable[[ChangeRecord], ChangeRecord]:
    """How a caller's change feed shows each event: free text and PII tag values masked for
    partners (the policy read once, when the feed starts)."""
    if sees_pii(context.principal):
        return lambda event: event
    policy: PiiPolicy = await context.loaders.pii_policy()
    return lambda event: replace(event, data=policy.masked_change(event.kind, event.data))


class _WithPolicy(_PartnerView):
    """Masked as domain.access.privacy's PiiPolicy (read once per request) says."""

    async def mask(self, value: Any, source: Any, info: Info) -> Any:
        return self.hide(await info.context.loaders.pii_policy(), value)

    def hide(self, policy: PiiPolicy, value: Any) -> Any:
        raise NotImplementedError


class PiiCondition(_WithPolicy):
    def hide(self, policy: PiiPolicy, value: Any) -> Any:
        return None if value is None else policy.masked_condition(value)


class PiiAttributes(_WithPolicy):
    def hide(self, policy: PiiPolicy, value: Any) -> Any:
        return policy.masked_attributes(value or {})


class PiiFieldSources(_WithPolicy):
    """Customer.fieldSources without the PII fields' entries: when a birthday was set tells
    that there is one."""

    def hide(self, policy: PiiPolicy, value: Any) -> Any:
        return [entry for entry in value if not policy.is_pii_field(entry.field)]


class PiiTagValue(_PartnerView):
    """On a type with a `tag` (TagDefinition): its value is masked when the tag is PII."""

    def allows(self, source: Any, context: Any) -> bool:
        return sees_pii(context.principal) or not source.tag.pii

    def mask(self, value: Any, source: Any, info: Info) -> Any:
        return None


class FreeText(_PartnerView):
    def __init__(self, masked: str | None) -> None:
        super().__init__()
        self.instead = masked

    def mask(self, value: Any, source: Any, info: Info) -> Any:
        return None if value is None else self.instead


class WithoutPiiMemberships(_WithPolicy):
    """Customer.segments / Customer.tags: the segments and RULE tags whose conditions read
    PII are left out for partners (membership would tell who matches the condition)."""

    def hide(self, policy: PiiPolicy, value: Any) -> Any:
        return [item for item in value if not _membership_reads_pii(policy, item)]


class WithoutPiiSegmentHistory(_WithPolicy):
    """Customer.segmentHistory: entries and exits of segments whose conditions read PII are
    left out for partners, as those segments are from Customer.segments."""

    def hide(self, policy: PiiPolicy, value: Any) -> Any:
        kept = [edge for edge in value.edges if edge.node.segment.key not in policy.segments]
        return replace(value, edges=kept)


def _membership_reads_pii(policy: PiiPolicy, item: Any) -> bool:
    tag = getattr(item, "tag", None)
    if tag is not None:
        return tag.key in policy.rule_tags
    return item.key in policy.segments


class NoPiiMembers(FieldExtension):
    """On Segment and TagDefinition fields that list or count the people who match."""

    async def resolve_async(
        self, next_: Callable[..., Awaitable[Any]], source: Any, info: Info, **kwargs: Any
    ) -> Any:
        if not sees_pii(info.context.principal):
            policy = await info.context.loaders.pii_policy()
            if source.key in policy.segments or source.key in policy.rule_tags:
                raise Forbidden(
                    f"the condition of {source.key!r} reads PII: who matches it needs PII access",
                    field=[info.field_name],
                )
        return await next_(source, info, **kwargs)


def pii() -> list[FieldExtension]:
    return [Pii()]


def pii_identities() -> list[FieldExtension]:
    return [PiiIdentities()]


def no_pii_inference() -> list[FieldExtension]:
    return [NoPiiInference()]


def pii_condition() -> list[FieldExtension]:
    return [PiiCondition()]


def pii_attributes() -> list[FieldExtension]:
    return [PiiAttributes()]


def pii_field_sources() -> list[FieldExtension]:
    return [PiiFieldSources()]


def pii_tag_value() -> list[FieldExtension]:
    return [PiiTagValue()]


def free_text(masked: str | None = None) -> list[FieldExtension]:
    """`masked`: what partners read instead (MASKED_TEXT where the contract allows no null)."""
    return [FreeText(masked)]


def no_pii_members() -> list[FieldExtension]:
    return [NoPiiMembers()]


def without_pii_memberships() -> list[FieldExtension]:
    return [WithoutPiiMemberships()]


def without_pii_segment_history() -> list[FieldExtension]:
    return [WithoutPiiSegmentHistory()]


__all__ = [
    "MASKED_TEXT",
    "change_masker",
    "free_text",
    "no_pii_inference",
    "no_pii_members",
    "pii",
    "pii_attributes",
    "pii_condition",
    "pii_field_sources",
    "pii_identities",
    "pii_tag_value",
    "refuse_pii_segment",
    "sees_pii",
    "without_pii_memberships",
    "without_pii_segment_history",
]
