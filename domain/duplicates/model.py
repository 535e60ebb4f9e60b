"""The probabilistic match model: Splink's Fellegi–Sunter scoring, run in-process on DuckDB.

Splink owns the statistics: u probabilities by random sampling, m probabilities by
expectation maximisation over blocked pairs, the prior from deterministic rules, and the
scoring of candidate pairs. This module only says what is compared (the levels of each field),
how candidates are blocked, and turns Splink's output into suggestions with evidence.

A population too small to estimate from (under `min_training_profiles`) is scored with the
starting m/u values written below, which are Splink's starting point for training anyway.
Nothing here reads the service's database: callers hand in feature rows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

from domain.duplicates.features import FEATURE_COLUMNS

# Blocking: a pair is scored only when it agrees on one of these column sets. Each is indexed
# in the feature table, so an incremental run finds a profile's candidates with the same rules.
BLOCKING_KEYS: tuple[tuple[str, ...], ...] = (
    ("birthday", "first_initial"),
    ("email_local",),
    ("phone_prefix",),
    ("first_name", "last_name", "city"),
)

# (column, field name in the API, levels after "missing": (label, SQL on l/r, m, u) starting
# values). Levels are tried in order; the first that holds is the pair's comparison.
_LEVELS: dict[str, tuple[str, tuple[tuple[str, str, float, float], ...]]] = {
    "first_name": (
        "firstName",
        (
            ("exact", "{l} = {r}", 0.85, 0.02),
            ("typo", "damerau_levenshtein({l}, {r}) <= 1", 0.08, 0.03),
            ("similar", "jaro_winkler_similarity({l}, {r}) >= 0.88", 0.04, 0.05),
            ("different", "TRUE", 0.03, 0.90),
        ),
    ),
    "last_name": (
        "lastName",
        (
            ("exact", "{l} = {r}", 0.9, 0.05),
            ("typo", "damerau_levenshtein({l}, {r}) <= 1", 0.05, 0.05),
            ("similar", "jaro_winkler_similarity({l}, {r}) >= 0.88", 0.02, 0.05),
            ("different", "TRUE", 0.03, 0.85),
        ),
    ),
    "email_local": (
        "email",
        (
            ("exact", "{l} = {r}", 0.4, 0.0005),
            ("typo", "damerau_levenshtein({l}, {r}) <= 1", 0.3, 0.0005),
            # No "similar" level: addresses are often built from the name, so namesakes'
            # addresses look alike, and that likeness is not independent of the name's.
            ("different", "TRUE", 0.3, 0.999),
        ),
    ),
    "phone_digits": (
        "phone",
        (
            ("exact", "{l} = {r}", 0.3, 0.0001),
            ("typo", "damerau_levenshtein({l}, {r}) <= 1", 0.4, 0.0001),
            ("different", "TRUE", 0.3, 0.9998),
        ),
    ),
    "birthday": (
        "birthday",
        (
            ("exact", "{l} = {r}", 0.9, 0.0001),
            ("typo", "damerau_levenshtein({l}, {r}) <= 1", 0.07, 0.002),
            ("different", "TRUE", 0.03, 0.9979),
        ),
    ),
    "city": (
        "city",
        (
            ("exact", "{l} = {r}", 0.8, 0.05),
            ("different", "TRUE", 0.2, 0.95),
        ),
    ),
}

# The deterministic rules whose matches (at the recall below) give the prior probability that
# two random profiles are one person: agreeing on these is all but certain.
_SURE_RULES = (("email_local", "birthday"), ("phone_digits", "first_name"))
_SURE_RULES_RECALL = 0.5
# Pairs sampled for u, and blocked pairs used per EM session: enough for stable estimates,
# bounded so training costs the same at 100,000 profiles as at 10,000,000.
_U_PAIRS = 2e6
_EM_PAIRS = 1e6
# The EM sessions: each estimates m for every field its blocking rule does not use.
_EM_RULES = (("email_local",), ("first_name", "last_name", "birthday"))

# The untrained model's prior that two random profiles are one person (training estimates it).
_PRIOR = 1e-5


@dataclass(frozen=True, slots=True)
class Evidence:
    field: str
    comparison: str
    weight: float


@dataclass(frozen=True, slots=True)
class ScoredPair:
    """Two profiles (as given, smaller id first) and what Splink made of them."""

    left: str
    right: str
    score: float
    evidence: tuple[Evidence, ...]


def _comparison(column: str) -> dict[str, Any]:
    field, levels = _LEVELS[column]
    left, right = f'"{column}_l"', f'"{column}_r"'
    rows: list[dict[str, Any]] = [
        {
            "sql_condition": f"{left} IS NULL OR {right} IS NULL",
            "label_for_charts": "missing",
            "is_null_level": True,
        }
    ]
    for label, condition, m, u in levels:
        rows.append(
            {
                "sql_condition": condition.format(l=left, r=right),
                "label_for_charts": label,
                "m_probability": m,
                "u_probability": u,
            }
        )
    return {
        "output_column_name": column,
        "comparison_description": field,
        "comparison_levels": rows,
    }


def starting_settings() -> dict[str, Any]:
    """The untrained model: what is compared, how pairs are blocked, the starting values."""
    creator = SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="customer_id",
        comparisons=[_comparison(column) for column in _LEVELS],
        blocking_rules_to_generate_predictions=[block_on(*key) for key in BLOCKING_KEYS],
        probability_two_random_records_match=_PRIOR,
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=True,
    )
    return creator.create_settings_dict("duckdb")


def _table(rows: Sequence[dict[str, Any]]) -> pa.Table:
    schema = pa.schema([("customer_id", pa.string())] + [(c, pa.string()) for c in FEATURE_COLUMNS])
    return pa.Table.from_pylist(list(rows), schema=schema)


def _linker(api: DuckDBAPI, rows: Sequence[dict[str, Any]], settings: dict[str, Any]) -> Linker:
    frame = api.register(_table(rows), table_name="profiles")
    return Linker(frame, settings, log_level=None)


def _api() -> DuckDBAPI:
    # Splink warns of levels a population never shows (an exact phone: no two live profiles
    # share one); their starting values stand, which is what we want, so no warning is printed.
    logging.getLogger("splink").setLevel(logging.ERROR)
    return DuckDBAPI(duckdb.connect(":memory:"))


def train(rows: Sequence[dict[str, Any]], min_profiles: int) -> dict[str, Any]:
    """The model with its parameters estimated from `rows` (every live profile's features),
    or the starting model when there are fewer than `min_profiles` of them."""
    settings = starting_settings()
    if len(rows) < min_profiles:
        return settings
    linker = _linker(_api(), rows, settings)
    training = linker.training
    training.estimate_probability_two_random_records_match(
        [block_on(*rule) for rule in _SURE_RULES], recall=_SURE_RULES_RECALL
    )
    training.estimate_u_using_random_sampling(max_pairs=_U_PAIRS, seed=20)
    for rule in _EM_RULES:
        training.estimate_parameters_using_expectation_maximisation(
            block_on(*rule), max_pairs=_EM_PAIRS, record_sample_proportion=1.0
        )
    return linker.misc.save_model_to_json()


def _evidence(row: dict[str, Any]) -> tuple[Evidence, ...]:
    found = []
    for column, (field, levels) in _LEVELS.items():
        gamma = row[f"gamma_{column}"]
        # Splink numbers levels from the last (0) up; the null level is -1.
        label = "missing" if gamma < 0 else levels[len(levels) - 1 - gamma][0]
        weight = float(row[f"mw_{column}"] or 0.0)
        found.append(Evidence(field=field, comparison=label, weight=round(weight, 4)))
    return tuple(found)


def _scored(records: list[dict[str, Any]]) -> list[ScoredPair]:
    pairs = []
    for row in records:
        left, right = sorted((row["customer_id_l"], row["customer_id_r"]))
        pairs.append(ScoredPair(left, right, float(row["match_probability"]), _evidence(row)))
    return pairs


def score_all(
    rows: Sequence[dict[str, Any]], model: dict[str, Any], threshold: float
) -> list[ScoredPair]:
    """Every blocked pair among `rows` whose match probability reaches `threshold`."""
    if len(rows) < 2:
        return []
    linker = _linker(_api(), rows, model)
    found = linker.inference.predict(threshold_match_probability=threshold, warning_mode="never")
    return _scored(found.as_record_list())


def score_against(
    changed: Sequence[dict[str, Any]],
    stored: Sequence[dict[str, Any]],
    model: dict[str, Any],
    threshold: float,
) -> list[ScoredPair]:
    """The blocked pairs of a changed profile with a stored one, or of two changed profiles,
    whose match probability reaches `threshold`: stored profiles are not paired together."""
    if not changed:
        return []
    api = _api()
    linker = _linker(api, changed, model)
    new = api.register(_table(changed), table_name="changed")
    pairs = _scored(
        linker.inference.predict_within(
            new, threshold_match_probability=threshold, warning_mode="never"
        ).as_record_list()
    )
    if stored:
        old = api.register(_table(stored), table_name="stored")
        between = linker.inference.predict_between(
            new, old, threshold_match_probability=threshold, warning_mode="never"
        )
        pairs += _scored(between.as_record_list())
    return pairs
