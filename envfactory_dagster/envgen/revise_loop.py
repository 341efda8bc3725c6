"""LLM backend of `env_code` + `env_verification`: write the module, verify it, revise until it passes.

A coder writes the module from the spec (prompt `env_code`); the verdict is `verify_environment`
(executed, never judged); a reviser gets the code and the failing report (prompt `env_revise`).
The loop stops on a pass, on no improvement, or after `max_revisions` revisions. No improvement
means the NEW attempt passes no more tests than the best earlier attempt (the paper's code compared
a result with itself and so always stopped after two revisions). Every attempt is recorded.
"""

from __future__ import annotations

import difflib
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from envfactory_dagster.envgen.env_spec import EnvSpec
from envfactory_dagster.envgen.sandbox import SandboxLimits
from envfactory_dagster.envgen.verification import VerificationReport, verify_environment
from envfactory_dagster.llm.errors import BudgetExceeded, LLMNotConfigured, LLMOutputError, LLMProviderError
from envfactory_dagster.llm.prompts import extract_code_block, get_prompt

STAGE = "env_code"
CODE_PROMPT = "env_code"
REVISE_PROMPT = "env_revise"
LLM_ERRORS = (BudgetExceeded, LLMNotConfigured, LLMOutputError, LLMProviderError)

StopReason = Literal["passed", "no_improvement", "max_revisions", "llm_error"]


class TextAnswer(Protocol):
    """What the loop reads from an LLM answer (`llm.gateway.TextResult` satisfies it)."""

    text: str
    model: str
    prompt_name: str
    prompt_version: str
    tokens_in: int
    tokens_out: int
    cost_usd: float
    cached: bool


class TextCompleter(Protocol):
    """The one gateway method the loop needs (`llm.gateway.LLMGateway` satisfies it)."""

    def complete_text(
        self, *, stage: str, role: str, prompt: str, variables: dict[str, Any]
    ) -> TextAnswer: ...


class RevisionAttempt(BaseModel):
    """One synthesized version and its verdict."""

    model_config = ConfigDict(extra="forbid")

    attempt: int  # 1 = the coder's version, 2.. = revisions
    role: Literal["coder", "reviser"]
    code_sha256: str
    source: str  # the module itself: every version is stored (`env_code`) and re-verified
    passed: bool
    failures: list[str]
    tests_run: int
    tests_passed: int
    diff_size: int  # lines added + removed vs the previous attempt (attempt 1: its line count)
    model: str
    prompt: str  # name@version
    tokens_in: int
    tokens_out: int
    cost_usd: float
    cached: bool


class RevisionOutcome(BaseModel):
    """The loop's result: the verified code (or None) and the whole history."""

    model_config = ConfigDict(extra="forbid")

    final_code: str | None  # the passing module, None when no attempt passed
    passed: bool
    stop_reason: StopReason
    stop_detail: str = ""
    attempts: list[RevisionAttempt] = Field(default_factory=list)
    final_report: VerificationReport | None = None  # the report of the last verified attempt


def diff_size(previous: str, current: str) -> int:
    """Lines added plus lines removed between two versions of a module."""
    changed = 0
    for line in difflib.unified_diff(previous.splitlines(), current.splitlines(), lineterm="", n=0):
        if line.startswith(("+++", "---", "@@")):
            continue
        changed += 1
    return changed


def _variables(prompt: str, values: dict[str, Any]) -> dict[str, Any]:
    """Only the variables the prompt uses (unused ones would still change the cache key)."""
    wanted = get_prompt(prompt).placeholders()
    return {name: value for name, value in values.items() if name in wanted}


def synthesize_with_revisions(
    spec: EnvSpec,
    resource_text: str,
    seed_state: dict[str, Any],
    gateway: TextCompleter,
    *,
    max_revisions: int = 3,
    limits: SandboxLimits | None = None,
) -> RevisionOutcome:
    """Coder -> verify -> (reviser -> verify)*; stop on pass, no improvement, or `max_revisions`."""
    values = {"spec_json": spec.model_dump_json(indent=2), "resource_text": resource_text}
    attempts: list[RevisionAttempt] = []
    previous_code = ""
    best: tuple[str, VerificationReport] | None = None  # (code, report) with the most tests passed
    report: VerificationReport | None = None
    while True:
        number = len(attempts) + 1
        role: Literal["coder", "reviser"] = "coder" if best is None else "reviser"
        prompt = CODE_PROMPT if best is None else REVISE_PROMPT
        if best is not None:
            values.update(attempt=number - 1, code=best[0], report=best[1].feedback())
        try:
            answer = gateway.complete_text(
                stage=STAGE, role=role, prompt=prompt, variables=_variables(prompt, values)
            )
        except LLM_ERRORS as exc:
            return RevisionOutcome(
                final_code=None,
                passed=False,
                stop_reason="llm_error",
                stop_detail=f"attempt {number} ({role}): {type(exc).__name__}: {exc}",
                attempts=attempts,
                final_report=report,
            )
        code = extract_code_block(answer.text)
        report = verify_environment(spec, code, seed_state, limits=limits)
        attempts.append(
            RevisionAttempt(
                attempt=number,
                role=role,
                code_sha256=report.code_sha256,
                source=code,
                passed=report.passed,
                failures=report.failures,
                tests_run=report.tests_run,
                tests_passed=report.tests_passed,
                diff_size=diff_size(previous_code, code),
                model=answer.model,
                prompt=f"{answer.prompt_name}@{answer.prompt_version}",
                tokens_in=answer.tokens_in,
                tokens_out=answer.tokens_out,
                cost_usd=answer.cost_usd,
                cached=answer.cached,
            )
        )
        previous_code = code
        if report.passed:
            return RevisionOutcome(
                final_code=code, passed=True, stop_reason="passed", attempts=attempts, final_report=report
            )
        if best is not None and report.tests_passed <= best[1].tests_passed:
            return RevisionOutcome(
                final_code=None,
                passed=False,
                stop_reason="no_improvement",
                attempts=attempts,
                final_report=report,
                stop_detail=f"attempt {number} passed {report.tests_passed} tests, the best earlier attempt "
                f"passed {best[1].tests_passed}",
            )
        best = (code, report)
        if number > max_revisions:
            return RevisionOutcome(
                final_code=None,
                passed=False,
                stop_reason="max_revisions",
                attempts=attempts,
                final_report=report,
                stop_detail=f"no pass after {max_revisions} revision(s)",
            )
