"""Stage `ingest`: authentic resource files of a domain -> `authentic_resources` + `resource_errors`."""

# No `from __future__ import annotations` here: Dagster reads the `context` annotation at runtime.

import functools
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd

from assets.checks import check_results, check_specs
from assets.metadata import as_metadata
from envfactory_dagster.ingest.authentic_resources import ingest_domain
from envfactory_dagster.lineage import CODE_VERSION
from envfactory_dagster.quality.suites import authentic_resources_suite
from resources.settings import EnvFactorySettings

# Column order of the two tables (also what an empty partition is written with).
RESOURCE_COLUMNS = (
    "id",
    "domain",
    "kind",
    "title",
    "source_path",
    "license",
    "operation_count",
    "content_sha256",
    "size_bytes",
    "spec_json",
    "resource_ids",
)
RESOURCE_ERROR_COLUMNS = ("domain", "source_path", "reason", "error_kind")


def build_ingest_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.multi_asset(
        outs={
            "authentic_resources": dg.AssetOut(
                description="One row per authentic resource (API description) of the domain: kind, "
                "title, license, operation count, normalized spec JSON, content-hash id.",
                code_version=CODE_VERSION,
                is_required=False,
            ),
            "resource_errors": dg.AssetOut(
                description="Files of the domain that could not be ingested, each with its reason.",
                code_version=CODE_VERSION,
                is_required=False,
            ),
        },
        partitions_def=partitions,
        group_name="ingest",
        can_subset=True,
        # declared blocking as if licences were required; the run's setting decides each result's severity
        check_specs=check_specs(
            "authentic_resources",
            functools.partial(authentic_resources_suite, require_license=True),
            blocking=True,
            partitions=partitions,
        ),
    )
    def ingest(context: dg.AssetExecutionContext, settings: EnvFactorySettings) -> Iterator:
        """Parse every file of the domain's folder (OpenAPI 3, Swagger 2, MCP listings, Markdown docs)."""
        domain = context.partition_key
        result = ingest_domain(Path(settings.resources_dir), domain, settings.max_resource_bytes)
        resources = pd.DataFrame(result.resources, columns=RESOURCE_COLUMNS)
        errors = pd.DataFrame(result.errors, columns=RESOURCE_ERROR_COLUMNS)
        for error in result.errors:
            context.log.warning(f"{error['source_path']}: {error['reason']}")
        selected = context.selected_output_names
        if "authentic_resources" in selected:
            metrics = as_metadata({"errors": len(errors), **result.metrics})
            yield dg.Output(resources, output_name="authentic_resources", metadata=metrics)
            suite = functools.partial(authentic_resources_suite, require_license=settings.require_license)
            yield from check_results("authentic_resources", suite, resources, domain)
        if "resource_errors" in selected:
            by_kind = errors["error_kind"].value_counts().to_dict()
            yield dg.Output(
                errors, output_name="resource_errors", metadata=as_metadata({"errors_by_kind": by_kind})
            )

    return [ingest]
