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
        Expectation(
            "chains_valid",
            "ExpectColumnValuesToBeInSet",
            {"column": "valid", "value_set": [True]},
            "Every chain's required inputs are satisfiable by its prefix or by the user (validate_chain).",
        ),
        Expectation("ids_unique", "ExpectColumnValuesToBeUnique", {"column": "id"}, "Chain ids are unique."),
        Expectation(
            "domain_matches_partition",
            "ExpectColumnValuesToBeInSet",
            {"column": "domain", "value_set": [domain]},
            "Every row belongs to the partition's domain.",
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
            "no_tool_name_in_queries",
            "ExpectColumnValuesToBeInSet",
            {"column": "query_leaks_tool_name", "value_set": [False]},
            "No user query names a tool or an identifier-like parameter.",
        ),
        Expectation(
            "no_exact_duplicates",
            "ExpectColumnValuesToBeUnique",
            {"column": "calls_signature"},
            "No two trajectories make the same calls with the same arguments.",
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


def refined_trajectories_suite(domain: str) -> list[Expectation]:
    return [
        Expectation(
            "grounding_proofs_pass",
            "ExpectColumnValuesToBeInSet",
            {"column": "proofs_failed", "value_set": [0]},
            "Every hidden or rewritten value has a grounding proof that passed by execution.",
        ),
        Expectation(
            "median_implicitness_at_least_0_3",
            "ExpectColumnMedianToBeBetween",
            {"column": "implicitness_mean", "min_value": 0.3},
            "The median share of gold argument values not written in the query is at least 0.3.",
            warn_only=True,
        ),
        Expectation(
            "domain_matches_partition",
            "ExpectColumnValuesToBeInSet",
            {"column": "domain", "value_set": [domain]},
            "Every row belongs to the partition's domain.",
        ),
    ]


def rl_tasks_suite(domain: str) -> list[Expectation]:
    return [
        Expectation(
            "gold_replays_to_full_reward",
            "ExpectColumnValuesToBeBetween",
            {"column": "gold_reward", "min_value": 1.0, "max_value": 1.0},
            "Replaying every task's gold calls from its stored initial states gives reward 1.0.",
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
