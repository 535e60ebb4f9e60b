"""The lifecycle: the model as data, replacing it, automatic rules, stage moves and the funnel."""

__all__ = ["config", "funnel", "model", "moves", "rules"]
