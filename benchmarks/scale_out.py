"""Scale-out on Dagster's distributed parts: the same partitions through the Celery executor on 1 and
2 workers (throughput ratio, per-worker peak memory), then a catalog N times the bundled one (steps,
wall time) to show how cost grows with work.

    python benchmarks/scale_out.py [--domain D]... [--multiplier 4] [--skip-multiplied] [--home local]

Everything runs on 127.0.0.1 and is stopped at the end: moto's S3 server (the data home is `s3://…`;
with `--home local` a directory every worker of this machine shares instead, so the figures leave
out moto, a Python server that stands in for a remote store and takes its CPU from the same two
cores as the workers), and per configuration a fresh `deploy/cluster.sh` deployment (Redis,
Postgres, webserver, daemon, N Celery workers with one task at a time each). Runs are submitted
through the webserver's GraphQL API, one per domain, all at once; wall time is from the first
submission to the last run's end. Worker memory: the proportional set size (PSS: shared pages split
between the processes sharing them) of each worker's process group, sampled every 0.5 s. The
2-worker run of the bundled catalog is the baseline of the multiplied catalog (same deployment
shape, same run). Needs the `cluster` extra, moto, and Debian's redis-server and postgresql
(deploy/cluster.sh install).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from envfactory_dagster.definitions import ALL_ASSETS_JOB  # noqa: E402
from envfactory_dagster.settings import BUNDLED_RESOURCES_DIR  # noqa: E402
from envfactory_dagster.webserver_client import (  # noqa: E402
    code_location,
    launch_partition_run,
    wait_for_runs,
)
from tests.local_s3 import free_port, s3_server  # noqa: E402

BUCKET = "envfactory-bench"
MIB = 1024 * 1024


def group_pss_bytes(pgid: int) -> int:
    """Sum of the PSS of every process in a process group (from /proc)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # field 5 of /proc/PID/stat is the process group; the command name (2) may hold spaces
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            rollup = (entry / "smaps_rollup").read_text()
        except (OSError, IndexError, ValueError):
            continue
        for line in rollup.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1]) * 1024
    return total


