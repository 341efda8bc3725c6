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
