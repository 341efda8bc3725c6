"""The one assembly point of the code location: assets, checks, resources, jobs, schedule, sensor.

`workspace.yaml` loads `defs` from here; the CLI calls `build_definitions` with its own options.
`deploy/workspace.yaml` loads `cluster_defs`: the same definitions whose steps run on Celery
workers (deploy/README.md); on Kubernetes the chart's code server loads `k8s_defs`, each step a
Kubernetes Job (deploy/kubernetes/).
Domain partitions are the sub-folders of the resource catalog when the code location loads
(reload the code location in the UI after adding a domain folder).
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from assets.automation import build_daily_schedule, build_resource_file_sensor
from assets.envgen import build_envgen_assets
from assets.export import build_export_assets
from assets.ingest import build_ingest_assets
from assets.querygen import build_querygen_assets
from envfactory_dagster.ingest.authentic_resources import list_domains
from envfactory_dagster.settings import (
    LLM_API_BASE_ENV_VAR,
    LLM_MODEL_ENV_VAR,
    catalog_path,
    envfactory_home,
    gold_flow_files,
    resources_dir,
)
from resources.llm import LLMResource
from resources.settings import EnvFactorySettings
from resources.storage import ParquetPartitionIOManager

ALL_ASSETS_JOB = "envfactory_all"
CELERY_BROKER_ENV_VAR = "ENVFACTORY_CELERY_BROKER"  # e.g. redis://127.0.0.1:6379/0
CELERY_BACKEND_ENV_VAR = "ENVFACTORY_CELERY_BACKEND"  # e.g. redis://127.0.0.1:6379/1


def build_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [
        *build_ingest_assets(partitions),
        *build_envgen_assets(partitions),
        *build_querygen_assets(partitions),
        *build_export_assets(partitions),
    ]


def build_definitions(
    resources_directory: Path | None = None,
    home: str | None = None,
    llm_model: str | None = None,
    llm_api_base: str | None = None,
    gold_flows: list[str] | None = None,
    executor: dg.ExecutorDefinition | None = None,
) -> dg.Definitions:
    """The code location for a resource directory and data directory (defaults: the environment's).

    An `llm_model` (any litellm model string; default `$ENVFACTORY_LLM_MODEL`) switches the
    LLM stages on for every role; finer settings (per-role models, budget) are the `llm`
    resource's config in the launchpad. `gold_flows`: gold call-sequence files `tool_graph` is
    scored against (default `$ENVFACTORY_GOLD_FLOWS`). `executor` runs every job's steps (default:
    Dagster's multiprocess executor; `materialize()` runs in-process regardless).
    """
    resources_directory = resources_directory or resources_dir()
    home = home or envfactory_home()
    llm_model = llm_model or os.environ.get(LLM_MODEL_ENV_VAR) or None
    llm_api_base = llm_api_base or os.environ.get(LLM_API_BASE_ENV_VAR) or None
    gold_flows = gold_flows if gold_flows is not None else gold_flow_files()
    partitions = dg.StaticPartitionsDefinition(list_domains(resources_directory))
    all_assets = build_assets(partitions)
    job = dg.define_asset_job(ALL_ASSETS_JOB, selection=dg.AssetSelection.all(), partitions_def=partitions)
    return dg.Definitions(
        executor=executor,
        assets=all_assets,
        jobs=[job],
        schedules=[build_daily_schedule(job, partitions)],
        sensors=[build_resource_file_sensor(job, resources_directory)],
        resources={
            "settings": EnvFactorySettings(
                home=home,
                resources_dir=str(resources_directory),
                backend="llm" if llm_model else "template",
                gold_flows=gold_flows,
            ),
            "io_manager": ParquetPartitionIOManager(home=home, catalog_path=catalog_path(home)),
            "llm": LLMResource(default_model=llm_model, api_base=llm_api_base),
        },
    )


def celery_step_executor() -> dg.ExecutorDefinition:
    """Each step as a Celery task on the workers listening to the broker (the `cluster` extra)."""
    from dagster_celery import celery_executor

    return celery_executor.configured(
        {"broker": {"env": CELERY_BROKER_ENV_VAR}, "backend": {"env": CELERY_BACKEND_ENV_VAR}},
        name="celery",
    )


def k8s_step_executor() -> dg.ExecutorDefinition:
    """Each step as a Kubernetes Job in the run's namespace, with the run's image (the `k8s` extra)."""
    from dagster_k8s import k8s_job_executor

    return k8s_job_executor


defs = build_definitions()


@dg.definitions
def cluster_defs() -> dg.Definitions:
    """The code location of a cluster deployment: `defs` with its steps on Celery workers."""
    return build_definitions(executor=celery_step_executor())


@dg.definitions
def k8s_defs() -> dg.Definitions:
    """The code location on Kubernetes (deploy/kubernetes/values.yaml): `defs`, each step a Job."""
    return build_definitions(executor=k8s_step_executor())
