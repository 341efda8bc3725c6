"""Parquet files per asset partition, replaced atomically.

Layout: `<home>/<asset>/domain=<domain>/data.parquet` (hive partitioning by domain), so DuckDB
and pandas read an asset over all partitions with one glob. A write goes to a temporary file in
the same directory and is renamed over the old one: a reader sees the old or the new version,
never half of one, and a writer killed mid-write (even with SIGKILL) leaves the previous version
in place. Partitions live in different directories, so writers of different partitions never
touch each other's files. `home` may be an fsspec URL such as `s3://bucket/prefix` (through
universal-pathlib): object stores have no rename, but a PUT replaces an object whole, so the file
is serialized in memory and uploaded in one call (storage/object_store.py).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from envfactory_dagster.storage.object_store import STORAGE_OPTIONS, is_url, put_bytes

PARTITION_COLUMN = "domain"
DATA_FILE = "data.parquet"


class PartitionStore:
    def __init__(self, home: str) -> None:
        self.home = home
        self._local = not is_url(home)

    def _root(self):  # Path for local homes, UPath for URLs
        if self._local:
            return Path(self.home)
        from upath import UPath

        return UPath(self.home, **STORAGE_OPTIONS)

    def asset_dir(self, asset: str):
        return self._root() / asset

    def partition_path(self, asset: str, domain: str):
        return self.asset_dir(asset) / f"{PARTITION_COLUMN}={domain}" / DATA_FILE

    def glob(self, asset: str) -> str:
        """The path glob of every partition of `asset` (what the DuckDB views read)."""
        return f"{self.asset_dir(asset)}/{PARTITION_COLUMN}=*/*.parquet"

    def write(self, asset: str, domain: str, frame: pd.DataFrame) -> str:
        """Write one partition atomically; returns its path."""
        table = pa.Table.from_pandas(frame, preserve_index=False)
        final = self.partition_path(asset, domain)
        if not self._local:
            buffer = pa.BufferOutputStream()
            pq.write_table(table, buffer)
            put_bytes(str(final), buffer.getvalue().to_pybytes())
            return str(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = final.parent / f".{DATA_FILE}.{uuid.uuid4().hex}.tmp"
        try:
            with open(temp, "wb") as handle:
                pq.write_table(table, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, final)
        finally:
            if temp.exists():
                temp.unlink()
        return str(final)

    def exists(self, asset: str, domain: str) -> bool:
        return self.partition_path(asset, domain).exists()

    def read(self, asset: str, domain: str) -> pd.DataFrame:
        path = self.partition_path(asset, domain)
        if not path.exists():
            raise FileNotFoundError(f"asset {asset!r} has no materialized partition {domain!r} ({path})")
        with path.open("rb") as handle:
            return pq.read_table(handle).to_pandas()

    def domains(self, asset: str) -> list[str]:
        root = self.asset_dir(asset)
        if not root.exists():
            return []
        prefix = f"{PARTITION_COLUMN}="
        return sorted(
            p.name[len(prefix) :]
            for p in root.iterdir()
            if p.name.startswith(prefix) and (p / DATA_FILE).exists()
        )

    def assets(self) -> list[str]:
        """The assets that have at least one materialized partition under the home."""
        root = self._root()
        if not root.exists():
            return []
        return sorted(p.name for p in root.iterdir() if p.is_dir() and self.domains(p.name))
