"""An `s3://` data home on a local S3-compatible server: partitions, exports, the DuckDB catalog."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from envfactory_dagster.storage.duckdb_catalog import connect, query, refresh
from envfactory_dagster.storage.export_files import export_directory, replace_directory
from envfactory_dagster.storage.object_store import filesystem
from envfactory_dagster.storage.partition_store import PartitionStore
from tests.core.storage.test_partition_store import frame, start_writing_forever
from tests.local_s3 import s3_server

BUCKET = "envfactory-test"


@pytest.fixture(scope="module")
def s3_env() -> Iterator[dict[str, str]]:
    with s3_server(BUCKET) as env:
        yield env


@pytest.fixture
def s3_home(s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    for key, value in s3_env.items():
        monkeypatch.setenv(key, value)
    return f"s3://{BUCKET}/{request.node.name}"


def objects(url: str) -> list[str]:
    fs, root = filesystem(url)
    return sorted(key[len(root) + 1 :] for key in fs.find(root))


def test_partitions_round_trip_and_replace(s3_home: str) -> None:
    store = PartitionStore(s3_home)
    path = store.write("things", "commerce", frame("commerce", 3, "old"))
    assert path == f"{s3_home}/things/domain=commerce/data.parquet"
    store.write("things", "commerce", frame("commerce", 2, "new"))
    store.write("things", "finance", frame("finance", 4))
    back = store.read("things", "commerce")
    assert back["id"].tolist() == ["commerce-0", "commerce-1"] and set(back["tag"]) == {"new"}
    assert back["resource_ids"].map(list).tolist() == [["res_0"], ["res_1"]]
    assert store.domains("things") == ["commerce", "finance"]
    assert store.assets() == ["things"]
    # one object per partition: no temporary objects left behind
    assert objects(s3_home) == ["things/domain=commerce/data.parquet", "things/domain=finance/data.parquet"]


def test_a_partition_another_process_writes_is_seen_at_once(s3_home: str) -> None:
    store = PartitionStore(s3_home)
    store.write("things", "commerce", frame("commerce", 1))
    assert store.domains("things") == ["commerce"]  # lists (and would cache) the asset's prefix
    script = f"from envfactory_dagster.storage.partition_store import PartitionStore\n" \
             f"from tests.core.storage.test_partition_store import frame, start_writing_forever\n" \
             f"PartitionStore({s3_home!r}).write('things', 'travel', frame('travel', 2))"  # fmt: skip
    subprocess.run([sys.executable, "-c", script], check=True, env=os.environ.copy())
    assert store.domains("things") == ["commerce", "travel"]
    assert len(store.read("things", "travel")) == 2


def test_sigkill_while_uploading_keeps_a_whole_version(s3_home: str) -> None:
    store = PartitionStore(s3_home)
    store.write("things", "travel", frame("travel", 4, "previous"))
    writer = start_writing_forever(s3_home, rows=2_000_000)
    time.sleep(1.5)  # serializing or uploading
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(10)
    back = store.read("things", "travel")
    assert set(back["tag"]) <= {"previous", "partial"}  # a whole version, never a torn object
    assert len(back) == (2_000_000 if set(back["tag"]) == {"partial"} else 4)


def write_export(files: dict[str, str]):
    def write(directory: Path) -> None:
        for name, text in files.items():
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            (directory / name).write_text(text)

    return write


def test_exports_replace_the_partition_directory_in_the_bucket(s3_home: str) -> None:
    target = export_directory(s3_home, "sft", "travel")
    assert target == f"{s3_home}/exports/sft/domain=travel"
    first = {"openai.jsonl": "a\n", "sharegpt/data.json": "[1]", "old.txt": "x"}
    replace_directory(target, write_export(first))
    replace_directory(target, write_export({"openai.jsonl": "b\n", "sharegpt/data.json": "[2]"}))
    assert objects(target) == ["openai.jsonl", "sharegpt/data.json"]  # the stale file is gone
    fs, root = filesystem(target)
    assert fs.cat_file(f"{root}/openai.jsonl") == b"b\n"


def test_a_failed_export_leaves_the_previous_files(s3_home: str) -> None:
    target = export_directory(s3_home, "rl", "travel")
    replace_directory(target, write_export({"verl.parquet": "v1"}))

    def failing(directory: Path) -> None:
        (directory / "verl.parquet").write_text("half")
        raise RuntimeError("writer failed")

    with pytest.raises(RuntimeError, match="writer failed"):
        replace_directory(target, failing)
    fs, root = filesystem(target)
    assert objects(target) == ["verl.parquet"] and fs.cat_file(f"{root}/verl.parquet") == b"v1"


def test_duckdb_catalog_reads_the_bucket_offline(s3_home: str, tmp_path: Path) -> None:
    store = PartitionStore(s3_home)
    store.write("things", "commerce", frame("commerce", 3))
    store.write("things", "finance", frame("finance", 2))
    store.write("others", "finance", pd.DataFrame({"id": ["o1"], "payload": [json.dumps({"k": 1})]}))
    catalog = str(tmp_path / "catalog.duckdb")
    assert refresh(catalog, s3_home) == ["others", "things"]
    assert query(catalog, "SELECT domain, count(*) FROM things GROUP BY 1 ORDER BY 1", home=s3_home) == [
        ("commerce", 3),
        ("finance", 2),
    ]
    store.write("things", "travel", frame("travel", 1))  # a new partition: the view's glob finds it
    assert query(catalog, "SELECT count(*) FROM things", home=s3_home) == [(6,)]
    # Without the registered filesystem DuckDB would need httpfs: it fails at once, downloading nothing.
    con = connect(catalog, read_only=True)
    try:
        with pytest.raises(Exception, match="httpfs"):
            con.execute("SELECT count(*) FROM things").fetchall()
        [(installed,)] = con.execute(
            "SELECT installed FROM duckdb_extensions() WHERE extension_name = 'httpfs'"
        ).fetchall()
    finally:
        con.close()
    assert installed is False
