"""The whole offline pipeline (README's main command), every domain partition: wall time and peak memory.

    .venv/bin/python benchmarks/pipeline_e2e.py [--workers N] [--resources-dir DIR]

Runs `envfactory materialize` in a fresh `$ENVFACTORY_HOME` (a temp dir) as a subprocess and
samples the resident memory of its whole process tree (from /proc) every 50 ms. Prints wall
time, peak tree RSS, and the row counts of the main assets from the DuckDB catalog.
Target (issue 6): <= 120 s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
COUNTED_ASSETS = (
    "authentic_resources", "verified_envs", "tool_chains", "trajectories",
    "refined_trajectories", "sft_dataset", "rl_tasks",
)  # fmt: skip


def tree_rss_bytes(root_pid: int) -> int:
    """Sum of VmRSS over `root_pid` and all its descendants."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        pid, ppid = int(entry.name), int(fields["PPid"].strip())
        children.setdefault(ppid, []).append(pid)
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--resources-dir")
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="envfactory-bench-")
    command = [str(REPO / ".venv" / "bin" / "envfactory"), "materialize", "--workers", str(args.workers)]
    if args.resources_dir:
        command += ["--resources-dir", args.resources_dir]
    started = time.perf_counter()
    process = subprocess.Popen(command, env={**os.environ, "ENVFACTORY_HOME": home}, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)  # fmt: skip
    peak = 0
    while process.poll() is None:
        peak = max(peak, tree_rss_bytes(process.pid))
        time.sleep(0.05)
    wall = time.perf_counter() - started
    output = process.stdout.read() if process.stdout else ""
    print(f"cores: {os.cpu_count()}  workers: {args.workers}  exit code: {process.returncode}")
    print(f"wall time: {wall:.1f} s   peak RSS of the process tree: {peak / 2**20:.0f} MiB")
    if process.returncode != 0:
        print(output[-4000:])
        return 1
    con = duckdb.connect(str(Path(home) / "catalog.duckdb"), read_only=True)
    views = {
        row[0] for row in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
    }
    for asset in COUNTED_ASSETS:
        if asset in views:
            rows = con.execute(f'SELECT count(*), count(DISTINCT domain) FROM "{asset}"').fetchone()
            print(f"  {asset:<22} {rows[0]:>7} rows in {rows[1]} domains")
    print(f"data: {home}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
