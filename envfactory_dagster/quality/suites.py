"""The expectation suites of each asset (great-expectations, in code).

Each suite is a function of the partition's domain so "domain matches the partition" is one of
its expectations; the check names are the same for every domain (Dagster declares them once).
"""

from __future__ import annotations

from envfactory_dagster.quality.expectations import Expectation


def authentic_resources_suite(domain: str) -> list[Expectation]:
    return [
        Expectation("ids_unique", "ExpectColumnValuesToBeUnique", {"column": "id"}, "Resource ids are unique."),
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
