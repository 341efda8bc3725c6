"""The code location loads and validates; partitions follow the resource directory."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest

from envfactory_dagster.definitions import ALL_ASSETS_JOB, build_definitions, defs
from tests.conftest import BUNDLED_CATALOG, REALWORLD

DOMAINS = ["academia", "commerce", "finance", "lifestyle", "office", "travel", "utilities"]


def test_module_level_definitions_validate() -> None:
    dg.Definitions.validate_loadable(defs)
    job = defs.resolve_job_def(ALL_ASSETS_JOB)
    assert sorted(job.partitions_def.get_partition_keys()) == DOMAINS


def test_partitions_are_the_folders_of_the_resource_directory(tmp_path: Path) -> None:
    realworld = build_definitions(REALWORLD, str(tmp_path))
    keys = realworld.resolve_job_def(ALL_ASSETS_JOB).partitions_def.get_partition_keys()
    assert sorted(keys) == sorted(p.name for p in REALWORLD.iterdir() if p.is_dir())


def test_assets_are_grouped_by_stage_and_partitioned_by_domain(tmp_path: Path) -> None:
    built = build_definitions(BUNDLED_CATALOG, str(tmp_path))
    graph = built.resolve_asset_graph()
    groups = {key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert groups["authentic_resources"] == "ingest"
    for key in graph.get_all_asset_keys():
        assert graph.get(key).partitions_def is not None, key


def test_schedule_requests_one_run_per_domain(tmp_path: Path) -> None:
    built = build_definitions(BUNDLED_CATALOG, str(tmp_path))
    schedule = built.resolve_schedule_def("envfactory_daily")
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 11, 25, 3), repository_def=built.get_repository_def()
    )
    requests = list(schedule.evaluate_tick(context).run_requests)
    assert sorted(r.partition_key for r in requests) == DOMAINS
    assert len({r.run_key for r in requests}) == len(DOMAINS)


def test_cluster_code_locations_run_steps_on_their_executors(monkeypatch: pytest.MonkeyPatch) -> None:
    """deploy/workspace.yaml's `cluster_definitions` (Celery) and the chart's `k8s_definitions`
    (Kubernetes Jobs) hold the same assets as `defs`; only the executor differs."""
    from envfactory_dagster import cluster_definitions, k8s_definitions

    monkeypatch.setenv("ENVFACTORY_CELERY_BROKER", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("ENVFACTORY_CELERY_BACKEND", "redis://127.0.0.1:6379/1")
    keys = defs.resolve_asset_graph().get_all_asset_keys()
    for built, executor in ((cluster_definitions.defs(), "celery"), (k8s_definitions.defs(), "k8s")):
        dg.Definitions.validate_loadable(built)
        assert built.resolve_asset_graph().get_all_asset_keys() == keys
        assert built.resolve_job_def(ALL_ASSETS_JOB).executor_def.name == executor
