"""One rollout of an RL task: a fresh Toolset, the calls made, their observations, the reward.

The Gym wrapper (gym_env.py) and the trainer adapters (trainer_tools.py) are thin shapes over
this class, so every way a policy reaches an environment counts calls, malformed calls and
tool errors the same way and scores with the same reward (`export.reward.score_rollout`).

Rules every shape inherits:
- a tool error (unknown tool, invalid arguments, refused call) is an observation
  `{"error": {"code", "message"}}`, never an exception;
- a call that cannot be read (no name, arguments not a JSON object) is a malformed call: it
  counts against the format component and yields an `{"error": {"code": "malformed_call"}}`
  observation, and it is not executed;
- each rollout owns its environment instances (loaded from the task's initial states), so two
  rollouts of the same task share nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from envfactory_dagster.export.reward import RewardBreakdown, parse_calls, score_rollout
from envfactory_dagster.export.rl_task_model import RLTask
from envfactory_dagster.export.rl_tasks import rl_task_from_row
from envfactory_dagster.runtime.contract import ToolError
from envfactory_dagster.runtime.loader import VerifiedEnvironment
from envfactory_dagster.runtime.toolset import Toolset


def coerce_rl_task(task: RLTask | Mapping[str, Any]) -> RLTask:
    """An RLTask from a model, a plain dict of its fields, or a stored `rl_tasks` row (nested
    columns as `<name>_json` text; read by `rl_tasks.rl_task_from_row`)."""
    if isinstance(task, RLTask):
        return task
    if "messages_json" in task:
        return rl_task_from_row(task)
    return RLTask.model_validate({k: v for k, v in task.items() if k in RLTask.model_fields})


def observation_text(result: Mapping[str, Any]) -> str:
    """The text a model sees for a tool result or error (compact JSON, keys in tool order)."""
    return json.dumps(result, ensure_ascii=False, separators=(",", ":"))


class Rollout:
    """A policy's episode on one task: call tools, then score (one instance per rollout)."""

    def __init__(
        self, task: RLTask | Mapping[str, Any], envs_by_id: Mapping[str, VerifiedEnvironment]
    ) -> None:
        self.task = coerce_rl_task(task)
        missing = [env_id for env_id in self.task.env_ids if env_id not in envs_by_id]
        if missing:
            raise KeyError(f"task {self.task.id}: environments not in the registry: {', '.join(missing)}")
        # env order decides exported names (Toolset qualifies clashing names), so keep the task's
        self.toolset = Toolset([envs_by_id[env_id] for env_id in self.task.env_ids], self.task.initial_states)
        self.calls: list[dict[str, Any]] = []  # well-formed calls, in order, as {name, arguments}
        self.malformed_calls = 0
        self.tool_errors = 0

    def call(self, name: Any, arguments: Any) -> tuple[dict[str, Any], bool]:
        """Execute one call; returns (observation, ok). Never raises for anything the policy sends."""
        (parsed, _malformed) = parse_calls([{"name": name, "arguments": arguments}])
        if not parsed:
            self.malformed_calls += 1
            error = ToolError("malformed_call", "a call needs a tool name and a JSON object of arguments")
            return error.to_dict(), False
        tool_name, tool_arguments = parsed[0]
        self.calls.append({"name": tool_name, "arguments": tool_arguments})
        try:
            return self.toolset.call(tool_name, tool_arguments), True
        except ToolError as error:
            self.tool_errors += 1
            return error.to_dict(), False

    def final_states(self) -> dict[str, dict[str, Any]]:
        return self.toolset.dump_states()

    def score(self, weights: Mapping[str, float] | None = None) -> RewardBreakdown:
        """The reward of the rollout so far (components and details in the breakdown)."""
        return score_rollout(
            self.task, self.calls, self.final_states(), malformed_calls=self.malformed_calls, weights=weights
        )
