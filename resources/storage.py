"""The IO manager: every asset partition as atomic Parquet, plus the DuckDB catalog of views."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pandas as pd

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
        frame["code_version"] = CODE_VERSION
        frame["created_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        store = self._store()
        path = store.write(asset, domain, frame)
        if not is_url(self.home):
            ensure_views(self.catalog_path, {asset: store.glob(asset)})
        context.add_output_metadata(
            {
                "dagster/row_count": len(frame),
                "dagster/column_schema": dg.TableSchema(
                    columns=[dg.TableColumn(name=str(c), type=str(t)) for c, t in frame.dtypes.items()]
                ),
                "path": dg.MetadataValue.path(path),
                "preview": dg.MetadataValue.md(markdown_preview(obj)),
            }
        )

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        asset = context.asset_key.path[-1]
        return self._store().read(asset, context.asset_partition_key)


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
