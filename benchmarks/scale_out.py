"""Scale-out on Dagster's distributed parts: the same partitions through the Celery executor on 1 and
2 workers (throughput ratio, per-worker peak memory), then a catalog N times the bundled one (steps,
wall time) to show how cost grows with work.

    python benchmarks/scale_out.py [--domain D]... [--multiplier 4] [--skip-multiplied] [--home local]
                                   [--repeat N]

Everything runs on 127.0.0.1 and is stopped at the end: moto's S3 server (the data home is `s3://…`;
with `--home local` a directory every worker of this machine shares instead, so the figures leave
out moto, a Python server that stands in for a remote store and takes its CPU from the same two
cores as the workers), and per configuration a fresh `deploy/cluster.sh` deployment (Redis,
Postgres, one code server, webserver, daemon, N Celery workers with one task at a time each). Runs
are submitted through the webserver's GraphQL API, one per domain, all at once; wall time is from
the first submission to the last run's end. Worker memory: the peak proportional set size (PSS: shared pages
split between the processes sharing them) of each worker's process group, read whenever its RSS
grows; beside it the CPU seconds each part of the deployment used (see ClusterSampler), to show
what the workers share the two cores with. Baseline of the ratio: the machine's own, a
pure-Python loop in 1 and 2 processes (no I/O, nothing shared), measured in the same invocation.
The 2-worker run of the bundled catalog is the baseline of the multiplied catalog (same deployment
shape, same run).
Needs the `cluster` extra, moto, and Debian's redis-server and postgresql (deploy/cluster.sh install).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import signal
import statistics
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


TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
SAMPLE_EVERY_S = 1.0
# Reading PSS walks a process's page tables: 34 ms of CPU for a 1.5 GiB worker, measured. Read every
# second for each worker process, that took 10-20 s of CPU from the two cores the workers share
# in a 2-worker run. RSS is free in /proc/PID/stat, so PSS is read only when a worker's RSS has grown
# this much past its RSS at the last PSS read (peak PSS is then at most this share low).
PSS_READ_GROWTH = 0.02
OTHER_NAMED_FROM_S = 5.0  # CPU seconds of `other` from which its largest users are printed


def process_stat(pid: str) -> tuple[int, int, float, float, int]:
    """(parent pid, process group, CPU seconds used by the process, CPU seconds of its children that
    ended and were waited for, resident bytes) from /proc/PID/stat."""
    # the command name (field 2) may hold spaces: split after its closing parenthesis
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND
    children = (int(fields[13]) + int(fields[14])) / TICKS_PER_SECOND
    return int(fields[1]), int(fields[2]), own, children, int(fields[21]) * PAGE_BYTES


def pss_bytes(pid: str) -> int:
    """The process's PSS; 0 if it has ended."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    for line in rollup.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


