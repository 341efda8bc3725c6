"""LLM backend of `env_code` + `env_verification`: write tool bodies, verify, revise until it passes.

The module skeleton comes from the spec (`code_skeleton.module_skeleton`); the coder writes the
tool bodies, a few tools per call (prompt `env_tool_bodies`), sized to the role's answer limit;
the verdict is `verify_environment` (executed, never judged); the reviser rewrites the bodies of
the tools the report names (prompt `env_revise_bodies`). An answer that does not parse, names
unknown tools, misses some or was cut at the answer limit keeps its good functions and is
repaired in the same conversation (the problems sent back); a cut answer for several tools is
split into smaller calls instead. A prompt holds only the skeleton excerpt of its batch (the
entities its tools touch, their decorators and signatures) and, for a revision, the report cut to
what is left of the model's context window; a batch whose prompt does not fit the window with the
answer is asked in halves. The loop stops on a pass, on no
improvement, or after `max_revisions` revisions. No improvement means the NEW attempt passes no
more tests than the best earlier attempt (the paper's code compared a result with itself and so
always stopped after two revisions). Every attempt is recorded, with every call behind it.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from envfactory_dagster.envgen.code_skeleton import (
    merge_tool_bodies,
    module_skeleton,
    parse_tool_bodies,
    skeleton_excerpt,
    tool_brief,
    unwritten_tools,
)
from envfactory_dagster.envgen.env_spec import EnvSpec
from envfactory_dagster.envgen.sandbox import SandboxLimits
from envfactory_dagster.envgen.verification import VerificationReport, verify_environment
from envfactory_dagster.llm.config import LLMSettings
from envfactory_dagster.llm.errors import BudgetExceeded, LLMNotConfigured, LLMOutputError, LLMProviderError
from envfactory_dagster.llm.prompts import render_value

STAGE = "env_code"
CODE_PROMPT = "env_tool_bodies"
REVISE_PROMPT = "env_revise_bodies"
LLM_ERRORS = (BudgetExceeded, LLMNotConfigured, LLMOutputError, LLMProviderError)
ANSWER_TOKENS_PER_TOOL = 700  # a body with its checks and rules, with room to spare
MAX_TOOLS_PER_CALL = 4

StopReason = Literal["passed", "no_improvement", "max_revisions", "llm_error"]
Role = Literal["coder", "reviser"]


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
    truncated: bool


class TextCompleter(Protocol):
    """The gateway methods the loop needs (`llm.gateway.LLMGateway` satisfies it)."""

    settings: LLMSettings

    def complete_text(
        self,
        *,
        stage: str,
        role: str,
        prompt: str,
        variables: dict[str, Any],
        followup: list[dict[str, str]] | None = None,
    ) -> TextAnswer: ...

    def prompt_budget_chars(self, role: str, prompt: str) -> int: ...


class BodyCall(BaseModel):
    """One model answer with tool bodies: what was asked, what came back, what was wrong with it."""

    model_config = ConfigDict(extra="forbid")

    tools: list[str]  # asked for in this call
    written: list[str]  # bodies taken from the answer
    problems: list[str]  # sent back for repair (empty = a clean answer)
    repair: bool  # this call repaired the previous answer of the same batch
    truncated: bool  # cut at the answer limit
    tokens_in: int
    tokens_out: int
    cost_usd: float
    cached: bool


class RevisionAttempt(BaseModel):
    """One synthesized version and its verdict."""

    model_config = ConfigDict(extra="forbid")

    attempt: int  # 1 = the coder's version, 2.. = revisions
    role: Role
    code_sha256: str
    source: str  # the module itself: every version is stored (`env_code`) and re-verified
    passed: bool
    failures: list[str]
    tests_run: int
    tests_passed: int
    diff_size: int  # lines added + removed vs the previous attempt (attempt 1: vs the skeleton)
    model: str
    prompt: str  # name@version
    tokens_in: int
    tokens_out: int
    cost_usd: float
    cached: bool
    tools_asked: list[str] = Field(default_factory=list)  # tools whose bodies this attempt (re)wrote
    tools_unwritten: list[str] = Field(default_factory=list)  # still the skeleton's placeholder
    calls: list[BodyCall] = Field(default_factory=list)
    context_splits: int = 0  # batches asked in halves because their prompt did not fit the window
    llm_error: str = ""  # the call that failed part-way (the version is verified and stored anyway)

    @property
    def repairs(self) -> int:
        return sum(c.repair for c in self.calls)


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


def tools_per_call(settings: LLMSettings, role: str) -> int:
    """How many tool bodies one answer may hold within the role's answer limit."""
    return max(1, min(MAX_TOOLS_PER_CALL, settings.max_tokens_for(role) // ANSWER_TOKENS_PER_TOOL))


def failing_tools(report: VerificationReport, spec: EnvSpec, code: str) -> list[str]:
    """The tools a revision rewrites: unwritten ones, those with failing tests, those a failure names;
    every tool when the failures name none (a module-level problem)."""
    names = [t.name for t in spec.tools]
    named = set(unwritten_tools(code)) | {t.tool for t in report.tests if not t.passed}
    for failure in report.failures:
        named |= {n for n in names if re.search(rf"\b{re.escape(n)}\b", failure)}
    return [n for n in names if n in named] or names


def _cut(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    return text[: max(max_chars - 60, 0)] + "\n... (cut to fit the model's context window)"


class _BodyWriter:
    """Asks for the bodies of some tools, batch by batch, repairing or splitting bad answers."""

    def __init__(
        self, spec: EnvSpec, gateway: TextCompleter, role: Role, prompt: str, repair_rounds: int
    ) -> None:
        self.spec = spec
        self.gateway = gateway
        self.role = role
        self.prompt = prompt
        self.repair_rounds = repair_rounds
        self.calls: list[BodyCall] = []
        self.answers: list[TextAnswer] = []
        self.partial = ""  # the code so far: kept when a call fails part-way
        self.context_splits = 0  # batches split because their prompt did not fit the window

    def write(self, code: str, tools: list[str], extra: dict[str, Any]) -> str:
        """`code` with the bodies of `tools` written; an LLM error part-way propagates (the code
        written so far stays in `self.partial`)."""
        size = tools_per_call(self.gateway.settings, self.role)
        queue = [tools[i : i + size] for i in range(0, len(tools), size)]
        self.partial = code
        while queue:
            batch = queue.pop(0)
            self.partial = self._batch(self.partial, batch, extra, queue)
        return self.partial

    def _variables(self, code: str, batch: list[str], extra: dict[str, Any]) -> dict[str, Any]:
        """The batch's tool briefs and the skeleton excerpt they need (with the current bodies for a
        revision), the report cut to what is left of the context budget."""
        briefs = render_value([tool_brief(self.spec, t) for t in self.spec.tools if t.name in batch])
        current, _ = parse_tool_bodies(code, batch)
        context = merge_tool_bodies(skeleton_excerpt(self.spec, batch), current)
        if self.prompt == CODE_PROMPT:
            return {"skeleton": context, "tools": briefs}
        budget = self.gateway.prompt_budget_chars(self.role, self.prompt) - len(briefs) - len(context)
        return {
            "code": context,
            "tools": briefs,
            "attempt": extra["attempt"],
            "report": _cut(render_value(extra["report"]), max(budget, 500)),
        }

    def _batch(self, code: str, batch: list[str], extra: dict[str, Any], queue: list[list[str]]) -> str:
        variables = self._variables(code, batch, extra)
        size = sum(len(str(v)) for v in variables.values())
        if size > self.gateway.prompt_budget_chars(self.role, self.prompt) and len(batch) > 1:
            half = (len(batch) + 1) // 2  # the window holds fewer tools' context: ask for fewer
            queue[:0] = [batch[:half], batch[half:]]
            self.context_splits += 1
            return code
        followup: list[dict[str, str]] = []
        for round_number in range(self.repair_rounds + 1):
            answer = self.gateway.complete_text(
                stage=STAGE, role=self.role, prompt=self.prompt, variables=variables, followup=followup
            )
            self.answers.append(answer)
            bodies, problems = parse_tool_bodies(answer.text, batch, cut=answer.truncated)
            if answer.truncated:
                problems.insert(0, "the answer was cut off at the answer length limit")
            code = merge_tool_bodies(code, bodies)
            self.calls.append(
                BodyCall(
                    tools=batch,
                    written=sorted(bodies),
                    problems=problems,
                    repair=round_number > 0,
                    truncated=answer.truncated,
                    tokens_in=answer.tokens_in,
                    tokens_out=answer.tokens_out,
                    cost_usd=answer.cost_usd,
                    cached=answer.cached,
                )
            )
            rest = [t for t in batch if t not in bodies]
            if not rest:
                return code
            if answer.truncated and len(rest) > 1:  # too much for one answer: ask for fewer at a time
                half = (len(rest) + 1) // 2
                queue[:0] = [rest[:half], rest[half:]]
                return code
            followup = [
                *followup,
                {"role": "assistant", "content": answer.text},
                {
                    "role": "user",
                    "content": "Your answer could not be used completely: "
                    + "; ".join(problems)
                    + f". Reply again with only the functions {', '.join(rest)}, complete, in one "
                    "```python code block.",
                },
            ]
            batch = rest
        return code


def synthesize_with_revisions(
    spec: EnvSpec,
    seed_state: dict[str, Any],
    gateway: TextCompleter,
    *,
    max_revisions: int = 3,
    repair_rounds: int = 1,
    limits: SandboxLimits | None = None,
) -> RevisionOutcome:
    """Coder -> verify -> (reviser -> verify)*; stop on pass, no improvement, or `max_revisions`."""
    skeleton = module_skeleton(spec)
    attempts: list[RevisionAttempt] = []
    previous_code = skeleton
    best: tuple[str, VerificationReport] | None = None  # (code, report) with the most tests passed
    report: VerificationReport | None = None
    while True:
        number = len(attempts) + 1
        role: Role = "coder" if best is None else "reviser"
        if best is None:
            writer = _BodyWriter(spec, gateway, "coder", CODE_PROMPT, repair_rounds)
            base, tools, extra = skeleton, [t.name for t in spec.tools], {}
        else:
            writer = _BodyWriter(spec, gateway, "reviser", REVISE_PROMPT, repair_rounds)
            base, tools = best[0], failing_tools(best[1], spec, best[0])
            extra = {"attempt": number - 1, "report": best[1].feedback()}
        error = ""
        try:
            code = writer.write(base, tools, extra)
        except LLM_ERRORS as exc:
            code, error = writer.partial, f"attempt {number} ({role}): {type(exc).__name__}: {exc}"
        if not writer.answers:  # nothing new to verify
            return RevisionOutcome(
                final_code=None,
                passed=False,
                stop_reason="llm_error",
                stop_detail=error,
                attempts=attempts,
                final_report=report,
            )
        report = verify_environment(spec, code, seed_state, limits=limits)
        attempts.append(_attempt(number, role, code, previous_code, report, tools, writer, error))
        previous_code = code
        if report.passed:
            return RevisionOutcome(
                final_code=code, passed=True, stop_reason="passed", attempts=attempts, final_report=report
            )
        if error:
            return RevisionOutcome(
                final_code=None,
                passed=False,
                stop_reason="llm_error",
                stop_detail=error,
                attempts=attempts,
                final_report=report,
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


def _attempt(
    number: int,
    role: Role,
    code: str,
    previous_code: str,
    report: VerificationReport,
    tools: list[str],
    writer: _BodyWriter,
    error: str,
) -> RevisionAttempt:
    answers = writer.answers
    first = answers[0]
    return RevisionAttempt(
        attempt=number,
        role=role,
        code_sha256=report.code_sha256,
        source=code,
        passed=report.passed,
        failures=report.failures,
        tests_run=report.tests_run,
        tests_passed=report.tests_passed,
        diff_size=diff_size(previous_code, code),
        model=first.model,
        prompt=f"{first.prompt_name}@{first.prompt_version}",
        tokens_in=sum(a.tokens_in for a in answers),
        tokens_out=sum(a.tokens_out for a in answers),
        cost_usd=sum(a.cost_usd for a in answers),
        cached=all(a.cached for a in answers),
        tools_asked=tools,
        tools_unwritten=unwritten_tools(code),
        calls=writer.calls,
        context_splits=writer.context_splits,
        llm_error=error,
    )
