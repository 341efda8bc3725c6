"""The expectation suites of each asset (great-expectations, in code).

Each suite is a function of the partition's domain so "domain matches the partition" is one of
its expectations; the check names are the same for every domain (Dagster declares them once).
"""

from __future__ import annotations

from envfactory_dagster.quality.expectations import Expectation


def authentic_resources_suite(domain: str) -> list[Expectation]:
    return [
        Expectation(
            "ids_unique", "ExpectColumnValuesToBeUnique", {"column": "id"}, "Resource ids are unique."
        ),
        *(
            Expectation(
                f"{column}_not_null",
                "ExpectColumnValuesToNotBeNull",
                {"column": column},
                f"Every resource has a {column}.",
            )
            for column in ("id", "kind", "title", "source_path", "spec_json", "content_sha256")
        ),
        Expectation(
            "domain_matches_partition",
            "ExpectColumnValuesToBeInSet",
            {"column": "domain", "value_set": [domain]},
            "Every row belongs to the partition's domain.",
        ),
        Expectation(
            "operation_count_positive",
            "ExpectColumnValuesToBeBetween",
            {"column": "operation_count", "min_value": 1},
            "Every resource describes at least one operation.",
        ),
        Expectation(
            "license_present",
            "ExpectColumnValuesToNotBeNull",
            {"column": "license"},
            "Every resource states its license (document or SOURCES.json manifest).",
        ),
    ]


def verified_envs_suite(domain: str) -> list[Expectation]:
    return [
        Expectation(
            "every_environment_passed",
            "ExpectColumnValuesToBeInSet",
            {"column": "verification_passed", "value_set": [True]},
            "Only environments whose version passed sandboxed verification are in the registry.",
        ),
        Expectation(
            "names_unique_in_domain",
            "ExpectColumnValuesToBeUnique",
            {"column": "class_name"},
            "Environment class names are unique within the domain.",
        ),
        Expectation(
            "tool_sets_distinct",
            "ExpectColumnValuesToBeUnique",
            {"column": "tool_signature"},
            "No two environments share the same set of tool signatures.",
        ),
        Expectation(
            "every_tool_has_schemas",
            "ExpectColumnPairValuesToBeEqual",
            {"column_A": "tools_with_schemas", "column_B": "tool_count"},
            "Every tool has an input and an output JSON schema.",
        ),
        Expectation(
            "has_write_tool",
            "ExpectColumnValuesToBeBetween",
            {
                "column": "write_tool_count",
                "min_value": 1,
                "row_condition": "read_only_source == False",
                "condition_parser": "pandas",
            },
            "Every environment has a write tool, unless its source API documents no write at all.",
        ),
        Expectation(
            "three_tests_per_tool",
            "ExpectColumnValuesToBeBetween",
            {"column": "min_tests_per_tool", "min_value": 3},
            "Verification ran at least three generated tests per tool.",
        ),
        Expectation(
            "domain_matches_partition",
            "ExpectColumnValuesToBeInSet",
            {"column": "domain", "value_set": [domain]},
            "Every row belongs to the partition's domain.",
        ),
    ]


def tool_chains_suite(domain: str) -> list[Expectation]:
    return [
        Expectation("ids_unique", "ExpectColumnValuesToBeUnique", {"column": "id"}, "Chain ids are unique."),
        Expectation(
            "domain_matches_partition",
            "ExpectColumnValuesToBeInSet",
            {"column": "domain", "value_set": [domain]},
            "Every row belongs to the partition's domain.",
        ),
    ]


def tool_chains_partition_suite(domain: str) -> list[Expectation]:
    """Over the one-row figures of the partition (invalid draws are dropped by the asset)."""
    return [
        Expectation(
            "valid_share_at_least_80_percent",
            "ExpectColumnValuesToBeBetween",
            {"column": "valid_share", "min_value": 0.8},
            "At least 80% of the sampled chains pass validate_chain (a falling share means the graph "
            "offers producers the sampler cannot use).",
            warn_only=True,
        ),
        Expectation(
            "has_chains",
            "ExpectColumnValuesToBeBetween",
            {"column": "chains", "min_value": 1},
            "The partition yields at least one chain.",
        ),
    ]


