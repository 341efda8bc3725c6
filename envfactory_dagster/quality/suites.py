"""The expectation suites of each asset (great-expectations, in code).

Each suite is a function of the partition's domain so "domain matches the partition" is one of
its expectations; the check names are the same for every domain (Dagster declares them once).
"""

from __future__ import annotations

from envfactory_dagster.ingest.authentic_resources import UNKNOWN_LICENSE
from envfactory_dagster.quality.expectations import Expectation


def authentic_resources_suite(domain: str, *, require_license: bool = False) -> list[Expectation]:
    """`license_known` warns unless `require_license` (the setting of that name) makes it blocking."""
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
            "license_known",
            "ExpectColumnValuesToNotBeInSet",
            {"column": "license", "value_set": [UNKNOWN_LICENSE]},
            "Every resource states its license (document or SOURCES.json manifest); an unknown one "
            "blocks only with the `require_license` setting.",
            warn_only=not require_license,
        ),
    ]


def verified_envs_suite(domain: str) -> list[Expectation]:
    """Over the registry rows; what one environment lacks (a write tool, schemas, tests) is a
    `registry_guards` reject, not a failed check."""
    return [
        Expectation(
            "every_environment_passed",
            "ExpectColumnValuesToBeInSet",
            {"column": "verification_passed", "value_set": [True]},
            "Only environments whose version passed sandboxed verification are in the registry.",
        ),
        Expectation(
            "domain_matches_partition",
            "ExpectColumnValuesToBeInSet",
            {"column": "domain", "value_set": [domain]},
            "Every row belongs to the partition's domain.",
        ),
    ]


def verified_envs_partition_suite(domain: str) -> list[Expectation]:
    """Over the one-row figures of the registry (`verified_env_rows` metrics)."""
    return [
        has_rows("has_environments", "kept", "The partition keeps at least one verified environment."),
        Expectation(
            "guard_rejects_at_most_20_percent",
            "ExpectColumnValuesToBeBetween",
            {"column": "guard_rejected_share", "max_value": 0.2},
            "At most 20% of the verified environments are kept out of the registry (no write tool "
            "although the source writes, a tool without schemas, too few tests, a duplicate); the "
            "`rejects` metadata says which and why.",
            warn_only=True,
        ),
    ]


def has_rows(name: str, column: str, description: str) -> Expectation:
    """A partition fails when nothing usable is left: the figure `column` is at least 1."""
    return Expectation(name, "ExpectColumnValuesToBeBetween", {"column": column, "min_value": 1}, description)


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
    """Over the kept trajectories; a trajectory that does not replay, writes nothing, takes an id
    across services or repeats an earlier one is a `trajectory_guards` reject, not a failed check."""
    return [
        Expectation(
            "domain_matches_partition",
            "ExpectColumnValuesToBeInSet",
            {"column": "domain", "value_set": [domain]},
            "Every row belongs to the partition's domain.",
        ),
        Expectation(
            "ids_unique", "ExpectColumnValuesToBeUnique", {"column": "id"}, "Trajectory ids are unique."
        ),
    ]


def trajectories_partition_suite(domain: str) -> list[Expectation]:
    """Over the one-row figures of the partition (`trajectories.partition_figures`)."""
    return [
        has_rows("has_trajectories", "trajectories", "The partition keeps at least one trajectory."),
        Expectation(
            "kept_at_least_half_of_the_chains",
            "ExpectColumnValuesToBeBetween",
            {"column": "kept_share", "min_value": 0.5},
            "At least half of the sampled chains become trajectories (losing most of them means the "
            "environments refuse what the sampler asks; the reject table says why).",
            warn_only=True,
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
    """Over the kept refined trajectories; an unproven value or a raw enum identifier is a
    `refinement_guards` reject, not a failed check."""
    return [
        Expectation(
            "domain_matches_partition",
            "ExpectColumnValuesToBeInSet",
            {"column": "domain", "value_set": [domain]},
            "Every row belongs to the partition's domain.",
        ),
        Expectation(
            "ids_unique",
            "ExpectColumnValuesToBeUnique",
            {"column": "id"},
            "Refined trajectory ids are unique.",
        ),
    ]


def refined_partition_suite(domain: str) -> list[Expectation]:
    """Over the one-row figures of the partition (`refined_trajectories.partition_figures`)."""
    return [
        has_rows(
            "has_refined_trajectories", "refined", "The partition keeps at least one refined trajectory."
        ),
        Expectation(
            "kept_at_least_80_percent",
            "ExpectColumnValuesToBeBetween",
            {"column": "kept_share", "min_value": 0.8},
            "At least 80% of the trajectories keep a provable first turn (the reasons of the others are "
            "in `refinement_rejects`).",
            warn_only=True,
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
    ]


def rl_tasks_suite(domain: str) -> list[Expectation]:
    """Over the kept tasks; a task whose gold calls miss full reward is an `rl_task_guards` reject."""
    return [
        Expectation("ids_unique", "ExpectColumnValuesToBeUnique", {"column": "id"}, "Task ids are unique."),
        Expectation(
            "domain_matches_partition",
            "ExpectColumnValuesToBeInSet",
            {"column": "domain", "value_set": [domain]},
            "Every row belongs to the partition's domain.",
        ),
    ]


def rl_tasks_partition_suite(domain: str) -> list[Expectation]:
    """Over the one-row figures of the partition's tasks and the guard that drops tasks whose gold
    calls miss full reward on their own record."""
    return [
        has_rows("has_tasks", "tasks", "The partition keeps at least one RL task."),
        Expectation(
            "gold_below_full_reward_at_most_1_percent",
            "ExpectColumnValuesToBeBetween",
            {"column": "guard_rejected_share", "max_value": 0.01},
            "At most 1% of the tasks are dropped because their stored gold calls miss full reward on "
            "the trajectory's record: more means the export disagrees with execution (masks, states "
            "or tool names), not a few odd rows; the `rejects` metadata names them.",
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
