"""The condition language: its vocabulary (tree), what it may name (catalog), validation
(language) and its compilation to one SQL statement (sql)."""

__all__ = ["catalog", "language", "sql", "tree"]
