"""`authentic_resources` + `resource_errors` materialized for one partition, checks included."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg
import pytest

from envfactory_dagster.definitions import build_definitions
from envfactory_dagster.settings import catalog_path
from envfactory_dagster.storage.duckdb_catalog import query
from tests.conftest import REALWORLD


def make_resources_dir(root: Path) -> Path:
    domain = root / "resources" / "travel"
    domain.mkdir(parents=True)
    for path in (REALWORLD / "travel").iterdir():
        shutil.copy(path, domain / path.name)
    (domain / "broken.yaml").write_text("openapi: 3.0.0\ninfo: [unclosed\n")
    (domain / "notes.json").write_text(json.dumps({"hello": "world"}))
    shutil.copy(REALWORLD / "SOURCES.json", root / "resources" / "SOURCES.json")
    return root / "resources"


def test_partition_materializes_with_error_rows_and_passing_checks(tmp_path: Path) -> None:
    resources_dir = make_resources_dir(tmp_path)
    home = str(tmp_path / "home")
    built = build_definitions(resources_dir, home)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            list(built.assets),
            partition_key="travel",
            instance=instance,
            resources=built.resources,
            selection=dg.AssetSelection.assets("authentic_resources", "resource_errors"),
        )
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks), [c.check_name for c in checks if not c.passed]
    catalog = catalog_path(home)
    assert query(catalog, "SELECT count(*), min(operation_count) FROM authentic_resources") == [(3, 1)]
    errors = dict(query(catalog, "SELECT source_path, error_kind FROM resource_errors"))
    assert errors == {"travel/broken.yaml": "invalid_yaml", "travel/notes.json": "unknown_format"}
    lineage = query(catalog, "SELECT DISTINCT dagster_run_id, code_version FROM authentic_resources")
    assert lineage == [(result.run_id, lineage[0][1])]
    materializations = result.asset_materializations_for_node("ingest")
    metadata = {m.asset_key.to_user_string(): m.metadata for m in materializations}
    assert metadata["authentic_resources"]["dagster/row_count"].value == 3
    assert "preview" in metadata["authentic_resources"]


def _unlicensed_catalog(tmp_path: Path) -> Path:
    resources_dir = tmp_path / "resources"
    (resources_dir / "office").mkdir(parents=True)
    # A valid document without a license and with no manifest.
    (resources_dir / "office" / "notes.yaml").write_text(
        "openapi: 3.0.3\ninfo: {title: Notes, version: '1'}\n"
        "paths:\n  /notes:\n    get:\n      operationId: listNotes\n"
        "      responses: {'200': {description: ok}}\n"
    )
    return resources_dir


@pytest.mark.parametrize("require_license", [False, True])
def test_unknown_license_warns_and_blocks_only_when_required(tmp_path: Path, require_license: bool) -> None:
    built = build_definitions(
        _unlicensed_catalog(tmp_path), str(tmp_path / "home"), require_license=require_license
    )
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            list(built.assets),
            partition_key="office",
            instance=instance,
            resources=built.resources,
            selection=dg.AssetSelection.assets("authentic_resources", "resource_errors", "env_proposals"),
            raise_on_error=False,
        )
    failed = {c.check_name: c.severity for c in result.get_asset_check_evaluations() if not c.passed}
    expected = dg.AssetCheckSeverity.ERROR if require_license else dg.AssetCheckSeverity.WARN
    assert failed == {"license_known": expected}
    materialized = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()}
    assert ("env_proposals" in materialized) is not require_license
    ingest_metadata = result.asset_materializations_for_node("ingest")[0].metadata
    assert ingest_metadata["unknown_license"].value == 1
