"""`python -m bench <name> [options]`: run one benchmark; each parses its own options."""

from __future__ import annotations

import sys
from collections.abc import Callable

from bench import (
    activity,
    changes,
    costs,
    derived_batch,
    duplicates,
    fuzz,
    identify,
    identity_truth,
    importing,
    insights,
    lifecycle,
    partitions,
    pipeline,
    read,
    replicas,
    segments,
    tags,
)

BENCHMARKS: dict[str, Callable[[list[str]], int]] = {
    "identify": identify.main,
    "identity_truth": identity_truth.main,
    "activity": activity.main,
    "fuzz": fuzz.main,
    "changes": changes.main,
    "partitions": partitions.main,
    "read": read.main,
    "replicas": replicas.main,
    "lifecycle": lifecycle.main,
    "segments": segments.main,
    "insights": insights.main,
    "tags": tags.main,
    "costs": costs.main,
    "derived_batch": derived_batch.main,
    "pipeline": pipeline.main,
    "duplicates": duplicates.main,
    "import": importing.main,
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in BENCHMARKS:
        names = "|".join(BENCHMARKS)
        print(f"usage: python -m bench {{{names}}} [options]  (--help for a benchmark's options)")
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    return BENCHMARKS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
