"""Access and safety: API keys and roles, the audit log, what counts as PII, and GDPR's
export and erasure."""

__all__ = [
    "audit",
    "erasure",
    "erasure_conditions",
    "erasure_scrub",
    "export",
    "key_cache",
    "keys",
    "privacy",
]
