"""The one assembly point of the code location: assets, checks, resources, jobs, schedule, sensor.

`workspace.yaml` loads `defs` from here; the CLI calls `build_definitions` with its own options.
`deploy/workspace.yaml` loads `cluster_definitions`: the same definitions whose steps run on Celery
workers (deploy/README.md); on Kubernetes the chart's code server loads `k8s_definitions`, each step
a Kubernetes Job (deploy/kubernetes/). They are modules of their own: a module holds one code
location, which `dagster-webserver -m envfactory_dagster.definitions` finds without an attribute.
Domain partitions are the sub-folders of the resource catalog when the code location loads
(reload the code location in the UI after adding a domain folder).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import dagster as dg

from assets.automation import build_automation_sensor, build_daily_schedule, build_resource_file_sensor
from assets.catalog import build_resource_files_asset, catalogued
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

# Used on purpose and documented in the README (partitioned checks, the observed resource folders):
# not a warning per code-location load and per run step.
warnings.filterwarnings("ignore", category=dg.PreviewWarning, message=".*partitions_def on an AssetCheckSpec")
warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*observable_source_asset")


def build_assets(
    partitions: dg.PartitionsDefinition, code_version_overrides: dict[str, str] | None = None
) -> list[dg.AssetsDefinition]:
    """Every stage's assets with their catalog attributes (`assets/catalog.py`)."""
    built = [
        *build_ingest_assets(partitions),
        *build_envgen_assets(partitions),
        *build_querygen_assets(partitions),
        *build_export_assets(partitions),
    ]
    return [catalogued(assets_def, code_version_overrides) for assets_def in built]


def build_definitions(
    resources_directory: Path | None = None,
    home: str | None = None,
    llm_model: str | None = None,
    llm_api_base: str | None = None,
    gold_flows: list[str] | None = None,
    code_version_overrides: dict[str, str] | None = None,
    require_license: bool = False,
    executor: dg.ExecutorDefinition | None = None,
) -> dg.Definitions:
    """The code location for a resource directory and data directory (defaults: the environment's).

    An `llm_model` (any litellm model string; default `$ENVFACTORY_LLM_MODEL`) switches the
    LLM stages on for every role; finer settings (per-role models, budget) are the `llm`
    resource's config in the launchpad. `gold_flows`: gold call-sequence files `tool_graph` is
    scored against (default `$ENVFACTORY_GOLD_FLOWS`). `code_version_overrides` (module name ->
    source) stands for a code change when tests compute the stages' code versions.
    `require_license`: a resource without a stated licence fails its partition's ingest (default:
    recorded as 'unknown', a warning). `executor` runs every job's steps (default: Dagster's
    multiprocess executor; `execute_in_process` and `materialize()` run in-process regardless).
    """
    resources_directory = resources_directory or resources_dir()
    home = home or envfactory_home()
    llm_model = llm_model or os.environ.get(LLM_MODEL_ENV_VAR) or None
    llm_api_base = llm_api_base or os.environ.get(LLM_API_BASE_ENV_VAR) or None
    gold_flows = gold_flows if gold_flows is not None else gold_flow_files()
    partitions = dg.StaticPartitionsDefinition(list_domains(resources_directory))
    all_assets = build_assets(partitions, code_version_overrides)
    job = dg.define_asset_job(
        ALL_ASSETS_JOB,
        selection=dg.AssetSelection.all(),
        partitions_def=partitions,
        description="Every stage for a domain partition: what the CLI runs and the UI backfills.",
    )
    return dg.Definitions(
        executor=executor,
        assets=[build_resource_files_asset(partitions, resources_directory), *all_assets],
        jobs=[job],
        schedules=[build_daily_schedule(job, partitions)],
        sensors=[build_resource_file_sensor(job, resources_directory), build_automation_sensor()],
        resources={
            "settings": EnvFactorySettings(
                home=home,
                resources_dir=str(resources_directory),
                backend="llm" if llm_model else "template",
                gold_flows=gold_flows,
                require_license=require_license,
            ),
            "io_manager": ParquetPartitionIOManager(home=home, catalog_path=catalog_path(home)),
            "llm": LLMResource(default_model=llm_model, api_base=llm_api_base),
        },
    )


defs = build_definitions()
