"""Parquet partitions: atomic replace, SIGKILL mid-write, concurrent partitions, DuckDB views."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from envfactory_dagster.storage.duckdb_catalog import ensure_views, query
from envfactory_dagster.storage.partition_store import PartitionStore


def frame(domain: str, rows: int, tag: str = "v1") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [f"{domain}-{i}" for i in range(rows)],
            "domain": domain,
            "tag": tag,
            "resource_ids": [[f"res_{i}"] for i in range(rows)],
        }
    )


def test_write_read_round_trip_and_hive_layout(tmp_path: Path) -> None:
    store = PartitionStore(str(tmp_path))
    path = store.write("things", "commerce", frame("commerce", 3))
    assert path == str(tmp_path / "things" / "domain=commerce" / "data.parquet")
    back = store.read("things", "commerce")
    assert back["id"].tolist() == ["commerce-0", "commerce-1", "commerce-2"]
    assert back["resource_ids"].map(list).tolist() == [["res_0"], ["res_1"], ["res_2"]]
    assert store.domains("things") == ["commerce"]
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "things" / "domain=commerce").iterdir())


def test_rewrite_replaces_the_partition(tmp_path: Path) -> None:
    store = PartitionStore(str(tmp_path))
    store.write("things", "office", frame("office", 5, "old"))
    store.write("things", "office", frame("office", 2, "new"))
    back = store.read("things", "office")
    assert len(back) == 2 and set(back["tag"]) == {"new"}


def test_missing_partition_names_asset_and_domain(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"'things'.*'travel'"):
        PartitionStore(str(tmp_path)).read("things", "travel")


def test_duckdb_views_cover_all_partitions(tmp_path: Path) -> None:
    store = PartitionStore(str(tmp_path))
    store.write("things", "commerce", frame("commerce", 3))
    store.write("things", "finance", frame("finance", 2))
    catalog = str(tmp_path / "catalog.duckdb")
    ensure_views(catalog, {"things": store.glob("things")})
    ensure_views(catalog, {"things": store.glob("things")})  # idempotent
    assert query(catalog, "SELECT domain, count(*) FROM things GROUP BY 1 ORDER BY 1") == [
        ("commerce", 3),
        ("finance", 2),
    ]


def _write_many(home: str, domain: str) -> None:
    store = PartitionStore(home)
    for round_ in range(15):
        store.write("things", domain, frame(domain, 200 + round_, f"r{round_}"))


def test_concurrent_partitions_never_corrupt_each_other(tmp_path: Path) -> None:
    domains = ["commerce", "finance", "travel", "office"]
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_write_many, args=(str(tmp_path), d)) for d in domains]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    store = PartitionStore(str(tmp_path))
    for domain in domains:
        back = store.read("things", domain)
        assert len(back) == 214 and set(back["domain"]) == {domain} and set(back["tag"]) == {"r14"}


def start_writing_forever(home: str, rows: int) -> subprocess.Popen:
    """A process writing partition things/travel of `rows` rows (tag `partial`) to `home` over and
    over; returns once it has built the frame and starts writing."""
    script = textwrap.dedent(
        f"""
        import pandas as pd
        from envfactory_dagster.storage.partition_store import PartitionStore
        big = pd.DataFrame({{"id": [str(i) for i in range({rows})], "domain": "travel", "tag": "partial"}})
        print("writing", flush=True)
        while True:
            PartitionStore({home!r}).write("things", "travel", big)
        """
    )
    writer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "writing"
    return writer


def test_sigkill_while_writing_keeps_the_previous_version(tmp_path: Path) -> None:
    store = PartitionStore(str(tmp_path))
    store.write("things", "travel", frame("travel", 4, "previous"))
    # A writer of a large partition, killed with SIGKILL while it writes.
    writer = start_writing_forever(str(tmp_path), rows=3_000_000)
    partition_dir = tmp_path / "things" / "domain=travel"
    deadline = time.monotonic() + 30
    while not any(p.name.endswith(".tmp") for p in partition_dir.iterdir()):  # it is mid-write
        assert time.monotonic() < deadline, "the writer never started a temp file"
        time.sleep(0.005)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(10)
    back = store.read("things", "travel")
    assert set(back["tag"]) <= {"previous", "partial"}  # a whole version, never a torn file
    if set(back["tag"]) == {"partial"}:
        assert len(back) == 3_000_000
    else:
        assert len(back) == 4