def trajectories_suite(domain: str) -> list[Expectation]:
    return [
        Expectation(
            "replays_identically",
            "ExpectColumnValuesToBeInSet",
            {"column": "replay_ok", "value_set": [True]},
            "Every trajectory replays from its initial states to byte-identical outputs and final states.",
        ),
        Expectation(
            "no_noop_writes",
            "ExpectColumnValuesToBeInSet",
            {"column": "noop_writes", "value_set": [0]},
            "No kept write call leaves the state as it was (read from the recorded state diffs).",
        ),
        Expectation(
            "no_ids_across_services",
            "ExpectColumnValuesToBeInSet",
            {"column": "cross_service_ids", "value_set": [0]},
            "No argument takes an id from another service's output or names another service's row.",
        ),
        Expectation(
            "near_duplicates_at_most_5_percent",
            "ExpectColumnValuesToBeInSet",
            {"column": "near_duplicate", "value_set": [False], "mostly": 0.95},
            "At most 5% of trajectories have an earlier near-duplicate (shingle Jaccard >= 0.8).",
        ),
        Expectation(
            "domain_matches_partition",
            "ExpectColumnValuesToBeInSet",
            {"column": "domain", "value_set": [domain]},
            "Every row belongs to the partition's domain.",
        ),
    ]


def trajectories_partition_suite(domain: str) -> list[Expectation]:
    """Over the one-row figures of the partition (`trajectories.partition_figures`)."""
    return [
        Expectation(
            "kept_at_least_half_of_the_chains",
            "ExpectColumnValuesToBeBetween",
            {"column": "kept_share", "min_value": 0.5},
            "At least half of the sampled chains become trajectories (losing most of them means the "
            "environments refuse what the sampler asks).",
        ),
        Expectation(
            "no_reject_kind_above_20_percent",
            "ExpectColumnValuesToBeBetween",
            {"column": "max_reject_share", "max_value": 0.2},
            "No single reject kind (tool error, unbound input, no-op write, ...) takes more than 20% "
            "of the chains; the reject table says which.",
            warn_only=True,
        ),
        Expectation(
            "median_calls_per_turn_1_to_3",
            "ExpectColumnValuesToBeBetween",
            {"column": "median_calls_per_turn", "min_value": 1, "max_value": 3},
            "A turn asks for one thing and the lookups it needs: median 1-3 calls per turn.",
            warn_only=True,
        ),
        Expectation(
            "median_turns_2_to_4",
            "ExpectColumnValuesToBeBetween",
            {"column": "median_turns", "min_value": 2, "max_value": 4},
            "Sessions have a median of 2-4 turns.",
            warn_only=True,
        ),
        Expectation(
            "at_length_cap_at_most_10_percent",
            "ExpectColumnValuesToBeBetween",
            {"column": "at_length_cap_share", "max_value": 0.1},
            "At most 10% of trajectories reach the length cap (chains are sized, not filled).",
            warn_only=True,
        ),
    ]


def refined_trajectories_suite(domain: str) -> list[Expectation]:
    return [
        Expectation(
            "grounding_proofs_pass",
            "ExpectColumnValuesToBeInSet",
            {"column": "proofs_failed", "value_set": [0]},
            "Every value a kept turn does not state, and every change it asks for, has a proof that "
            "holds on the final query and the recorded states.",
        ),
        Expectation(
            "domain_matches_partition",
            "ExpectColumnValuesToBeInSet",
            {"column": "domain", "value_set": [domain]},
            "Every row belongs to the partition's domain.",
        ),
    ]


