"""Runtime benchmark of verified environments: calls/s through `call()` vs bare tool bodies, reset time,
memory of 1,000 live instances. In-process, no MCP.

Reads the registry `$ENVFACTORY_HOME/verified_envs/domain=*/*.parquet`; without one, falls back to
the example environment (tests/fakes/example_env.py) and says so. Workload: ~70% reads, 30% writes,
valid arguments taken from each environment's seed state (the verifier's generated valid tests),
episodes of 20 calls from a reset. Run: `.venv/bin/python benchmarks/env_runtime.py [--seconds 2]`.

Targets (issue 4): >= 250,000 calls/s/core through call(), median reset <= 20 µs, <= 150 MB for
1,000 instances.

Trainer-facing (issue 16), on real `rl_tasks` rows of the registry (skipped without them):
`ToolUseEnv.reset(task)` as a trainer calls it, each task reset `--group` times in a row (GRPO
samples a group per prompt): the first reset of a task parses and validates it (the cost every
reset paid before tasks were prepared once: the baseline), later ones start from snapshots.
Target: median reset <= 50 µs. `step(call)` on the tasks' gold calls, beside a direct
`Toolset.call()` and a direct call plus the result as the text a trainer receives; target: step
within 2x of call + text.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from envfactory_dagster.envgen.env_spec import EnvSpec  # noqa: E402
from envfactory_dagster.envgen.test_generation import generate_tool_tests  # noqa: E402
from envfactory_dagster.lineage import sha256_hex  # noqa: E402
from envfactory_dagster.runtime.contract import Environment, ToolError  # noqa: E402
from envfactory_dagster.runtime.loader import VerifiedEnvironment  # noqa: E402
from envfactory_dagster.settings import envfactory_home  # noqa: E402

EPISODE_CALLS = 20
READ_SHARE = 0.7


def load_registry() -> tuple[list[VerifiedEnvironment], str]:
    """The registry rows, or the example environment when there is no registry yet."""
    pattern = Path(envfactory_home()).expanduser() / "verified_envs" / "domain=*" / "*.parquet"
    if list(pattern.parent.parent.glob("domain=*/*.parquet")):
        import duckdb

        columns = "env_id, class_name, source, code_sha256, spec_json, seed_state_json"
        rows = duckdb.sql(
            f"select {columns} from read_parquet('{pattern}', hive_partitioning = true)"
        ).fetchall()
        names = columns.split(", ")
        return [VerifiedEnvironment.from_row(dict(zip(names, row, strict=True))) for row in rows], str(
            pattern
        )
    from tests.fakes.example_env_spec import EXAMPLE_ENV_SOURCE, EXAMPLE_SEED_STATE, EXAMPLE_SPEC

    env = VerifiedEnvironment(
        env_id="example",
        class_name=EXAMPLE_SPEC.class_name,
        source=EXAMPLE_ENV_SOURCE,
        code_sha256=sha256_hex(EXAMPLE_ENV_SOURCE),
        spec_json=EXAMPLE_SPEC.model_dump_json(),
        seed_state_json=json.dumps(EXAMPLE_SEED_STATE),
    )
    return [env], f"NO REGISTRY at {pattern}: fell back to tests/fakes/example_env.py"


def workload(env: VerifiedEnvironment, seed: int, calls: int) -> list[tuple[str, dict[str, Any]]]:
    """`calls` (tool, arguments) pairs, ~70% reads, valid arguments from the seed state."""
    spec: EnvSpec = env.spec
    kinds = {t.name: t.kind for t in spec.tools}
    valid = [
        (t.tool, t.arguments[0]) for t in generate_tool_tests(spec, env.seed_state) if t.category == "valid"
    ]
    reads = [c for c in valid if kinds[c[0]] == "read"]
    writes = [c for c in valid if kinds[c[0]] == "write"] or reads
    rng = random.Random(seed)
    return [rng.choice(reads if rng.random() < READ_SHARE else writes) for _ in range(calls)]


def throughput(envs: list[VerifiedEnvironment], seconds: float, bare: bool) -> tuple[float, int]:
    """Calls per second over all environments, through call() or straight into the tool bodies."""
    prepared = []
    for index, env in enumerate(envs):
        instance = env.instance()
        snapshot = instance.dump_state()
        calls = workload(env, seed=index, calls=EPISODE_CALLS * 50)
        cls = env.env_class
        if bare:
            methods = {name: getattr(cls, t.method_name) for name, t in cls.TOOLS.items()}
            calls = [(methods[name], args) for name, args in calls]  # type: ignore[misc]
        prepared.append((instance, snapshot, calls))
    done = errors = 0
    started = time.perf_counter()
    deadline = started + seconds
    timed = 0.0
    while time.perf_counter() < deadline:
        for instance, snapshot, calls in prepared:
            for offset in range(0, len(calls), EPISODE_CALLS):
                instance.reset(snapshot)
                begin = time.perf_counter()
                errors += _run(instance, calls[offset : offset + EPISODE_CALLS], bare)
                timed += time.perf_counter() - begin
                done += EPISODE_CALLS
    return done / timed, errors


def _run(instance: Environment, calls: list[Any], bare: bool) -> int:
    errors = 0
    if bare:
        for method, args in calls:
            try:
                method(instance, **args)
            except ToolError:
                errors += 1
    else:
        call = instance.call
        for name, args in calls:
            try:
                call(name, args)
            except ToolError:
                errors += 1
    return errors


def median_reset_us(envs: list[VerifiedEnvironment], repeats: int = 20_000) -> float:
    timings = []
    clock = time.perf_counter_ns
    for env in envs:
        instance = env.instance()
        snapshot = instance.dump_state()
        for _ in range(max(repeats // len(envs), 100)):
            begin = clock()
            instance.reset(snapshot)
            timings.append(clock() - begin)
    overhead = statistics.median([-(clock() - clock()) for _ in range(10_000)])
    return max(statistics.median(timings) + overhead, 0) / 1000


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096


def memory_of_instances(envs: list[VerifiedEnvironment], count: int = 1000) -> tuple[float, float]:
    """(RSS delta MB, tracemalloc MB) of `count` live instances, round-robin over the registry."""
    for env in envs:
        env.env_class  # noqa: B018  # modules loaded once per process, outside the measurement
        env.seed_state  # noqa: B018
    gc.collect()
    before = rss_bytes()
    tracemalloc.start()
    instances = [envs[i % len(envs)].instance() for i in range(count)]
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    gc.collect()
    after = rss_bytes()
    assert len(instances) == count
    return (after - before) / 2**20, current / 2**20


def load_tasks(limit: int) -> list[dict[str, Any]]:
    """Up to `limit` stored rl_tasks rows, spread over the domains (empty without a run)."""
    from envfactory_dagster.serve.registry import load_rl_task_rows

    rows = load_rl_task_rows(str(Path(envfactory_home()).expanduser()))
    step = max(len(rows) // limit, 1)
    return rows[::step][:limit]


def median_us(samples: list[int]) -> float:
    return statistics.median(samples) / 1000 if samples else float("nan")


def trainer_figures(tasks: list[dict[str, Any]], group: int) -> dict[str, float]:
    """Median µs: cold and warm `reset(task)`, `step(call)`, direct `call()`, call + text."""
    from envfactory_dagster.serve.gym_env import ToolUseEnv
    from envfactory_dagster.serve.registry import load_verified_envs
    from envfactory_dagster.serve.rollout import observation_text

    envs = load_verified_envs(str(Path(envfactory_home()).expanduser()))
    gym = ToolUseEnv(envs)
    clock = time.perf_counter_ns
    cold, warm, steps, calls, texts = [], [], [], [], []
    for row in tasks:  # warm-up: each task's environments and tools run once before any timing
        gym.reset(row)
        for call in json.loads(row["gold_calls_json"]):
            gym.step({"name": call["name"], "arguments": call["arguments"]})
    gym.tasks.prepared.clear()  # so that each task's first timed reset is its cold, parsing one
    for number, row in enumerate(tasks):
        for attempt in range(group):
            begin = clock()
            gym.reset(row)
            (cold if attempt == 0 else warm).append(clock() - begin)
        gold = json.loads(row["gold_calls_json"])

        def through_step(gold: list[dict[str, Any]] = gold, row: dict[str, Any] = row) -> None:
            gym.reset(row)
            for call in gold:
                action = {"name": call["name"], "arguments": call["arguments"]}
                begin = clock()
                gym.step(action)
                steps.append(clock() - begin)

        def direct(gold: list[dict[str, Any]] = gold, row: dict[str, Any] = row) -> None:
            gym.reset(row)  # a fresh rollout's Toolset, called straight
            assert gym.rollout is not None
            toolset = gym.rollout.toolset
            for call in gold:
                arguments = dict(call["arguments"])
                begin = clock()
                result = toolset.call(call["name"], arguments)
                calls.append(clock() - begin)
                begin = clock()
                observation_text(result)
                texts.append(calls[-1] + clock() - begin)

        # the second run of a task's calls finds their rows in the CPU caches: alternate which goes first
        for measure in (through_step, direct) if number % 2 == 0 else (direct, through_step):
            measure()
    return {
        "reset_cold_us": median_us(cold),
        "reset_warm_us": median_us(warm),
        "reset_us": median_us(cold + warm),
        "step_us": median_us(steps),
        "call_us": median_us(calls),
        "call_text_us": median_us(texts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per throughput measurement")
    parser.add_argument("--tasks", type=int, default=300, help="rl_tasks rows for the trainer figures")
    parser.add_argument("--group", type=int, default=8, help="resets of each task in a row (GRPO group)")
    args = parser.parse_args()
    envs, source = load_registry()
    print(f"registry: {source}")
    print(f"environments: {len(envs)}, tools: {sum(len(e.spec.tools) for e in envs)}; in-process, no MCP")
    rss_mb, traced_mb = memory_of_instances(envs)
    validated, errors = throughput(envs, args.seconds, bare=False)
    floor, _ = throughput(envs, args.seconds, bare=True)
    reset_us = median_reset_us(envs)
    print(
        f"calls/s/core through call() (validated): {validated:,.0f}   target >= 250,000   "
        f"{'OK' if validated >= 250_000 else 'MISSED'}  (ToolErrors in workload: {errors})"
    )
    print(f"calls/s/core bare tool bodies (floor):    {floor:,.0f}   call()/bare = {validated / floor:.2f}")
    print(f"median reset: {reset_us:.2f} µs   target <= 20 µs   {'OK' if reset_us <= 20 else 'MISSED'}")
    print(
        f"1,000 live instances: RSS delta {rss_mb:.1f} MB, tracemalloc {traced_mb:.1f} MB   "
        f"target <= 150 MB   {'OK' if max(rss_mb, traced_mb) <= 150 else 'MISSED'}"
    )
    tasks = load_tasks(args.tasks)
    if not tasks:
        print("trainer-facing figures: skipped (no rl_tasks rows under $ENVFACTORY_HOME)")
        return
    figures = trainer_figures(tasks, args.group)
    print(f"trainer-facing, {len(tasks)} real rl_tasks rows, each reset {args.group}x (ToolUseEnv):")
    print(
        f"  reset(task) median {figures['reset_us']:.1f} µs   target <= 50 µs   "
        f"{'OK' if figures['reset_us'] <= 50 else 'MISSED'}   "
        f"(first reset of a task = parse + validate, the old per-reset cost: "
        f"{figures['reset_cold_us']:.1f} µs; later resets: {figures['reset_warm_us']:.1f} µs)"
    )
    ratio = figures["step_us"] / figures["call_text_us"]
    print(
        f"  step(call) median {figures['step_us']:.1f} µs   direct call() {figures['call_us']:.1f} µs   "
        f"call() + result as text {figures['call_text_us']:.1f} µs   step / (call + text) = {ratio:.2f}   "
        f"target <= 2   {'OK' if ratio <= 2 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
