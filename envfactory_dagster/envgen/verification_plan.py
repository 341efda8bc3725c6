"""How one module is verified: sandbox limits that scale with its size, in tool groups when large.

A fixed limit kills large environments (a 40-tool module runs ~400 tests and replays them) while
letting small ones spin for seconds. The limits scale with what the run does: tests (each resets
the state and calls a tool), the seed state's size (each reset validates it), the tool count (the
module's classes and schemas). Above `MAX_TESTS_PER_RUN` tests the tools are split into groups,
each verified in its own sandboxed run with its own limits; the verdict merges the groups and
states every group's tools and limits.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict

from envfactory_dagster.envgen.env_spec import EnvSpec
from envfactory_dagster.envgen.sandbox import SandboxLimits
from envfactory_dagster.envgen.test_generation import ToolTest
from envfactory_dagster.lineage import canonical_json, sha256_hex

MAX_TESTS_PER_RUN = 240
# Per-unit costs, measured on the realworld catalogs with headroom for a shared 2-core machine.
BASE_CPU_SECONDS = 5
TESTS_PER_CPU_SECOND = 25
STATE_KB_PER_CPU_SECOND = 256
BASE_MEMORY_MB = 1024
MEMORY_MB_PER_TOOL = 8
MEMORY_MB_PER_STATE_MB = 64
WALL_PER_CPU = 2.0  # the child shares the machine: wall time allows twice its CPU time
WALL_SLACK_SECONDS = 5.0


class ToolGroup(BaseModel):
    """One sandboxed run of a module: the tools it tests and the limits it runs under."""

    model_config = ConfigDict(extra="forbid")

    tools: list[str]
    tests: int
    limits: SandboxLimits


def scaled_limits(tests: int, tools: int, state_bytes: int) -> SandboxLimits:
    """Limits for one run of `tests` tests on a module of `tools` tools and a `state_bytes` seed."""
    state_kb = state_bytes / 1024
    cpu = (
        BASE_CPU_SECONDS
        + math.ceil(tests / TESTS_PER_CPU_SECOND)
        + math.ceil(state_kb / STATE_KB_PER_CPU_SECOND)
    )
    memory = BASE_MEMORY_MB + MEMORY_MB_PER_TOOL * tools + math.ceil(MEMORY_MB_PER_STATE_MB * state_kb / 1024)
    return SandboxLimits(
        cpu_seconds=cpu, memory_mb=memory, wall_seconds=WALL_PER_CPU * cpu + WALL_SLACK_SECONDS
    )


def plan_groups(
    spec: EnvSpec, tests: list[ToolTest], state_bytes: int, fixed: SandboxLimits | None = None
) -> list[ToolGroup]:
    """The runs that verify the module: one when its tests fit `MAX_TESTS_PER_RUN`, else groups of
    whole tools in spec order. `fixed` limits (a caller's explicit choice) replace the scaled ones."""
    per_tool = {t.name: 0 for t in spec.tools}
    for test in tests:
        per_tool[test.tool] = per_tool.get(test.tool, 0) + 1
    groups: list[list[str]] = [[]]
    count = 0
    for name, n in per_tool.items():
        if groups[-1] and count + n > MAX_TESTS_PER_RUN:
            groups.append([])
            count = 0
        groups[-1].append(name)
        count += n
    planned = []
    for names in groups:
        n = sum(per_tool[name] for name in names)
        limits = fixed or scaled_limits(n, len(spec.tools), state_bytes)
        planned.append(ToolGroup(tools=names, tests=n, limits=limits))
    return planned


def merge_group_results(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One checks result from the results of a module's groups: a check passes when it passed in
    every group; counts add up; the replay digest covers every group's; latencies are the worst
    group's (the groups' timings are not pooled)."""
    if len(results) == 1:
        return results[0]
    checks: dict[str, dict[str, Any]] = {}
    for result in results:
        for row in result["checks"]:
            merged = checks.setdefault(row["name"], {"name": row["name"], "passed": True, "problems": []})
            merged["passed"] = merged["passed"] and row["passed"]
            merged["problems"] += [p for p in row.get("problems") or [] if p not in merged["problems"]]
    for row in checks.values():
        row["detail"] = "; ".join(row["problems"][:40])
    digests = [r.get("replay_digest") for r in results]

    def worst(key: str) -> float | None:
        values = [r[key] for r in results if r.get(key) is not None]
        return max(values) if values else None

    return {
        "checks": list(checks.values()),
        "tests": [t for r in results for t in r.get("tests") or []],
        "tests_run": sum(r.get("tests_run", 0) for r in results),
        "tests_passed": sum(r.get("tests_passed", 0) for r in results),
        "tests_per_tool": {k: v for r in results for k, v in (r.get("tests_per_tool") or {}).items()},
        "tests_reaching_body": sum(r.get("tests_reaching_body", 0) for r in results),
        "rule_tests": sum(r.get("rule_tests", 0) for r in results),
        "roundtrip_ok": all(r.get("roundtrip_ok") for r in results),
        "determinism_ok": all(r.get("determinism_ok") for r in results),
        "replay_digest": sha256_hex(canonical_json(digests)) if all(digests) else None,
        "latency_p50_us": worst("latency_p50_us"),
        "latency_p95_us": worst("latency_p95_us"),
    }
