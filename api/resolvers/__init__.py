"""Resolvers of the root fields, one module per area of api.schema (same names): parse the
arguments, ask the domain, map its records to api.schema types. Nothing else.

They import api.schema's type, input and payload modules, api.context and the domain; only
api.schema's `<area>_ops.py` modules import them, and no resolver module imports another.
A mutation's resolver does not catch a DomainError: api.payloads answers it in the payload.
This package's __init__ imports nothing.
"""
