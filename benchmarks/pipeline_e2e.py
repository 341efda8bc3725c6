"""The whole offline pipeline (README's main command), every domain partition: wall time and peak memory.

    python benchmarks/pipeline_e2e.py [--workers N] [--resources-dir DIR] [--baseline GIT_REF]

Runs `envfactory materialize` (the CLI's `main`, with the running interpreter) in a fresh
`$ENVFACTORY_HOME` (a temp dir) as a subprocess and samples the resident memory of its whole
process tree (from /proc) every 50 ms. Prints wall time, CPU time of the tree, peak tree RSS, and
the row counts of the main assets from the DuckDB catalog. With `--baseline REF` the same command
first runs on that commit (a temporary `git worktree`, same interpreter and dependencies), so the
two figures come from one machine in one run; machines differ ~3x in speed.
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


CLI = "import sys; from envfactory_dagster.cli import main; sys.exit(main(sys.argv[1:]))"


def run_pipeline(code_dir: Path, args: argparse.Namespace, label: str) -> str | None:
    """Run the main command with the code in `code_dir`; print its figures; the data home, or None."""
    home = tempfile.mkdtemp(prefix="envfactory-bench-")
    command = [sys.executable, "-c", CLI, "materialize", "--workers", str(args.workers)]
    if args.resources_dir:
        command += ["--resources-dir", args.resources_dir]
    env = {**os.environ, "ENVFACTORY_HOME": home, "PYTHONPATH": str(code_dir)}
    started = time.perf_counter()
    cpu_before = os.times()
    process = subprocess.Popen(command, cwd=code_dir, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)  # fmt: skip
    peak = 0
    while process.poll() is None:
        peak = max(peak, tree_rss_bytes(process.pid))
        time.sleep(0.05)
    wall = time.perf_counter() - started
    cpu = sum(os.times()[2:4]) - sum(cpu_before[2:4])  # children's user + system time
    output = process.stdout.read() if process.stdout else ""
    print(f"[{label}] exit code {process.returncode}  wall {wall:.1f} s  CPU {cpu:.1f} s  "
          f"peak RSS of the process tree {peak / 2**20:.0f} MiB")  # fmt: skip
    if process.returncode != 0:
        print(output[-4000:])
        return None
    return home


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--resources-dir")
    parser.add_argument("--baseline", help="a git ref to measure first, in a temporary worktree")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}  workers: {args.workers}  interpreter: {sys.executable}")
    if args.baseline:
        worktree = Path(tempfile.mkdtemp(prefix="envfactory-baseline-")) / "code"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(worktree), args.baseline],
                       check=True, capture_output=True)  # fmt: skip
        try:
            run_pipeline(worktree, args, f"baseline {args.baseline}")
        finally:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)], check=False
            )
    home = run_pipeline(REPO, args, "this checkout")
    if home is None:
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
