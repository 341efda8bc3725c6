"""The DuckDB catalog: one view per asset over all its Parquet partitions.

The catalog file holds views only (path globs), so it is tiny and never held open by writers:
a DuckDB file admits one writing process, so each update takes a file lock, opens, creates the
view idempotently and closes. Analysts open it read-only while runs go on.

For an object-store home the views read `s3://…` globs through the home's fsspec filesystem,
registered on each connection (`connect`): DuckDB never needs its httpfs extension, and never tries
to download it (`autoinstall_known_extensions=false`; machines without internet stay quiet). The
catalog file itself is local (DuckDB needs a file); `refresh` rebuilds it from the home's listing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from filelock import FileLock

from envfactory_dagster.storage.object_store import filesystem, is_url
from envfactory_dagster.storage.partition_store import PartitionStore


def _view_sql(asset: str, glob: str) -> str:
    escaped = glob.replace("'", "''")
    return (
        f'CREATE OR REPLACE VIEW "{asset}" AS SELECT * FROM '
        f"read_parquet('{escaped}', hive_partitioning = true, union_by_name = true)"
    )


def connect(catalog_file: str, read_only: bool = True, home: str | None = None) -> Any:
    """A DuckDB connection to the catalog that can read the home's Parquet files.

    `home`: the data home the views point at; for an object-store URL its fsspec filesystem is
    registered, so `s3://` paths resolve offline. Use this (not a bare `duckdb.connect`) to query
    the catalog of an object-store home.
    """
    import duckdb

    con = duckdb.connect(catalog_file, read_only=read_only, config={"autoinstall_known_extensions": False})
    if home and is_url(home):
        con.register_filesystem(filesystem(home)[0])
    return con


def ensure_views(catalog_file: str, globs: dict[str, str], home: str | None = None) -> None:
    """Create or replace the view of each asset (name -> Parquet glob) in the catalog."""
    Path(catalog_file).parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{catalog_file}.lock", timeout=60):
        con = connect(catalog_file, read_only=False, home=home)
        try:
            for asset, glob in sorted(globs.items()):
                con.execute(_view_sql(asset, glob))
        finally:
            con.close()


def refresh(catalog_file: str, home: str) -> list[str]:
    """A view for every asset that has a partition under `home` (e.g. written by remote workers),
    then the analyst views over them; returns the asset names."""
    from envfactory_dagster.catalog.analyst_views import ensure_analyst_views

    store = PartitionStore(home)
    assets = store.assets()
    ensure_views(catalog_file, {asset: store.glob(asset) for asset in assets}, home=home)
    ensure_analyst_views(catalog_file, home=home)
    return assets


def query(catalog_file: str, sql: str, home: str | None = None) -> list[tuple]:
    """Run a read-only query against the catalog (for the CLI and tests)."""
    con = connect(catalog_file, read_only=True, home=home)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()
