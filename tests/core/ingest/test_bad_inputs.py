"""Bad input becomes an error row with a clear reason; the rest of the domain still ingests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envfactory_dagster.ingest import authentic_resources
from envfactory_dagster.ingest.authentic_resources import ingest_domain, list_domains
from envfactory_dagster.ingest.errors import ResourceParseError
from envfactory_dagster.ingest.resource_file import parse_resource_file

BAD_INPUTS = Path(__file__).resolve().parents[2] / "data" / "bad_inputs"

EXPECTED_ERRORS = {
    "shop/invalid_yaml.yaml": ("invalid_yaml", "line 5, column 11"),
    "shop/invalid_json.json": ("invalid_json", "line 1, column 58"),
    "shop/unknown_format.yaml": ("unknown_format", "keys [services]"),
    "shop/circular_ref_cycle.yaml": ("circular_ref", "Thing -> Item -> Thing"),
    "shop/circular_self_reference.json": ("circular_ref", "Loop -> Loop"),
    "shop/not_utf8.yaml": ("not_utf8", "0xe9 at offset 33"),
    "shop/empty.yaml": ("empty_file", "empty"),
    "shop/duplicate_operation_ids.yaml": (
        "duplicate_operation_id",
        "'getOrders' on GET /orders, GET /orders/archived",
    ),
    "shop/external_ref.yaml": ("external_ref", "common.yaml#/components/schemas/Customer"),
    "shop/unresolved_ref.yaml": ("unresolved_ref", "#/components/schemas/Invoice"),
    "shop/no_operations.yaml": ("no_operations", "no path has an HTTP operation"),
    "shop/function_catalog_bad_parameters.json": (
        "invalid_spec",
        "function 'convert_currency': 'parameters' is a str, not an object of named parameters",
    ),
    "shop/function_catalog_duplicate_names.json": (
        "duplicate_operation_id",
        "'get_weather' on entry 1, entry 2",
    ),
    "shop/function_catalog_unnamed.json": ("invalid_spec", "catalog entry 2 has no function name"),
    "shop/function_catalog_empty.json": ("no_operations", "the function catalog is an empty list"),
}


def test_each_bad_file_is_one_error_row_with_its_kind_and_a_reason_naming_the_problem() -> None:
    result = ingest_domain(BAD_INPUTS, "shop")
    errors = {row["source_path"]: row for row in result.errors}
    assert set(errors) == set(EXPECTED_ERRORS)
    for source_path, (kind, detail) in EXPECTED_ERRORS.items():
        assert errors[source_path]["error_kind"] == kind, errors[source_path]
        assert detail in errors[source_path]["reason"], errors[source_path]
        assert errors[source_path]["domain"] == "shop"
    assert len({kind for kind, _ in EXPECTED_ERRORS.values()}) >= 8


def test_good_files_beside_bad_ones_still_become_resources() -> None:
    result = ingest_domain(BAD_INPUTS, "shop")
    rows = {row["source_path"]: row for row in result.resources}
    assert set(rows) == {"shop/good_store.yaml", "shop/circular_but_fine.yaml"}
    assert rows["shop/good_store.yaml"]["license"] == "CC0-1.0"  # from the domain's SOURCES.json
    assert rows["shop/circular_but_fine.yaml"]["license"] == "unknown"  # stated nowhere
    assert result.metrics["files_seen"] == len(EXPECTED_ERRORS) + 2  # hidden draft and manifest skipped
    assert result.metrics["errors_by_kind"]["circular_ref"] == 2


def test_parse_resource_file_raises_with_path_and_reason() -> None:
    path = BAD_INPUTS / "shop" / "duplicate_operation_ids.yaml"
    with pytest.raises(ResourceParseError) as raised:
        parse_resource_file(path)
    assert raised.value.path == path and raised.value.kind == "duplicate_operation_id"
    assert str(path) in str(raised.value) and "getOrders" in raised.value.reason


def test_list_domains_skips_hidden_folders_and_files(tmp_path: Path) -> None:
    for name in ("travel", "commerce", ".cache"):
        (tmp_path / name).mkdir()
    (tmp_path / "README.md").write_text("# not a domain\n")
    assert list_domains(tmp_path) == ["commerce", "travel"]


def _ten_megabyte_openapi(path: Path) -> int:
    """A valid OpenAPI document of a little over 10 MB: many operations, long descriptions."""
    description = "Lists the widgets of one bucket. " * 12
    paths = {
        f"/buckets/b{i}/widgets": {
            "get": {
                "operationId": f"listWidgets{i}",
                "description": description,
                "responses": {"200": {"description": "ok"}},
            }
        }
        for i in range(22_000)
    }
    path.write_text(
        json.dumps({"openapi": "3.0.3", "info": {"title": "Huge", "version": "1"}, "paths": paths})
    )
    return path.stat().st_size


def test_ten_megabyte_file_parses_under_the_default_limit_and_is_too_large_under_a_small_one(
    tmp_path: Path,
) -> None:
    """Our call: the default limit (20 MB) admits a 10 MB document, a real if unusual size (large
    vendor specs reach several MB); a deployment that wants it refused lowers `max_bytes`."""
    domain = tmp_path / "bulk"
    domain.mkdir()
    size = _ten_megabyte_openapi(domain / "huge.json")
    (domain / "small.yaml").write_bytes((BAD_INPUTS / "shop" / "good_store.yaml").read_bytes())
    assert size > 10 * 1024 * 1024

    admitted = ingest_domain(tmp_path, "bulk")
    assert admitted.errors == []
    assert {row["operation_count"] for row in admitted.resources} == {22_000, 1}

    limited = ingest_domain(tmp_path, "bulk", max_bytes=1024 * 1024)
    assert [(e["source_path"], e["error_kind"]) for e in limited.errors] == [("bulk/huge.json", "too_large")]
    assert f"{size:,} bytes" in limited.errors[0]["reason"] and "1,048,576" in limited.errors[0]["reason"]
    assert [row["source_path"] for row in limited.resources] == ["bulk/small.yaml"]


def test_unreadable_file_is_an_error_with_the_os_reason(tmp_path: Path) -> None:
    with pytest.raises(ResourceParseError) as raised:
        parse_resource_file(tmp_path / "vanished.yaml")
    assert raised.value.kind == "unreadable" and "No such file" in raised.value.reason


def test_dangling_links_and_folders_are_not_resource_files(tmp_path: Path) -> None:
    domain = tmp_path / "office"
    (domain / "nested" / "looks_like_a_file.yaml").mkdir(parents=True)
    (domain / "dangling.yaml").symlink_to(tmp_path / "missing.yaml")
    result = ingest_domain(tmp_path, "office")
    assert result.resources == [] and result.errors == [] and result.metrics["files_seen"] == 0


def test_a_parser_bug_on_one_file_is_an_error_row_naming_the_exception(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    domain = tmp_path / "shop"
    domain.mkdir()
    (domain / "a.yaml").write_bytes((BAD_INPUTS / "shop" / "good_store.yaml").read_bytes())
    (domain / "b.yaml").write_text("openapi: 3.0.3\n")
    real_parse = authentic_resources.parse_resource_bytes

    def parse_failing_on_b(data: bytes, path: Path):
        if path.name == "b.yaml":
            raise KeyError("surprise")
        return real_parse(data, path)

    monkeypatch.setattr(authentic_resources, "parse_resource_bytes", parse_failing_on_b)
    result = ingest_domain(tmp_path, "shop")
    assert [row["source_path"] for row in result.resources] == ["shop/a.yaml"]
    assert result.errors == [
        {
            "domain": "shop",
            "source_path": "shop/b.yaml",
            "reason": "the parser failed unexpectedly: KeyError: 'surprise'",
            "error_kind": "internal_error",
        }
    ]
