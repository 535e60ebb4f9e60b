"""The GraphQL schema, by area: access, activity, changes, conditions, customers, identity,
lifecycle, metrics, privacy, segments, tags (and common: Node, PageInfo, UserError).

An area has up to three modules, and imports run one way, down this list:

    root.py            the Schema: merges every area's root fields; adds the extensions every
                       root field gets (api.value_guard; api.payloads on mutations)
    <area>_ops.py      the area's root fields (Query/Mutation/Subscription): permissions
                       declared on each, the work delegated to api.resolvers.<area>
    api.resolvers      parse the arguments, ask the domain, map the records to types
    <area>_mutations.py, and customers.py
                       inputs and payloads of the area's mutations; the profile types
    <area>.py          the area's types; their nested fields read through the per-request
                       loaders (api.loaders) or the domain

A type module never imports a resolver module or an `_ops` module. Where the type graph
loops back (a Segment's members and a stage transition's merge are profiles, while a
Customer lists its segments and stage history), the lower module names the type above it
with a strawberry `LazyType`, resolved when the schema is built; it never imports it.
This package's __init__ imports nothing.
"""
