__all__ = [
    "cascade",
    "changes",
    "errors",
    "history",
    "pagination",
    "profile",
    "profile_bundle",
    "tags",
    "values",
]
