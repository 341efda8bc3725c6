"""The DuckDB catalog: one view per asset over all its Parquet partitions.

The catalog file holds views only (path globs), so it is tiny and never held open by writers:
a DuckDB file admits one writing process, so each update takes a file lock, opens, creates the
view idempotently and closes. Analysts open it read-only while runs go on.
"""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock


def _view_sql(asset: str, glob: str) -> str:
    escaped = glob.replace("'", "''")
    return (
        f'CREATE OR REPLACE VIEW "{asset}" AS SELECT * FROM '
        f"read_parquet('{escaped}', hive_partitioning = true, union_by_name = true)"
    )


def ensure_views(catalog_file: str, globs: dict[str, str]) -> None:
    """Create or replace the view of each asset (name -> Parquet glob) in the catalog."""
    import duckdb

    Path(catalog_file).parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{catalog_file}.lock", timeout=60):
        con = duckdb.connect(catalog_file)
        try:
            for asset, glob in sorted(globs.items()):
                con.execute(_view_sql(asset, glob))
        finally:
            con.close()


def query(catalog_file: str, sql: str) -> list[tuple]:
    """Run a read-only query against the catalog (for the CLI and tests)."""
    import duckdb

    con = duckdb.connect(catalog_file, read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()
