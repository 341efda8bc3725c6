"""The IO manager: every asset partition as atomic Parquet, plus the DuckDB catalog of views."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from envfactory_dagster.catalog.analyst_views import ANALYST_INPUTS, ensure_analyst_views
from envfactory_dagster.catalog.columns import documented_columns
from envfactory_dagster.catalog.summaries import asset_summary
from envfactory_dagster.lineage import CODE_VERSION
from envfactory_dagster.storage.duckdb_catalog import ensure_views
from envfactory_dagster.storage.object_store import is_url
from envfactory_dagster.storage.partition_store import PartitionStore

PREVIEW_ROWS = 5
PREVIEW_CELL_CHARS = 60


class ParquetPartitionIOManager(dg.ConfigurableIOManager):
    """Writes `<home>/<asset>/domain=<partition>/data.parquet` and keeps one DuckDB view per asset.

    For an object-store home (`s3://…`) the views are not touched here: steps may run on other
    machines, whose local catalog nobody reads; `envfactory catalog` (run at the end of
    `envfactory materialize` / `submit`) builds the catalog from the bucket's listing.

    Stamps the run lineage columns (`dagster_run_id`, `code_version`, `created_at`) on every row,
    so ids computed by the core stay reproducible while each row still names the run that wrote it.
    """

    home: str
    catalog_path: str

    def _store(self) -> PartitionStore:
        return PartitionStore(self.home)

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        if not isinstance(obj, pd.DataFrame):
            raise TypeError(f"asset {context.asset_key.to_user_string()} must return a pandas DataFrame")
        asset = context.asset_key.path[-1]
        domain = context.partition_key
        frame = obj.copy()
        frame["dagster_run_id"] = context.run_id
        frame["code_version"] = _stage_code_version(context)
        frame["created_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        store = self._store()
        path = store.write(asset, domain, frame)
        if not is_url(self.home):
            ensure_views(self.catalog_path, {asset: store.glob(asset)})
            if asset in ANALYST_INPUTS:
                ensure_analyst_views(self.catalog_path)
        rows_per_domain = {d: _parquet_metadata(store, asset, d).num_rows for d in store.domains(asset)}
        summary = asset_summary(asset, obj, rows_per_domain)
        context.add_output_metadata(
            {
                "dagster/row_count": len(frame),
                "total_row_count": sum(rows_per_domain.values()),
                **({"summary": dg.MetadataValue.md(summary)} if summary else {}),
                "dagster/column_schema": stored_column_schema(asset, _parquet_schema(store, asset, domain)),
                "path": dg.MetadataValue.path(path),
                "preview": dg.MetadataValue.md(markdown_preview(obj)),
            }
        )

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        asset = context.asset_key.path[-1]
        return self._store().read(asset, context.asset_partition_key)


def _stage_code_version(context: dg.OutputContext) -> str:
    """The asset's Dagster code version (per stage, `catalog.code_versions`); the lineage
    constant for an output outside a job (a direct IO-manager test)."""
    try:
        graph = context.step_context.job_def.asset_layer.asset_graph
    except Exception:  # no step context: an IO manager called on its own
        return CODE_VERSION
    return graph.get(context.asset_key).code_version or CODE_VERSION


def stored_column_schema(asset: str, stored: pa.Schema) -> dg.TableSchema:
    """The documented columns with the type each has in the written Parquet file (the documented
    type where the partition stored only nulls), then any undocumented column as stored."""
    documented = {name: (type_, text) for name, type_, text in documented_columns(asset)}
    columns = []
    for field in stored:
        type_, description = documented.get(field.name, (None, None))
        real = _type_name(field.type)
        if type_ and (real in {"null", "list<null>"} or (type_, real) == ("json", "string")):
            real = type_  # all-null in this partition, or a string column documented as JSON
        columns.append(dg.TableColumn(name=field.name, type=real, description=description))
    return dg.TableSchema(columns=columns)


def _parquet_metadata(store: PartitionStore, asset: str, domain: str) -> pq.FileMetaData:
    with store.partition_path(asset, domain).open("rb") as handle:
        return pq.ParquetFile(handle).metadata


def _parquet_schema(store: PartitionStore, asset: str, domain: str) -> pa.Schema:
    return _parquet_metadata(store, asset, domain).schema.to_arrow_schema()


def _type_name(arrow_type: pa.DataType) -> str:
    """Arrow types named as `catalog.columns` documents them (`large_string` is `string`...)."""
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return f"list<{_type_name(arrow_type.value_type)}>"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    if pa.types.is_boolean(arrow_type):
        return "bool"
    return str(arrow_type)


def markdown_preview(frame: pd.DataFrame) -> str:
    """The first rows as a Markdown table, long cells cut, for the asset's metadata."""
    if frame.empty:
        return "_no rows_"
    head = frame.head(PREVIEW_ROWS).copy()
    for column in head.columns:
        head[column] = head[column].map(lambda v: _cut(str(v)))
    return head.to_markdown(index=False)


def _cut(text: str) -> str:
    text = text.replace("\n", " ").replace("|", "\\|")
    return text if len(text) <= PREVIEW_CELL_CHARS else text[: PREVIEW_CELL_CHARS - 1] + "…"