def command_line(pid: str) -> bytes:
    """The process's command line, arguments separated by spaces; empty for a kernel thread or a
    process that has ended."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").strip()
    except OSError:
        return b""


def process_command(pid: str) -> str:
    """The start of a process's command line (a kernel thread's name in brackets)."""
    if command := command_line(pid):
        return command.decode(errors="replace")[:60]
    try:
        return f"[{Path(f'/proc/{pid}/comm').read_text().strip()}]"
    except OSError:
        return "ended"


def process_role(pid: str, group: str, parent_role: str | None) -> str:
    """The deployment's role of a process: its recorded process group, with the code servers
    (`dagster api grpc`), the run orchestrators they start (one per run) and moto's S3 server told
    apart."""
    if parent_role == "code servers":
        return "run orchestrators"
    command = command_line(pid)
    if b"moto.server" in command:
        return "moto"
    return "code servers" if b"grpc" in command else group


class ClusterSampler:
    """Samples every process of this machine each second: the peak PSS (proportional set size:
    shared pages split between the processes sharing them) of each Celery worker's process group,
    and the CPU seconds each role of the deployment used while sampling.

    PSS is read when the group's RSS passes, by PSS_READ_GROWTH, what it was at the last read (see
    there). Roles: the recorded process groups (workers, daemon, webserver, code server, redis,
    postgres), run orchestrators (started by the code server, one per run), `moto` (the S3 server
    of `--home s3`), `benchmark` (this process: the sampler and the run polling); a process outside
    them has its parent's role (a Postgres backend starts a session of its own), else `other` (the
    rest of the machine).
    CPU is read from the processes alive at the end: their own, plus that of their children which
    ended (the kernel adds it to the parent that waits for them; it counts for the role those
    children had), so a short-lived process such as a Postgres backend per connection is counted
    in full."""

    def __init__(self, state: Path) -> None:
        self.groups = {int(path.read_text()): path.stem for path in (state / "run").glob("*.pid")}
        self.workers = sorted(name for name in self.groups.values() if name.startswith("worker-"))
        self.peak = dict.fromkeys(self.workers, 0)
        self.pss_reads = 0
        self._rss_at_read = dict.fromkeys(self.workers, 0)
        self._first: dict[str, tuple[float, float]] = {}  # pid -> (own, children) CPU when first seen
        self._last: dict[str, tuple[float, float]] = {}  # pid -> the same at its last sample
        self._roles: dict[str, str] = {str(os.getpid()): "benchmark"}
        self._child_roles: dict[str, str] = {}  # pid -> the role of its children
        self._alive: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample_once(self, first: bool) -> None:
        members: dict[str, list[str]] = {name: [] for name in self.workers}
        rss = dict.fromkeys(self.workers, 0)
        alive = set()
        for entry in sorted(Path("/proc").iterdir(), key=lambda e: (len(e.name), e.name)):  # parents first
            pid = entry.name
            if not pid.isdigit():
                continue
            try:
                ppid, pgid, own, children, resident = process_stat(pid)
            except (OSError, IndexError, ValueError):
                continue
            if self.groups.get(pgid) in rss:
                members[self.groups[pgid]].append(pid)
                rss[self.groups[pgid]] += resident
            alive.add(pid)
            parent_role = self._roles.get(str(ppid))
            group = self.groups.get(pgid) or parent_role or "other"
            if pid not in self._roles:
                self._roles[pid] = process_role(pid, group, parent_role)
            if pid not in self._first:
                # born while sampling: everything it used counts
                self._first[pid] = (own, children) if first else (0.0, 0.0)
            self._child_roles[str(ppid)] = self._roles[pid]
            self._last[pid] = (own, children)
        self._alive = alive
        for name, pids in members.items():
            if rss[name] > self._rss_at_read[name] * (1 + PSS_READ_GROWTH):
                self._rss_at_read[name] = rss[name]
                self.pss_reads += 1
                self.peak[name] = max(self.peak[name], sum(pss_bytes(pid) for pid in pids))

    def _sample(self) -> None:
        self._sample_once(first=True)
        while not self._stop.wait(SAMPLE_EVERY_S):
            self._sample_once(first=False)

    def _used(self) -> Iterator[tuple[str, str, float]]:
        """(role, what, CPU seconds) of each process alive at the end, then of its ended children."""
        for pid in self._alive:
            (own_0, children_0), (own, children) = self._first[pid], self._last[pid]
            role = self._roles[pid]
            yield role, pid, own - own_0
            yield self._child_roles.get(pid, role), f"children of {pid}", children - children_0

    def cpu_by_role(self) -> dict[str, float]:
        """CPU seconds per role used while sampling, largest first."""
        totals: dict[str, float] = {}
        for role, _, seconds in self._used():
            totals[role] = totals.get(role, 0.0) + seconds
        return dict(sorted(totals.items(), key=lambda item: -item[1]))

    def largest_other(self, count: int = 3) -> list[tuple[str, float]]:
        """The largest CPU users counted as `other` (a process, or the ended children of one), each
        named by its command: what else took the cores."""
        used = sorted(
            ((what, seconds) for role, what, seconds in self._used() if role == "other"), key=lambda u: -u[1]
        )
        return [(f"{what} ({process_command(what.split()[-1])})", seconds) for what, seconds in used[:count]]

    def __enter__(self) -> ClusterSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def spin(iterations: int) -> int:
    total = 0
    for i in range(iterations):
        total += i * i % 7
    return total


def bare_scaling(iterations: int = 30_000_000, repeats: int = 3) -> float:
    """Throughput of 2 processes over 1 running the same pure-Python loop (median of `repeats`):
    what this machine's two cores give work that shares nothing."""
    context = multiprocessing.get_context("fork")

    def seconds(processes: int) -> float:
        # plain processes: a Pool's exit (terminate) hung once here, a worker waiting on a queue lock
        started = time.perf_counter()
        spinners = [context.Process(target=spin, args=(iterations,)) for _ in range(processes)]
        for spinner in spinners:
            spinner.start()
        for spinner in spinners:
            spinner.join()
        return time.perf_counter() - started

    return statistics.median(2 * seconds(1) / seconds(2) for _ in range(repeats))


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
        "ENVFACTORY_CODE_SERVER_PORT": str(free_port()),
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
        ClusterSampler(state) as sampler,
    ):
        wall, steps, not_ok = run_all(url, domains)
    failed += not_ok
    peaks = ", ".join(f"{name} {peak / MIB:.0f}" for name, peak in sampler.peak.items())
    print(f"  {workers} worker(s): {steps} steps in {wall:7.1f} s ({60 * steps / wall:5.1f} steps/min); "
          f"peak PSS per worker (MiB): {peaks} ({sampler.pss_reads} PSS reads)", flush=True)  # fmt: skip
    cpu = sampler.cpu_by_role()
    print(
        f"    CPU s by process ({sum(cpu.values()):.0f} of {os.cpu_count() * wall:.0f} the cores had): "
        + ", ".join(f"{role} {seconds:.0f}" for role, seconds in cpu.items() if seconds >= 0.5),
        flush=True,
    )
    if cpu.get("other", 0.0) >= OTHER_NAMED_FROM_S:
        named = "; ".join(f"{what} {seconds:.0f}" for what, seconds in sampler.largest_other())
        print(f"    other, largest: {named}", flush=True)
    return wall, steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--domain", action="append", help="domains of the bundled catalog (default: all)")
    parser.add_argument("--multiplier", type=int, default=4, help="copies of the catalog for the growth run")
    parser.add_argument("--skip-multiplied", action="store_true", help="only the 1 vs 2 worker comparison")
    parser.add_argument("--home", choices=("s3", "local"), default="s3", help="the data home (see above)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="1- and 2-worker runs, alternated this many times; the ratio is of the median walls "
        "(this machine's speed drifts between minutes: one pair can be off by 10%%)",
    )
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
            walls: dict[int, list[float]] = {1: [], 2: []}
            for repeat in range(args.repeat):
                for n in (1, 2):
                    wall, steps_x1 = compare_workers(
                        n, base, domains, s3_env, failed, home_of(f"workers_{n}_{repeat}")
                    )
                    walls[n].append(wall)
            wall_1, wall_2 = statistics.median(walls[1]), statistics.median(walls[2])
            ratio = wall_1 / wall_2
            print(f"throughput 2 workers / 1 worker: {ratio:.2f}x over the median walls {wall_1:.1f} s and "
                  f"{wall_2:.1f} s (target >= 1.6x on 2 cores); "
                  f"bare CPU loop, 2 processes / 1: {bare_scaling():.2f}x", flush=True)  # fmt: skip
            if not args.skip_multiplied:
                grown = scratch / f"catalog_x{args.multiplier}"
                names = multiplied_catalog(BUNDLED_RESOURCES_DIR, domains, args.multiplier, grown)
                with deployment(2, grown, home_of(f"catalog_x{args.multiplier}"), s3_env) as (url, _):
                    wall_n, steps_n, not_ok = run_all(url, names)
                failed += not_ok
                print("catalog growth, 2 workers:")
                for label, count, steps, wall in (
                    ("x1", len(domains), steps_x1, wall_2),
                    (f"x{args.multiplier}", len(names), steps_n, wall_n),
                ):
                    per_step = wall / steps
                    print(
                        f"  {label} {count:3d} domains {steps:4d} steps {wall:7.1f} s ({per_step:.2f} s/step)"
                    )
                print(
                    f"  x{args.multiplier} / x1: steps {steps_n / steps_x1:.2f}x, wall {wall_n / wall_2:.2f}x"
                )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if failed:
        print(f"error: runs did not succeed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
