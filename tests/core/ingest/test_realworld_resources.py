"""Every third-party file in ../shared/realworld ingests without special cases.

Parsing speed is measured in benchmarks/ingest_parse.py, not here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from envfactory_dagster.ingest.authentic_resources import ingest_domain, list_domains, resource_files
from envfactory_dagster.ingest.normalized_spec import NormalizedSpec
from envfactory_dagster.ingest.resource_file import parse_resource_file

REALWORLD = Path(
    os.environ.get("ENVFACTORY_REALWORLD_DIR", Path(__file__).resolve().parents[4] / "shared" / "realworld")
)
pytestmark = pytest.mark.skipif(not REALWORLD.is_dir(), reason=f"no real-world resources at {REALWORLD}")


def realworld_files() -> list[Path]:
    if not REALWORLD.is_dir():
        return []
    return [path for domain in list_domains(REALWORLD) for path in resource_files(REALWORLD, domain)]


@pytest.mark.parametrize("path", realworld_files(), ids=lambda p: p.relative_to(REALWORLD).as_posix())
def test_file_parses_with_operations_and_title(path: Path) -> None:
    spec = parse_resource_file(path)
    assert spec.title.strip()
    assert len(spec.operations) > 0
    ids = [op.operation_id for op in spec.operations]
    assert len(ids) == len(set(ids)), "operation ids are unique within a resource"
    assert all(op.response is None or isinstance(op.response, dict) for op in spec.operations)
    # The JSON form is what the asset stores: it must load back into the same model.
    assert NormalizedSpec.model_validate_json(spec.model_dump_json(by_alias=True)) == spec


def test_every_domain_ingests_without_errors_and_licenses_come_from_doc_or_manifest() -> None:
    rows = []
    for domain in list_domains(REALWORLD):
        result = ingest_domain(REALWORLD, domain)
        assert result.errors == [], result.errors
        assert result.metrics["files_seen"] == result.metrics["parsed"] > 0
        rows += result.resources
    assert len(rows) == len(realworld_files()) >= 10
    assert all(row["operation_count"] > 0 and row["license"] for row in rows)
    assert len({row["id"] for row in rows}) == len(rows)
    by_path = {row["source_path"]: row for row in rows}
    # Swagger 2 Amadeus documents say no license: the SOURCES.json manifest gives it.
    assert by_path["travel/amadeus_HotelBooking_v1.json"]["license"] == "MIT"
