"""Derived state follows raw facts through a worker: the consistency contract.

A write (identify / identifyBatch, trackEvents / recordOrders, updateCustomer, tag / untag,
mergeCustomers / unmerge) commits, in one transaction, identity resolution and the raw facts:
profiles, identities, events, orders, tag assignments made by hand, and the outbox rows of the
change feed. In the same transaction it marks every profile it touched dirty
(`marks.mark`, table customer_dirty). It does not bring derived state up to date.

Derived state is what `domain.cascade.follow_write` computes from the raw facts, after
`domain.activity.metrics.recompute`: metrics, RULE tags, the lifecycle stage and the members of
materialized segments. The worker (`batches`, run by `serve` and by `c360 work`) claims dirty
profiles in batches, oldest first, and brings each batch up to date in one transaction,
set-based. On PostgreSQL a claim is a lease taken with FOR UPDATE SKIP LOCKED, so any number of
workers share the backlog and never work on the same profile at once; a worker that dies
leaves its lease to expire. A write that arrives while a profile is being worked on marks it
again (its `version` moves), and the worker leaves that mark for the next batch.

What a mutation's response guarantees: its raw facts are committed and visible to every later
read; the payload's profile fields that are raw (traits, identities, events, orders, tags by
hand) are current. Derived fields (metrics, RULE tags, stage, materialized segments) follow
within the worker's lag: `Customer.derivedStatePending` is true and
`Customer.derivedStateBehindSince` says since when while a profile waits. The lag is bounded by
the worker's throughput against the write rate (see `c360_derived_lag_seconds` on /metrics and
`derivedState` in /readyz); an idle worker hears of a write at its commit (LISTEN/NOTIFY on
PostgreSQL) or within `derived_poll_seconds`.

Read-your-writes: a request with the header `X-Derived-State: wait` has each of its writes
bring the derived state of the profiles it touched up to date before the mutation's payload is
resolved (`settle`, at most `derived_wait_seconds`; past that the payload says
derivedStatePending). A handle with `Database.settle_writes` set does so for every write (the
test harness; `derived_state_inline`).

Not deferred: erasure (no segment may keep an erased profile for a moment), a stage set by hand
(`follow_stage_move`), and RULE tag definitions and sweeps, which work over everyone anyway.
"""
