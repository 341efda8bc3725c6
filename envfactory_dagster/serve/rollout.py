"""One rollout of an RL task: its own Toolset, the calls made, their observations, the reward.

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
  rollouts of the same task share nothing;
- tool names are the training names (`<ClassName>__<tool>`), as in the exported tasks;
- a tool only the user can run (the task's `user_tools`) is refused with `user_only_tool`.

Trainers reset the same tasks many times (n rollouts per prompt, epochs): `TaskCache` parses and
validates a task once (`PreparedTask`: the RLTask, its environments, validated state snapshots and
tool names) and every later rollout of it starts from copy-on-write snapshots in microseconds.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from envfactory_dagster.export.chat_messages import observation_text
from envfactory_dagster.export.reward import RewardBreakdown, parse_calls, score_rollout
from envfactory_dagster.export.rl_task_model import RLTask
from envfactory_dagster.export.rl_tasks import rl_task_from_row
from envfactory_dagster.runtime.contract import ToolError
from envfactory_dagster.runtime.loader import VerifiedEnvironment
from envfactory_dagster.runtime.toolset import Toolset

__all__ = ["PreparedTask", "Rollout", "TaskCache", "coerce_rl_task", "observation_text"]


def coerce_rl_task(task: RLTask | Mapping[str, Any]) -> RLTask:
    """An RLTask from a model, a plain dict of its fields, or a stored `rl_tasks` row (nested
    columns as `<name>_json` text; read by `rl_tasks.rl_task_from_row`)."""
    if isinstance(task, RLTask):
        return task
    if "messages_json" in task:
        return rl_task_from_row(task)
    return RLTask.model_validate({k: v for k, v in task.items() if k in RLTask.model_fields})


@dataclass(frozen=True)
class PreparedTask:
    """A task read and validated once; `Rollout.of(prepared)` starts an episode without parsing."""

    task: RLTask
    envs: list[VerifiedEnvironment]
    snapshots: dict[str, dict[str, Any]]  # world_id -> validated initial state, copy-on-write: never mutate
    names: dict[str, tuple[str, str]]  # exported (training) name -> (env_id, tool)

    @classmethod
    def of(
        cls, task: RLTask | Mapping[str, Any], envs_by_id: Mapping[str, VerifiedEnvironment]
    ) -> PreparedTask:
        rl_task = coerce_rl_task(task)
        missing = [env_id for env_id in rl_task.env_ids if env_id not in envs_by_id]
        if missing:
            raise KeyError(f"task {rl_task.id}: environments not in the registry: {', '.join(missing)}")
        # env order decides exported names, so keep the task's
        envs = [envs_by_id[env_id] for env_id in rl_task.env_ids]
        toolset = Toolset(envs, rl_task.initial_states, qualify="always")
        return cls(rl_task, envs, toolset.snapshot_states(), toolset.names)


class TaskCache:
    """Prepared tasks by id (least recently used dropped past `max_tasks`)."""

    def __init__(self, envs_by_id: Mapping[str, VerifiedEnvironment], max_tasks: int = 1024) -> None:
        self.envs_by_id = envs_by_id
        self.max_tasks = max_tasks
        self.prepared: OrderedDict[str, PreparedTask] = OrderedDict()

    def get(self, task: RLTask | Mapping[str, Any]) -> PreparedTask:
        """The prepared form of `task` (an RLTask, a dict of its fields or an `rl_tasks` row)."""
        task_id = task.id if isinstance(task, RLTask) else task.get("id")
        prepared = self.prepared.get(task_id) if isinstance(task_id, str) else None
        if prepared is None:
            prepared = PreparedTask.of(task, self.envs_by_id)
            self.prepared[prepared.task.id] = prepared
            if len(self.prepared) > self.max_tasks:
                self.prepared.popitem(last=False)
        else:
            self.prepared.move_to_end(task_id)
        return prepared


class Rollout:
    """A policy's episode on one task: call tools, then score (one instance per rollout)."""

    def __init__(
        self, task: RLTask | Mapping[str, Any], envs_by_id: Mapping[str, VerifiedEnvironment]
    ) -> None:
        self._start(PreparedTask.of(task, envs_by_id))

    @classmethod
    def of(cls, prepared: PreparedTask) -> Rollout:
        """A rollout from a prepared task: fresh instances over its snapshots, no validation."""
        rollout = cls.__new__(cls)
        rollout._start(prepared)
        return rollout

    def _start(self, prepared: PreparedTask) -> None:
        self.task = prepared.task
        self.toolset = Toolset.from_snapshots(prepared.envs, prepared.snapshots, names=prepared.names)
        self.calls: list[dict[str, Any]] = []  # well-formed calls, in order, as {name, arguments}
        self.malformed_calls = 0
        self.tool_errors = 0
        self.user_calls: list[dict[str, Any]] = []  # steps the simulated user ran (not the policy's)
        self.user_tool_names = {t["function"]["name"] for t in self.task.user_tools}

    def call(self, name: Any, arguments: Any) -> tuple[dict[str, Any], bool]:
        """Execute one call; returns (observation, ok). Never raises for anything the policy sends."""
        if not (isinstance(name, str) and name and isinstance(arguments, dict)):
            parsed, _ = parse_calls([{"name": name, "arguments": arguments}])
            if not parsed:
                self.malformed_calls += 1
                error = ToolError("malformed_call", "a call needs a tool name and a JSON object of arguments")
                return error.to_dict(), False
            name, arguments = parsed[0]
        self.calls.append({"name": name, "arguments": arguments})
        if name in self.user_tool_names:  # a step only the user can do: the policy must ask for it
            self.tool_errors += 1
            message = "only the user can do this step; ask them to do it"
            return ToolError("user_only_tool", message).to_dict(), False
        try:
            return self.toolset.call(name, arguments), True
        except ToolError as error:
            self.tool_errors += 1
            return error.to_dict(), False

    def user_call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Run a step the user performs (a conversational task's `user_calls`) on this rollout's
        environments: the state changes, but it is not a call of the policy's (not scored as one)."""
        self.user_calls.append({"name": name, "arguments": arguments})
        try:
            return self.toolset.call(name, arguments)
        except ToolError as error:
            return error.to_dict()

    def final_states(self) -> dict[str, dict[str, Any]]:
        return self.toolset.dump_states()

    def score(self, weights: Mapping[str, float] | None = None) -> RewardBreakdown:
        """The reward of the rollout so far (components and details in the breakdown)."""
        states = self.toolset.snapshot_states()  # copy-on-write; scoring only reads them
        return score_rollout(
            self.task, self.calls, states, malformed_calls=self.malformed_calls, weights=weights
        )
