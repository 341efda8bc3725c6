"""Pass@k solvability on the LLM path: k policy rollouts per RL task, scored by the reward.

Each rollout asks the "solver" role (prompt `solve`) for the next step — tool calls or a final
answer — runs the calls on a fresh Toolset from the task's initial states, and stops at a final
answer or `max_steps` calls. A rollout passes when its reward is 1.0; `difficulty = 1 - pass_rate`.
Without a configured solver model the stage is skipped with a reason (offline runs).
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


class SolverCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class SolverStep(BaseModel):
    """The solver's next step: calls to make, or (no calls) a final answer."""

    model_config = ConfigDict(extra="forbid")

    tool_calls: list[SolverCall] = Field(default_factory=list)
    final_answer: str = ""


def rollout(
    task: RLTask, envs: list[Any], gateway: Any, *, attempt: int, max_steps: int
) -> tuple[float, int]:
    """One policy rollout: (reward total, number of calls)."""
    toolset = Toolset(envs, task.initial_states, qualify="always")  # the task's training names
    conversation: list[dict[str, Any]] = [*task.messages[1:], {"attempt": attempt}]
    calls: list[dict[str, Any]] = []
    while len(calls) < max_steps:
        step: SolverStep = gateway.complete_structured(
            stage=STAGE,
            role="solver",
            prompt="solve",
            variables={"tools": task.tools, "conversation": conversation},
            output_model=SolverStep,
        ).value
        if not step.tool_calls:
            break
        for call in step.tool_calls[: max_steps - len(calls)]:
            calls.append({"name": call.name, "arguments": call.arguments})
            try:
                result = toolset.call(call.name, dict(call.arguments))
            except ToolError as exc:
                result = exc.to_dict()
            conversation.append({"tool_call": call.model_dump(), "result": canonical_json(result)})
    return score_rollout(task, calls, toolset.dump_states()).total, len(calls)


def pass_at_k(
    tasks: Iterable[RLTask], envs: EnvironmentRows, gateway: Any, *, k: int = 4, max_steps: int = 15
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """Difficulty rows (task_id, k, passes, pass_rate, difficulty, mean_reward, model); errors; metrics."""
    if gateway is None or not gateway.is_configured("solver"):
        return (
            [],
            [],
            {"skipped": True, "reason": "no LLM model configured for the solver role (offline run)"},
        )
    index: Mapping[str, Any] = environments_by_id(envs)
    model = gateway.model_for("solver")
    rows, errors = [], []
    for task in tasks:
        rewards = []
        for attempt in range(k):
            try:
                reward, _ = rollout(
                    task,
                    task_environments(task.env_ids, index),
                    gateway,
                    attempt=attempt,
                    max_steps=max_steps,
                )
            except (LLMOutputError, LLMProviderError, BudgetExceeded, KeyError) as exc:
                errors.append({"task_id": task.id, "stage": STAGE, "reason": f"rollout {attempt}: {exc}"})
                continue
            rewards.append(reward)
        if not rewards:
            continue
        passes = sum(1 for r in rewards if r >= 1.0)
        rows.append(
            {
                "task_id": task.id,
                "k": len(rewards),
                "passes": passes,
                "pass_rate": passes / len(rewards),
                "difficulty": 1 - passes / len(rewards),
                "mean_reward": sum(rewards) / len(rewards),
                "model": model,
            }
        )
    return rows, errors, {"skipped": False, "tasks": len(rows), "errors": len(errors)}
