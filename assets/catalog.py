"""What the Dagster catalog shows about every asset, applied in one place to the built assets.

Per stage group: owners and tags; per asset: kinds, a code version derived from the code that
computes it (`catalog.code_versions`), the documented column schema (`catalog.columns`), eager
declarative automation, and a freshness policy on the final training-data assets. The stage
modules stay about computing; this module is about how the result is catalogued.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import dagster as dg

from envfactory_dagster.catalog.code_versions import stage_code_version
from envfactory_dagster.catalog.columns import documented_columns
from envfactory_dagster.resource_watch import domain_fingerprints
from resources.settings import EnvFactorySettings

RESOURCE_FILES = "resource_files"
KINDS = {"python", "parquet", "duckdb"}
GROUP_OWNERS = {
    "ingest": ["team:envfactory-ingest"],
    "envgen": ["team:envfactory-envgen"],
    "querygen": ["team:envfactory-querygen"],
    "export": ["team:envfactory-export"],
}
GROUP_TAGS = {
    "ingest": {"envfactory/stage": "ingest", "envfactory/layer": "source"},
    "envgen": {"envfactory/stage": "envgen", "envfactory/layer": "registry"},
    "querygen": {"envfactory/stage": "querygen", "envfactory/layer": "intermediate"},
    "export": {"envfactory/stage": "export", "envfactory/layer": "training-data"},
}
# What trainers read: stale after two missed daily runs (the schedule runs at 03:00 UTC).
FINAL_ASSETS = ("sft_dataset", "rl_tasks")
FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=50), warn_window=timedelta(hours=26))


def compute_function(assets_def: dg.AssetsDefinition):
    """The Python function an asset definition runs (the decorated function)."""
    return assets_def.op.compute_fn.decorated_fn


def column_schema(asset: str) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=name, type=type_, description=description)
            for name, type_, description in documented_columns(asset)
        ]
    )


def catalogued(
    assets_def: dg.AssetsDefinition, code_version_overrides: Mapping[str, str] | None = None
) -> dg.AssetsDefinition:
    """The asset definition with its catalog attributes (see the module docstring).

    `code_version_overrides` (module name -> source text) stands for a code change; tests use it.
    """
    version = stage_code_version(compute_function(assets_def), code_version_overrides)

    def describe(spec: dg.AssetSpec) -> dg.AssetSpec:
        name = spec.key.to_user_string()
        group = spec.group_name or "default"
        deps = list(spec.deps)
        if group == "ingest":  # the domain's files: their observation triggers automation
            deps.append(dg.AssetDep(RESOURCE_FILES))
        return spec.replace_attributes(
            code_version=version,
            kinds=KINDS,
            owners=GROUP_OWNERS.get(group, []),
            tags={**spec.tags, **GROUP_TAGS.get(group, {})},
            metadata={**spec.metadata, "dagster/column_schema": column_schema(name)},
            automation_condition=dg.AutomationCondition.eager(),
            freshness_policy=FRESHNESS if name in FINAL_ASSETS else None,
            deps=deps,
        )

    return assets_def.map_asset_specs(describe)


def build_resource_files_asset(partitions: dg.PartitionsDefinition, resources_dir: Path):
    """The domain folders of the resource catalog as an observable source asset.

    Its data version per domain is the fingerprint of the folder's files: a new observation with
    a changed fingerprint is what `AutomationCondition.eager()` on the ingest assets reacts to.
    """

    @dg.observable_source_asset(
        name=RESOURCE_FILES,
        partitions_def=partitions,
        group_name="ingest",
        description="The authentic API documents of each domain folder of the resource catalog; "
        "data version = fingerprint of the folder's files (observed by `envfactory_resource_files`).",
        tags={**GROUP_TAGS["ingest"]},
        metadata={"resources_dir": dg.MetadataValue.path(str(resources_dir))},
        required_resource_keys={"settings"},
    )
    def resource_files(context) -> dg.DataVersionsByPartition:
        settings: EnvFactorySettings = context.resources.settings
        fingerprints = domain_fingerprints(Path(settings.resources_dir))
        known = set(partitions.get_partition_keys())
        return dg.DataVersionsByPartition(
            {domain: fingerprint for domain, fingerprint in fingerprints.items() if domain in known}
        )

    return resource_files
