"""Every table of the service; importing this module registers them all on `Base.metadata`."""

from store.models.access import ApiKey, AuditCustomer, AuditEntry, OutboxEvent
from store.models.activity import CustomerChannel, CustomerMetrics, Event, EventRollup, Order
from store.models.base import Base
from store.models.customers import Customer, MergeRecord, SourceTrust, SurvivorshipRule
from store.models.derived import CustomerDirty
from store.models.duplicates import DuplicateProfile, DuplicateScan, DuplicateSuggestion
from store.models.identities import ErasedIdentity, IdempotencyKey, Identity, IdentityType
from store.models.lifecycle import LifecycleEdge, LifecycleRule, LifecycleStage, StageTransition
from store.models.privacy import PiiAttribute
from store.models.segments import Segment, SegmentMembership, SegmentMembershipHistory
from store.models.tags import TagAssignment, TagDefinition, TagHistory
from store.models.webhooks import TriggerFiring, Webhook, WebhookDelivery

__all__ = [
    "ApiKey",
    "AuditCustomer",
    "AuditEntry",
    "Base",
    "Customer",
    "CustomerChannel",
    "CustomerDirty",
    "CustomerMetrics",
    "DuplicateProfile",
    "DuplicateScan",
    "DuplicateSuggestion",
    "ErasedIdentity",
    "Event",
    "EventRollup",
    "IdempotencyKey",
    "Identity",
    "IdentityType",
    "LifecycleEdge",
    "LifecycleRule",
    "LifecycleStage",
    "MergeRecord",
    "Order",
    "OutboxEvent",
    "PiiAttribute",
    "Segment",
    "SegmentMembership",
    "SegmentMembershipHistory",
    "SourceTrust",
    "StageTransition",
    "SurvivorshipRule",
    "TagAssignment",
    "TagDefinition",
    "TagHistory",
    "TriggerFiring",
    "Webhook",
    "WebhookDelivery",
]
