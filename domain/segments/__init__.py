"""Segments: saved conditions over profiles, dynamic or materialized, and their refresh."""

__all__ = ["definitions", "refresh"]