class WorkerMemory:
    """Samples each worker's process-group PSS in a thread; keeps the peak per worker."""

    def __init__(self, state: Path, workers: int) -> None:
        pid_files = {f"w{i}": state / "run" / f"worker-{i}.pid" for i in range(1, workers + 1)}
        self.pgids = {name: int(path.read_text()) for name, path in pid_files.items()}
        self.peak = dict.fromkeys(self.pgids, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            for name, pgid in self.pgids.items():
                self.peak[name] = max(self.peak[name], group_pss_bytes(pgid))

    def __enter__(self) -> WorkerMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@contextmanager
def deployment(workers: int, resources_dir: Path, home: str, s3_env: dict[str, str]) -> Iterator[tuple]:
    """deploy/cluster.sh with `workers` workers; yields (webserver URL, state directory)."""
    state = Path(tempfile.mkdtemp(prefix="envfactory-bench-cluster-"))
    state.chmod(0o711)  # Postgres runs as its own user when we are root
    env = {
        **os.environ,
        **s3_env,
        "PYTHON": sys.executable,
        "ENVFACTORY_CLUSTER_DIR": str(state),
        "ENVFACTORY_HOME": home,
        "ENVFACTORY_RESOURCES_DIR": str(resources_dir),
        "ENVFACTORY_REDIS_PORT": str(free_port()),
        "ENVFACTORY_PG_PORT": str(free_port()),
        "ENVFACTORY_WEBSERVER_PORT": str(free_port()),
    }
    env.pop("ENVFACTORY_LLM_MODEL", None)
    script = ["bash", str(REPO / "deploy" / "cluster.sh")]
    try:
        start = [*script, "start", "--workers", str(workers)]
        subprocess.run(start, env=env, check=True, stdout=subprocess.DEVNULL)
        yield f"http://127.0.0.1:{env['ENVFACTORY_WEBSERVER_PORT']}", state
    finally:
        subprocess.run([*script, "stop"], env=env, stdout=subprocess.DEVNULL)
        shutil.rmtree(state, ignore_errors=True)


def run_all(url: str, domains: list[str]) -> tuple[float, int, list[str]]:
    """Submit one run per domain at once; (wall seconds, steps run, statuses that were not SUCCESS)."""
    location = code_location(url)
    started = time.perf_counter()
    run_ids = [launch_partition_run(url, ALL_ASSETS_JOB, domain, location=location) for domain in domains]
    infos = wait_for_runs(url, run_ids, timeout_s=6 * 3600, poll_s=1.0)
    wall = time.perf_counter() - started
    not_ok = [f"{info.partition}: {info.status}" for info in infos if info.status != "SUCCESS"]
    return wall, sum(info.steps for info in infos), not_ok


def multiplied_catalog(source: Path, domains: list[str], times: int, target: Path) -> list[str]:
    """`times` copies of each domain folder (`travel`, `travel_2`, ...); returns the new domain names."""
    names = []
    for copy in range(1, times + 1):
        for domain in domains:
            name = domain if copy == 1 else f"{domain}_{copy}"
            shutil.copytree(source / domain, target / name)
            names.append(name)
    return names


def compare_workers(
    workers: int,
    resources_dir: Path,
    domains: list[str],
    s3_env: dict[str, str],
    failed: list[str],
    home: str,
) -> tuple[float, int]:
    """Run every domain on a deployment with `workers` workers; print and return (wall s, steps)."""
    with (
        deployment(workers, resources_dir, home, s3_env) as (url, state),
        WorkerMemory(state, workers) as memory,
    ):
        wall, steps, not_ok = run_all(url, domains)
    failed += not_ok
    peaks = ", ".join(f"{name} {peak / MIB:.0f}" for name, peak in memory.peak.items())
    print(f"  {workers} worker(s): {steps} steps in {wall:7.1f} s ({60 * steps / wall:5.1f} steps/min); "
          f"peak PSS per worker (MiB): {peaks}", flush=True)  # fmt: skip
    return wall, steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--domain", action="append", help="domains of the bundled catalog (default: all)")
    parser.add_argument("--multiplier", type=int, default=4, help="copies of the catalog for the growth run")
    parser.add_argument("--skip-multiplied", action="store_true", help="only the 1 vs 2 worker comparison")
    parser.add_argument("--home", choices=("s3", "local"), default="s3", help="the data home (see above)")
    args = parser.parse_args()
    # SIGTERM ends the run through the `finally` blocks, which stop the deployment and moto.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    domains = args.domain or sorted(p.name for p in BUNDLED_RESOURCES_DIR.iterdir() if p.is_dir())
    scratch = Path(tempfile.mkdtemp(prefix="envfactory-bench-"))
    base = scratch / "catalog_x1"
    multiplied_catalog(BUNDLED_RESOURCES_DIR, domains, 1, base)
    where = "s3:// home on moto" if args.home == "s3" else "a local home shared by the workers"
    print(f"scale-out: {len(domains)} domains ({', '.join(domains)}), Celery executor, Postgres instance, "
          f"{where}; {os.cpu_count()} cores", flush=True)  # fmt: skip

    def home_of(name: str) -> str:
        return f"s3://{BUCKET}/{name}" if args.home == "s3" else str(scratch / "homes" / name)

    failed: list[str] = []
    try:
        with s3_server(BUCKET) if args.home == "s3" else nullcontext({}) as s3_env:
            figures = {
                n: compare_workers(n, base, domains, s3_env, failed, home_of(f"workers_{n}")) for n in (1, 2)
            }
            (wall_1, steps_1), (wall_2, steps_2) = figures[1], figures[2]
            ratio = (steps_2 / wall_2) / (steps_1 / wall_1)
            print(f"throughput 2 workers / 1 worker: {ratio:.2f}x  (target >= 1.6x on 2 cores)")
            if not args.skip_multiplied:
                grown = scratch / f"catalog_x{args.multiplier}"
                names = multiplied_catalog(BUNDLED_RESOURCES_DIR, domains, args.multiplier, grown)
                with deployment(2, grown, home_of(f"catalog_x{args.multiplier}"), s3_env) as (url, _):
                    wall_n, steps_n, not_ok = run_all(url, names)
                failed += not_ok
                print("catalog growth, 2 workers:")
                for label, count, steps, wall in (
                    ("x1", len(domains), steps_2, wall_2),
                    (f"x{args.multiplier}", len(names), steps_n, wall_n),
                ):
                    per_step = wall / steps
                    print(
                        f"  {label} {count:3d} domains {steps:4d} steps {wall:7.1f} s ({per_step:.2f} s/step)"
                    )
                print(
                    f"  x{args.multiplier} / x1: steps {steps_n / steps_2:.2f}x, wall {wall_n / wall_2:.2f}x"
                )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if failed:
        print(f"error: runs did not succeed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