def refined_partition_suite(domain: str) -> list[Expectation]:
    """Over the one-row figures of the partition (`refined_trajectories.partition_figures`)."""
    return [
        Expectation(
            "kept_at_least_80_percent",
            "ExpectColumnValuesToBeBetween",
            {"column": "kept_share", "min_value": 0.8},
            "At least 80% of the trajectories keep a provable first turn.",
        ),
        Expectation(
            "dropped_turns_at_most_15_percent",
            "ExpectColumnValuesToBeBetween",
            {"column": "dropped_turn_share", "max_value": 0.15},
            "At most 15% of turns are dropped as unprovable (the reasons are in `dropped_turns`).",
            warn_only=True,
        ),
        Expectation(
            "implicitness_uplift_at_least_0_2",
            "ExpectColumnValuesToBeBetween",
            {"column": "implicitness_uplift", "min_value": 0.2},
            "Refined queries leave at least 0.2 more of the values a user would state or describe "
            "unwritten than the explicit originals (mean over trajectories).",
            warn_only=True,
        ),
        Expectation(
            "distinct_3grams_at_least_0_25",
            "ExpectColumnValuesToBeBetween",
            {"column": "distinct_3gram_ratio", "min_value": 0.25},
            "Value-masked distinct word 3-grams / all 3-grams of the refined user turns >= 0.25.",
            warn_only=True,
        ),
        Expectation(
            "top4_openings_at_most_35_percent",
            "ExpectColumnValuesToBeBetween",
            {"column": "top4_opening_share", "max_value": 0.35},
            "The four most common first words start at most 35% of the refined user turns.",
            warn_only=True,
        ),
        Expectation(
            "no_raw_enum_identifiers",
            "ExpectColumnValuesToBeBetween",
            {"column": "raw_enum_turns", "max_value": 0},
            "No user turn writes an enum value of its environments as an identifier "
            "(`closed_cancelled`, `PENDING`) instead of words.",
        ),
    ]


def rl_tasks_suite(domain: str) -> list[Expectation]:
    return [
        Expectation(
            "gold_reaches_full_reward_on_record",
            "ExpectColumnValuesToBeBetween",
            {"column": "gold_reward", "min_value": 1.0, "max_value": 1.0},
            "Every stored task's gold calls reach reward 1.0 with the states its trajectory's record gives "
            "from the task's own initial states (no re-execution: the trajectories check replayed it).",
        ),
        Expectation("ids_unique", "ExpectColumnValuesToBeUnique", {"column": "id"}, "Task ids are unique."),
        Expectation(
            "domain_matches_partition",
            "ExpectColumnValuesToBeInSet",
            {"column": "domain", "value_set": [domain]},
            "Every row belongs to the partition's domain.",
        ),
    ]


def world_quality_suite(domain: str) -> list[Expectation]:
    """Thresholds on the world-quality figures (issue acceptance); they measure, nothing is filtered."""

    def between(name: str, column: str, low: float | None, high: float | None, text: str, warn: bool = True):
        bounds = {k: v for k, v in (("min_value", low), ("max_value", high)) if v is not None}
        return Expectation(
            name, "ExpectColumnValuesToBeBetween", {"column": column, **bounds}, text, warn_only=warn
        )

    return [
        between(
            "currency_codes_valid",
            "currency_valid_share",
            0.99,
            None,
            ">= 99% of currency values are ISO 4217.",
        ),
        between(
            "country_codes_valid",
            "country_valid_share",
            0.99,
            None,
            ">= 99% of country values are ISO 3166-1.",
        ),
        between(
            "no_inverted_pairs",
            "inverted_pairs",
            None,
            0,
            "No start-like field is after its end-like field.",
            False,
        ),
        between(
            "little_lorem", "lorem_only_share", None, 0.05, "<= 5% of free-text values are only lorem words."
        ),
        between("totals_consistent", "totals_consistent_share", 1.0, None, "Totals equal their parts."),
        between(
            "rules_on_writes",
            "write_tools_with_rules_share",
            0.3,
            None,
            ">= 30% of write tools carry a business rule.",
        ),
        between(
            "mutants_killed",
            "mutation_kill_rate",
            0.9,
            None,
            "Verification rejects >= 90% of rule mutants.",
            False,
        ),
        Expectation(
            "domain_matches_partition",
            "ExpectColumnValuesToBeInSet",
            {"column": "domain", "value_set": [domain]},
            "Every row belongs to the partition's domain.",
        ),
    ]
