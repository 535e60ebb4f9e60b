"""Benchmarks, run with `python -m bench <name>`: throughput figures, never pass/fail tests."""
