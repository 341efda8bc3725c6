"""The sandbox fails closed: empty network namespace, `nobody`, an allow-listed environment, a
screen that refuses attribute chains to the interpreter; without isolation nothing runs unless a
setting allows it."""

from __future__ import annotations

import os

import pytest

from envfactory_dagster.envgen import sandbox
from envfactory_dagster.envgen.code_screen import screen_source
from envfactory_dagster.envgen.sandbox import (
    NOBODY_UID,
    WORKER_ENVIRONMENT_ALLOWED,
    SandboxLimits,
    SandboxPolicy,
    run_job_in_child,
    run_sandboxed,
)
from envfactory_dagster.envgen.verification import verify_environment
from tests.fakes.example_env_spec import EXAMPLE_ENV_SOURCE, EXAMPLE_SEED_STATE, EXAMPLE_SPEC
from tests.fakes.sandbox_probe import confinement

PROBE = "tests.fakes.sandbox_probe:confinement"
LIMITS = SandboxLimits(cpu_seconds=2, wall_seconds=10.0)
SECRET = "ENVFACTORY_TEST_PLANTED_SECRET"
needs_isolation = pytest.mark.skipif(
    not sandbox.network_isolation_prefix() or os.geteuid() != 0,
    reason="needs root and `unshare --net` (the pipeline's machines have both)",
)


@needs_isolation
def test_the_child_runs_as_nobody_in_an_empty_network_namespace_without_the_callers_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SECRET, "s3cr3t-token")
    [outcome] = run_sandboxed(PROBE, [{"secret_name": SECRET}], LIMITS)
    assert outcome.status == "ok", outcome.detail
    seen = outcome.result or {}
    assert seen["interfaces"] == ["lo"], "only the loopback of a fresh network namespace"
    assert seen["uid"] == seen["euid"] == NOBODY_UID
    assert seen["secret"] is None
    allowed = {*WORKER_ENVIRONMENT_ALLOWED, "HOME", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE"}
    assert set(seen["environ"]) <= allowed, set(seen["environ"]) - allowed


def test_without_a_network_namespace_nothing_runs_unless_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "network_isolation_prefix", lambda: ())
    report = verify_environment(EXAMPLE_SPEC, EXAMPLE_ENV_SOURCE, EXAMPLE_SEED_STATE)
    assert not report.passed and report.sandbox_status == "unconfined"
    assert "no network namespace" in report.failures[0] and "sandbox_allow_network" in report.failures[0]
    [outcome] = run_sandboxed(PROBE, [{}], LIMITS, SandboxPolicy(allow_network=True))
    assert outcome.status == "ok", outcome.detail


@pytest.mark.skipif(os.geteuid() != 0, reason="only root has privileges to drop")
def test_a_failed_privilege_drop_ends_the_job_unless_root_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(_: int) -> None:
        raise PermissionError("nobody is not mapped here")

    monkeypatch.setattr(os, "setuid", refuse)  # the forked child inherits the patched module
    outcome = run_job_in_child(confinement, {}, LIMITS)
    assert outcome.status == "unconfined" and "sandbox_allow_root" in outcome.detail
    allowed = run_job_in_child(confinement, {}, LIMITS, policy=SandboxPolicy(allow_root=True))
    assert allowed.status == "ok", allowed.detail


ESCAPES = {
    "typing_sys_modules": 'import typing\nos = typing.sys.modules["os"]\n',
    "module_os_attribute": "import json\nx = json.decoder.re.os\n",
    "builtins_through_module": "import functools\nb = functools.builtins\n",
    "getattr_literal_sys": 'import typing\ns = getattr(typing, "sys")\n',
    "function_globals": "f = lambda: 0\ng = f.__globals__\n",
    "generator_frame_globals": "def gen():\n    yield 1\n\nglobals_ = gen().gi_frame.f_globals\n",
    "traceback_frame": "try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    fr = e.__traceback__.tb_frame\n",
    "importlib_through_attribute": "import pydantic\nm = pydantic.importlib\n",
}


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_the_screen_refuses_attribute_chains_to_the_interpreter(name: str) -> None:
    assert screen_source(ESCAPES[name]), f"{name} was admitted"
