"""Sandbox limits scale with the module; a large module is verified in tool groups."""

from __future__ import annotations

import pytest

from envfactory_dagster.envgen import verification_plan
from envfactory_dagster.envgen.test_generation import generate_tool_tests
from envfactory_dagster.envgen.verification import verify_environment
from envfactory_dagster.envgen.verification_plan import plan_groups, scaled_limits
from tests.fakes.example_env_spec import EXAMPLE_ENV_SOURCE, EXAMPLE_SEED_STATE, EXAMPLE_SPEC


def test_limits_grow_with_tests_tools_and_state() -> None:
    small = scaled_limits(tests=30, tools=3, state_bytes=10_000)
    assert scaled_limits(tests=400, tools=3, state_bytes=10_000).cpu_seconds > small.cpu_seconds
    assert scaled_limits(tests=30, tools=60, state_bytes=10_000).memory_mb > small.memory_mb
    assert scaled_limits(tests=30, tools=3, state_bytes=5_000_000).cpu_seconds > small.cpu_seconds
    assert small.wall_seconds > small.cpu_seconds


def test_a_large_module_is_split_into_whole_tool_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    tests = generate_tool_tests(EXAMPLE_SPEC, EXAMPLE_SEED_STATE)
    assert len(plan_groups(EXAMPLE_SPEC, tests, 1000)) == 1
    monkeypatch.setattr(verification_plan, "MAX_TESTS_PER_RUN", 8)
    groups = plan_groups(EXAMPLE_SPEC, tests, 1000)
    assert len(groups) > 1
    names = [name for g in groups for name in g.tools]
    assert sorted(names) == sorted(t.name for t in EXAMPLE_SPEC.tools), "every tool in exactly one group"
    assert sum(g.tests for g in groups) == len(tests)


def test_grouped_verdict_equals_the_single_run(monkeypatch: pytest.MonkeyPatch) -> None:
    whole = verify_environment(EXAMPLE_SPEC, EXAMPLE_ENV_SOURCE, EXAMPLE_SEED_STATE)
    monkeypatch.setattr(verification_plan, "MAX_TESTS_PER_RUN", 8)
    grouped = verify_environment(EXAMPLE_SPEC, EXAMPLE_ENV_SOURCE, EXAMPLE_SEED_STATE)
    assert whole.passed and grouped.passed
    assert len(whole.sandbox_runs) == 1 and len(grouped.sandbox_runs) > 1
    assert grouped.tests_run == whole.tests_run
    assert grouped.tests_per_tool == whole.tests_per_tool
    assert all(run["cpu_seconds"] >= 5 and run["status"] == "ok" for run in grouped.sandbox_runs)


def test_a_run_killed_by_its_limit_names_the_group_and_its_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verification_plan, "MAX_TESTS_PER_RUN", 8)
    monkeypatch.setattr(verification_plan, "WALL_PER_CPU", 0.0)
    monkeypatch.setattr(verification_plan, "WALL_SLACK_SECONDS", 0.001)
    report = verify_environment(EXAMPLE_SPEC, EXAMPLE_ENV_SOURCE, EXAMPLE_SEED_STATE)
    assert not report.passed
    assert "tool group 1/" in report.failures[0] and "s wall" in report.failures[0]
