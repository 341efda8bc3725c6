"""Pass@k solvability on the LLM path: k policy rollouts per RL task, scored by the reward, and
the judge's pick among them.

Each rollout asks the "solver" role (prompt `solve`) for the next step — tool calls or a final
answer — runs the calls on a fresh Toolset from the task's initial states, and stops at a final
answer or `max_steps` calls. A rollout passes when its reward is 1.0; `difficulty = 1 - pass_rate`.
As in the paper, the "judge" role (prompt `judge`) then picks the best rollout from the
transcripts (correct > efficient > autonomous > ...). The executed reward keeps the last word: a
pick scoring below the best reward is recorded as a disagreement and the best-scoring rollout is
the one selected. Without a configured solver model the stage is skipped with a reason (offline).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from envfactory_dagster.export.reward import score_rollout
from envfactory_dagster.export.rl_task_model import RLTask
from envfactory_dagster.lineage import canonical_json
from envfactory_dagster.llm.errors import BudgetExceeded, LLMOutputError, LLMProviderError
from envfactory_dagster.querygen.replay import EnvironmentRows, environments_by_id, task_environments
from envfactory_dagster.runtime.contract import ToolError
from envfactory_dagster.runtime.toolset import Toolset

STAGE = "pass_at_k"
DIFFICULTY_COLUMNS = (
    "task_id",
    "k",
    "passes",
    "pass_rate",
    "difficulty",
    "mean_reward",
    "rewards_json",
    "model",
    "judge_choice",
    "judge_agrees",
    "judge_reason",
    "selected_rollout",
    "selected_reward",
)


class SolverCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class JudgeVerdict(BaseModel):
    """The judge's pick among the candidate rollouts of one task."""

    model_config = ConfigDict(extra="forbid")

    best: int = Field(description="index of the best candidate")
    reasons: list[str] = Field(default_factory=list, description="a short reason per candidate, in order")


