"""Activity and metrics: ingest of events and orders, and the metrics derived from them."""

__all__ = ["ingest", "metrics"]
