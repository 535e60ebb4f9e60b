"""Identity and profiles: resolving identifiers to one live profile per person, merging and
unmerging, traits and their survivorship, and editing a profile."""

__all__ = ["editing", "linking", "merging", "normalize", "resolution", "traits", "types"]