class Rollout(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reward: float
    calls: list[dict[str, Any]]
    transcript: list[dict[str, Any]]  # the solver's steps and the tool results, as the judge reads them


class SolverStep(BaseModel):
    """The solver's next step: calls to make, or (no calls) a final answer."""

    model_config = ConfigDict(extra="forbid")

    tool_calls: list[SolverCall] = Field(default_factory=list)
    final_answer: str = ""


def solve(
    tools: list[dict[str, Any]],
    conversation: list[dict[str, Any]],
    toolset: Toolset,
    gateway: Any,
    *,
    stage: str,
    max_steps: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
    """The `solver` role's episode on `toolset` (its tools named as in `tools`): it asks for the
    next step, runs its calls (a refused call is an observation), and stops at a final answer or
    `max_steps` calls. Returns (calls made, the conversation with each call and result, final answer)."""
    conversation = list(conversation)
    calls: list[dict[str, Any]] = []
    while len(calls) < max_steps:
        step: SolverStep = gateway.complete_structured(
            stage=stage,
            role="solver",
            prompt="solve",
            variables={"tools": tools, "conversation": conversation},
            output_model=SolverStep,
        ).value
        if not step.tool_calls:
            return calls, conversation, step.final_answer
        for call in step.tool_calls[: max_steps - len(calls)]:
            calls.append({"name": call.name, "arguments": call.arguments})
            try:
                result = toolset.call(call.name, dict(call.arguments))
            except ToolError as exc:
                result = exc.to_dict()
            conversation.append({"tool_call": call.model_dump(), "result": canonical_json(result)})
    return calls, conversation, ""


def rollout(task: RLTask, envs: list[Any], gateway: Any, *, attempt: int, max_steps: int) -> Rollout:
    """One policy rollout: its reward, calls and transcript."""
    toolset = Toolset(envs, task.initial_states, qualify="always")  # the task's training names
    calls, conversation, final_answer = solve(
        task.tools,
        [*task.messages[1:], {"attempt": attempt}],
        toolset,
        gateway,
        stage=STAGE,
        max_steps=max_steps,
    )
    transcript = [*conversation[len(task.messages) :], {"final_answer": final_answer}]
    reward = score_rollout(task, calls, toolset.dump_states()).total
    return Rollout(reward=reward, calls=calls, transcript=transcript)


def judge_pick(task: RLTask, rollouts: list[Rollout], gateway: Any) -> dict[str, Any]:
    """The judge's pick and whether the executed rewards agree; the selected rollout is the pick
    unless a rollout scored higher."""
    best_reward = max(r.reward for r in rollouts)
    by_reward = next(i for i, r in enumerate(rollouts) if r.reward == best_reward)
    verdict: JudgeVerdict = gateway.complete_structured(
        stage=STAGE,
        role="judge",
        prompt="judge",
        variables={
            "task": [m["content"] for m in task.messages if m.get("role") == "user"],
            "candidates": [{"index": i, "transcript": r.transcript} for i, r in enumerate(rollouts)],
        },
        output_model=JudgeVerdict,
    ).value
    valid = 0 <= verdict.best < len(rollouts)
    agrees = valid and rollouts[verdict.best].reward == best_reward
    return {
        "judge_choice": verdict.best if valid else None,
        "judge_agrees": agrees,
        "judge_reason": (
            verdict.reasons[verdict.best] if valid and verdict.best < len(verdict.reasons) else ""
        )
        or ("" if valid else f"index {verdict.best} is not a candidate"),
        "selected_rollout": verdict.best if agrees else by_reward,
        "selected_reward": best_reward,
    }


def pass_at_k(
    tasks: Iterable[RLTask], envs: EnvironmentRows, gateway: Any, *, k: int = 4, max_steps: int = 15
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """Difficulty rows (task_id, k, passes, pass_rate, difficulty, mean_reward, model, the judge's
    pick); errors; metrics."""
    if gateway is None or not gateway.is_configured("solver"):
        return (
            [],
            [],
            {"skipped": True, "reason": "no LLM model configured for the solver role (offline run)"},
        )
    index: Mapping[str, Any] = environments_by_id(envs)
    model = gateway.model_for("solver")
    judged = gateway.is_configured("judge")
    rows, errors = [], []
    for task in tasks:
        rollouts: list[Rollout] = []
        for attempt in range(k):
            try:
                rollouts.append(
                    rollout(
                        task,
                        task_environments(task.env_ids, index),
                        gateway,
                        attempt=attempt,
                        max_steps=max_steps,
                    )
                )
            except (LLMOutputError, LLMProviderError, BudgetExceeded, KeyError) as exc:
                errors.append({"task_id": task.id, "stage": STAGE, "reason": f"rollout {attempt}: {exc}"})
        if not rollouts:
            continue
        rewards = [r.reward for r in rollouts]
        passes = sum(1 for r in rewards if r >= 1.0)
        row: dict[str, Any] = {
            "task_id": task.id,
            "k": len(rewards),
            "passes": passes,
            "pass_rate": passes / len(rewards),
            "difficulty": 1 - passes / len(rewards),
            "mean_reward": sum(rewards) / len(rewards),
            "rewards_json": canonical_json(rewards),
            "model": model,
            "judge_choice": None,
            "judge_agrees": None,
            "judge_reason": "",
            "selected_rollout": rewards.index(max(rewards)),
            "selected_reward": max(rewards),
        }
        if judged and len(rollouts) > 1:
            try:
                row.update(judge_pick(task, rollouts, gateway))
            except (LLMOutputError, LLMProviderError, BudgetExceeded) as exc:
                errors.append({"task_id": task.id, "stage": STAGE, "reason": f"judge: {exc}"})
        rows.append(row)
    metrics = {
        "skipped": False,
        "tasks": len(rows),
        "errors": len(errors),
        "judged": sum(r["judge_choice"] is not None for r in rows),
        "judge_disagreements": sum(r["judge_agrees"] is False for r in rows),
    }
    return rows, errors, metrics
