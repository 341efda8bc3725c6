"""A changed domain folder re-materializes that domain, declaratively: the sensor observes the
folder's new fingerprint on `resource_files`, and `AutomationCondition.eager()` requests every
asset of that partition, nothing of the others."""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg
import pytest

from assets.catalog import RESOURCE_FILES
from envfactory_dagster.definitions import build_definitions
from envfactory_dagster.resource_watch import domain_fingerprints

DOMAINS = ("office", "travel")


@pytest.fixture
def resources_dir(tmp_path: Path) -> Path:
    root = tmp_path / "resources"
    for domain in DOMAINS:
        (root / domain).mkdir(parents=True)
        (root / domain / "api.yaml").write_text(f"# {domain}\n")
    return root


def evaluate(sensor: dg.SensorDefinition, built: dg.Definitions, instance, cursor: str | None):
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, repository_def=built.get_repository_def()
    )
    return sensor.evaluate_tick(context)


def edit(resources_dir: Path, domain: str) -> None:
    changed = resources_dir / domain / "api.yaml"
    changed.write_text(f"# {domain}, edited\n")
    os.utime(changed, ns=(1, 1))
    (resources_dir / domain / "new.yaml").write_text("# new\n")


def test_sensor_observes_changed_domains_only(resources_dir: Path, tmp_path: Path) -> None:
    built = build_definitions(resources_dir, str(tmp_path / "home"))
    sensor = built.resolve_sensor_def("envfactory_resource_files")
    with dg.instance_for_test() as instance:
        first = evaluate(sensor, built, instance, None)
        assert not first.asset_events and first.cursor  # the first tick only records the state
        assert not evaluate(sensor, built, instance, first.cursor).asset_events
        edit(resources_dir, "travel")
        after = evaluate(sensor, built, instance, first.cursor)
    assert [(e.asset_key.to_user_string(), e.partition) for e in after.asset_events] == [
        (RESOURCE_FILES, "travel")
    ]


def test_changed_folder_requests_its_partition_of_every_asset(resources_dir: Path, tmp_path: Path) -> None:
    built = build_definitions(resources_dir, str(tmp_path / "home"))
    graph = built.resolve_asset_graph()
    materializable = [k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable]
    with dg.instance_for_test() as instance:
        for domain in DOMAINS:  # every domain observed and fully materialized once
            instance.report_runless_asset_event(
                dg.AssetObservation(RESOURCE_FILES, partition=domain, tags={"dagster/data_version": "v1"})
            )
            for key in materializable:
                instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=domain))
        settled = dg.evaluate_automation_conditions(built, instance)
        assert settled.total_requested == 0  # nothing changed: nothing to do
        settled = dg.evaluate_automation_conditions(built, instance, cursor=settled.cursor)
        assert settled.total_requested == 0

        before = json.dumps(domain_fingerprints(resources_dir))  # the sensor's cursor
        edit(resources_dir, "travel")
        sensor = built.resolve_sensor_def("envfactory_resource_files")
        observed = evaluate(sensor, built, instance, before)
        for event in observed.asset_events:
            instance.report_runless_asset_event(event)
        result = dg.evaluate_automation_conditions(built, instance, cursor=settled.cursor)
    requested = {k.to_user_string(): result.get_requested_partitions(k) for k in materializable}
    assert requested == {key: {"travel"} for key in requested}
