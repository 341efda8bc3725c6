"""The resource-file sensor asks for runs of exactly the domains whose files changed."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from envfactory_dagster.definitions import build_definitions


def evaluate(sensor: dg.SensorDefinition, built: dg.Definitions, cursor: str | None) -> dg.SensorResult:
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(
            instance=instance, cursor=cursor, repository_def=built.get_repository_def()
        )
        return sensor.evaluate_tick(context)


def test_sensor_requests_runs_for_changed_domains_only(tmp_path: Path) -> None:
    resources_dir = tmp_path / "resources"
    for domain in ("office", "travel"):
        (resources_dir / domain).mkdir(parents=True)
        (resources_dir / domain / "api.yaml").write_text(f"# {domain}\n")
    built = build_definitions(resources_dir, str(tmp_path / "home"))
    sensor = built.resolve_sensor_def("envfactory_resource_files")

    first = evaluate(sensor, built, None)
    assert not first.run_requests and first.cursor  # the first tick only records the state
    unchanged = evaluate(sensor, built, first.cursor)
    assert not unchanged.run_requests

    changed = resources_dir / "travel" / "api.yaml"
    changed.write_text("# travel, edited\n")
    os.utime(changed, ns=(1, 1))
    (resources_dir / "travel" / "new.yaml").write_text("# new\n")
    after = evaluate(sensor, built, first.cursor)
    assert [r.partition_key for r in after.run_requests] == ["travel"]
