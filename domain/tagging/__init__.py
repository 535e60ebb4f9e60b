"""Tags beyond one assignment (domain.tags holds definitions and assignments): RULE tags, what
every tag change records, and tagging in bulk."""

__all__ = ["bulk", "records", "rules"]
