"""`env_verification`: verify environment modules by executing them in the sandbox (DESIGN §4).

"Verified" means executed, not judged: the static screen admits the code (code_screen.py), then a
sandboxed child (sandbox.py) imports it and runs the checks of verification_checks.py with tests
generated from the spec and seed state (test_generation.py). The verdict is a `VerificationReport`
whose failures are ranked (screen and import first, then schemas, state, tests, determinism), so a
reviser fixes the most fundamental problem first.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from envfactory_dagster.envgen.code_screen import screen_source
from envfactory_dagster.envgen.env_spec import EnvSpec
from envfactory_dagster.envgen.sandbox import (
    SandboxLimits,
    SandboxOutcome,
    SandboxPolicy,
    network_isolation_prefix,
    run_sandboxed,
)
from envfactory_dagster.envgen.test_generation import ToolTest, generate_tool_tests
from envfactory_dagster.envgen.verification_checks import TestResult
from envfactory_dagster.envgen.verification_plan import ToolGroup, merge_group_results, plan_groups
from envfactory_dagster.lineage import canonical_json, sha256_hex

CHECKS_ENTRY = "envfactory_dagster.envgen.verification_checks:run_verification_checks"
MIN_TESTS_PER_TOOL = 3

# Rank of each check: the most fundamental failure comes first in `failures`.
CHECK_ORDER = (
    "static_screen",
    "test_generation",
    "sandbox",
    "import",
    "class_and_state",
    "tool_schemas",
    "seed_state",
    "roundtrip",
    "tool_tests",
    "rule_effects",
    "output_schemas",
    "state_effects",
    "read_only",
    "atomic_refusals",
    "copy_on_write",
    "determinism",
)


class CheckResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    passed: bool
    detail: str = ""


class VerificationReport(BaseModel):
    """The executed verdict on one environment version."""

    model_config = ConfigDict(extra="forbid")

    passed: bool
    class_name: str
    code_sha256: str
    checks: list[CheckResult]
    failures: list[str]  # ranked: screen/import/schema problems first
    tests: list[TestResult] = Field(default_factory=list)
    tests_run: int = 0
    tests_passed: int = 0
    tests_per_tool: dict[str, int] = Field(default_factory=dict)  # tests that reached the tool body
    tests_reaching_body: int = 0
    rule_tests: int = 0
    roundtrip_ok: bool = False
    determinism_ok: bool = False
    replay_digest: str | None = None  # sha256 of the replayed outputs + final state
    latency_p50_us: float | None = None
    latency_p95_us: float | None = None
    sandbox_status: str = "not_run"
    sandbox_runs: list[dict[str, Any]] = Field(default_factory=list)  # tools, tests, limits per run
    network_isolated: bool = False
    duration_s: float = 0.0

    def feedback(self, max_failures: int = 20) -> dict[str, Any]:
        """The part a reviser needs: ranked failures and the failing tests with their arguments."""
        return {
            "passed": self.passed,
            "failures": self.failures[:max_failures],
            "failing_tests": [t.model_dump(mode="json") for t in self.tests if not t.passed][:max_failures],
            "tests_run": self.tests_run,
            "tests_passed": self.tests_passed,
        }


def _ranked_failures(checks: list[CheckResult], problems: dict[str, list[str]]) -> list[str]:
    rank = {name: index for index, name in enumerate(CHECK_ORDER)}
    failed = sorted((c for c in checks if not c.passed), key=lambda c: rank.get(c.name, len(rank)))
    return [f"{c.name}: {problem}" for c in failed for problem in (problems.get(c.name) or [c.detail])]


def _report(
    spec: EnvSpec,
    code_sha256: str,
    checks: list[CheckResult],
    problems: dict[str, list[str]],
    extra: dict[str, Any],
    started: float,
    tested_tools: frozenset[str] | None = None,
) -> VerificationReport:
    tests_per_tool = extra.get("tests_per_tool") or {}
    tested = [t.name for t in spec.tools if tested_tools is None or t.name in tested_tools]
    passed = (
        bool(checks)
        and all(c.passed for c in checks)
        and all(tests_per_tool.get(name, 0) >= MIN_TESTS_PER_TOOL for name in tested)
    )
    return VerificationReport(
        passed=passed,
        class_name=spec.class_name,
        code_sha256=code_sha256,
        checks=checks,
        failures=_ranked_failures(checks, problems),
        duration_s=round(time.perf_counter() - started, 4),
        **extra,
    )


def _from_outcomes(
    spec: EnvSpec,
    code_sha256: str,
    groups: list[ToolGroup],
    outcomes: list[SandboxOutcome],
    started: float,
    tested_tools: frozenset[str] | None,
) -> VerificationReport:
    extra: dict[str, Any] = {
        "sandbox_status": next((o.status for o in outcomes if o.status != "ok"), "ok"),
        "network_isolated": bool(network_isolation_prefix()),
        "sandbox_runs": [_run_summary(g, o) for g, o in zip(groups, outcomes, strict=True)],
    }
    for number, (group, outcome) in enumerate(zip(groups, outcomes, strict=True), start=1):
        if outcome.status != "ok" or outcome.result is None:
            limits = group.limits
            where = f"tool group {number}/{len(groups)} ({len(group.tools)} tools, {group.tests} tests)"
            detail = (
                f"the sandboxed run of {where if len(groups) > 1 else f'{group.tests} tests'} ended with "
                f"{outcome.status}: {outcome.detail} (limits: {limits.cpu_seconds} s CPU, "
                f"{limits.wall_seconds:g} s wall, {limits.memory_mb} MB)"
            )
            checks = [CheckResult(name="sandbox", passed=False, detail=detail)]
            return _report(spec, code_sha256, checks, {"sandbox": [detail]}, extra, started)
    result = merge_group_results([dict(o.result or {}) for o in outcomes])
    rows = result.pop("checks")
    problems = {row["name"]: row.get("problems") or [] for row in rows}
    checks = [CheckResult(name=row["name"], passed=row["passed"], detail=row["detail"]) for row in rows]
    extra.update(result)
    return _report(spec, code_sha256, checks, problems, extra, started, tested_tools)


def _run_summary(group: ToolGroup, outcome: SandboxOutcome) -> dict[str, Any]:
    """What the verdict states about one sandboxed run: its tools, tests, limits and time."""
    return {
        "tools": len(group.tools),
        "tests": group.tests,
        **group.limits.model_dump(include={"cpu_seconds", "memory_mb", "wall_seconds"}),
        "status": outcome.status,
        "seconds": round(outcome.seconds, 3),
    }


def verify_batch(
    items: list[tuple[EnvSpec, str, dict[str, Any]]],
    *,
    limits: SandboxLimits | None = None,
    static_screen: bool = True,
    tested_tools: list[frozenset[str] | None] | None = None,
    policy: SandboxPolicy | None = None,
    module_checks: bool = True,
) -> list[VerificationReport]:
    """Verify `(spec, source, seed_state)` items in one sandbox worker; one report per item, in order.

    A module refused by the screen, killed by a limit or crashing its worker gets a failed report;
    the rest of the batch goes on. `policy`: what the sandbox may run without (default: nothing;
    see `SandboxPolicy`). Limits scale with each module's tests, tools and seed size, and
    a large module runs in tool groups (`verification_plan`); explicit `limits` replace the scaled
    ones. `static_screen=False` skips the AST screen: for testing the runtime layer alone, and for
    rule mutants of a screened module (they delete or negate, never add a name).
    `tested_tools[i]` (None = all) restricts item i's tool tests, and the three-tests-per-tool
    rule, to those tools; every other check runs in full. The mutation check
    uses it: a mutant changes one tool, and each test starts from the seed, so only that tool's
    tests can notice it. `module_checks=False` leaves out the whole-module checks (state round
    trip, replay determinism): the mutation check's, whose modules passed them unmutated.
    """
    reports: list[VerificationReport | None] = [None] * len(items)
    started_at: dict[int, float] = {}
    payloads: list[dict[str, Any]] = []
    jobs: list[tuple[int, ToolGroup]] = []  # (item index, group) per payload
    focus = tested_tools or [None] * len(items)
    generated: dict[tuple[int, int], list[ToolTest]] = {}  # mutants share one spec and seed
    for index, (spec, source, seed_state) in enumerate(items):
        started_at[index] = time.perf_counter()
        code_sha256 = sha256_hex(source)
        refusals = screen_source(source) if static_screen else []
        if refusals:
            checks = [CheckResult(name="static_screen", passed=False, detail="; ".join(refusals))]
            reports[index] = _report(
                spec,
                code_sha256,
                checks,
                {"static_screen": refusals},
                {"sandbox_status": "refused"},
                started_at[index],
            )
            continue
        try:
            key = (id(spec), id(seed_state))
            if key not in generated:
                generated[key] = generate_tool_tests(spec, seed_state)
            tests = [t for t in generated[key] if focus[index] is None or t.tool in focus[index]]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            reason = f"cannot generate tests from the spec and seed state: {type(exc).__name__}: {exc}"
            checks = [CheckResult(name="test_generation", passed=False, detail=reason)]
            reports[index] = _report(
                spec, code_sha256, checks, {"test_generation": [reason]}, {}, started_at[index]
            )
            continue
        for group in plan_groups(spec, tests, len(canonical_json(seed_state)), fixed=limits):
            members = set(group.tools) & (focus[index] or set(group.tools))
            if not members:
                continue
            payloads.append(
                {
                    "spec": spec.model_dump(mode="json"),
                    "source": source,
                    "code_sha256": code_sha256,
                    "seed_state": seed_state,
                    "tests": [t.model_dump(mode="json") for t in tests if t.tool in members],
                    "tools": [name for name in group.tools if name in members],
                    "module_checks": module_checks,
                }
            )
            jobs.append((index, group))
    if payloads:
        sandbox_started = time.perf_counter()
        outcomes = run_sandboxed(CHECKS_ENTRY, payloads, [group.limits for _, group in jobs], policy)
        # jobs run one after another: charge each its own sandbox time plus its share of worker start-up
        startup_share = (time.perf_counter() - sandbox_started - sum(o.seconds for o in outcomes)) / len(
            outcomes
        )
        by_item: dict[int, list[tuple[ToolGroup, SandboxOutcome, str]]] = {}
        for (index, group), payload, outcome in zip(jobs, payloads, outcomes, strict=True):
            by_item.setdefault(index, []).append((group, outcome, payload["code_sha256"]))
        for index, runs in by_item.items():
            groups = [group for group, _, _ in runs]
            run_outcomes = [outcome for _, outcome, _ in runs]
            report = _from_outcomes(
                items[index][0], runs[0][2], groups, run_outcomes, started_at[index], focus[index]
            )
            report.duration_s = round(
                sum(o.seconds for o in run_outcomes) + len(runs) * max(startup_share, 0.0), 4
            )
            reports[index] = report
    return [r for r in reports if r is not None]


def verify_environment(
    spec: EnvSpec,
    source: str,
    seed_state: dict[str, Any],
    *,
    limits: SandboxLimits | None = None,
) -> VerificationReport:
    """Verify one environment module against its spec and seed state (see `verify_batch`)."""
    return verify_batch([(spec, source, seed_state)], limits=limits)[0]
