"""Tool objects in the shapes verl and TRL call, without importing either (duck-typed).

verl (`verl.tools.base_tool.BaseTool`, multi-turn rollout): one tool object per tool name, built
from the tool config YAML (`class_name`, `config`, `tool_schema`); per trajectory the rollout calls

    instance_id, response = await tool.create(instance_id=None, **create_kwargs)
    response, step_reward, metrics = await tool.execute(instance_id, parameters: dict, **kwargs)
    reward: float = await tool.calc_reward(instance_id, **kwargs)
    await tool.release(instance_id, **kwargs)

`VerlEnvironmentTool` has exactly these methods (responses expose `.text`, as verl's
`ToolResponse`). The tools of one trajectory must see one state, so the per-trajectory
`Rollout` lives in a `RolloutTable` shared by the task's tool objects and keyed by
`instance_id`: verl's SGLang multi-turn rollout passes the request id as `instance_id` to every
tool of a request. `create_kwargs` (the dataset's `extra_info.tools_kwargs[<tool>].create_kwargs`)
carries the task: `{"task_id": ...}` (what the verl export writes; the row is read from the data
directory) or `{"task": <RLTask dict or rl_tasks row>}`. verl's `ToolAgentLoop` (`agent_name:
"tool_agent"`, verl@b178a3cd `experimental/agent_loop/tool_agent_loop.py`) instead creates and
releases an instance around every single call, passing the trajectory's `AgentData` to
`execute`: the first call's rollout is kept in `agent_data.extra_fields` (verl's slot for "tool
session data") and every later call of the trajectory runs on it, so state carries across calls.
Each `execute` returns as step reward the change of the rollout's reward, so the trajectory's
`tool_rewards` (which verl hands to the reward function) sum to the reward of the calls made.
With verl's interaction configured (serve/verl_interaction.py), the rollout the interaction opened
under `agent_data.request_id` is the trajectory's, so the simulated user sees the calls' state.
To subclass verl's real BaseTool: `class MyTool(VerlEnvironmentTool, verl.tools.base_tool.BaseTool)`.

TRL (`GRPOTrainer(environment_factory=...)`): a no-argument class; the trainer makes one instance
per rollout, calls `reset(**dataset_columns)` before the episode and exposes every public method
other than `reset` as a tool, its schema read from the signature and the docstring's `Args:`.
`trl_environment_class(envs)` builds such a class for a fixed set of environments (TRL fixes the
tool list per trainer); `reset` reads the rl_tasks row from the dataset columns; a tool error is
raised as an exception, which TRL feeds back to the model as the tool response.
`trl_reward(environments)` is the matching reward function.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from envfactory_dagster.runtime.contract import ToolError
from envfactory_dagster.runtime.loader import VerifiedEnvironment
from envfactory_dagster.runtime.toolset import exported_tool_names
from envfactory_dagster.serve.registry import load_rl_task_rows, load_verified_envs
from envfactory_dagster.serve.rollout import Rollout, TaskCache, coerce_rl_task, observation_text
from envfactory_dagster.settings import envfactory_home


# -- verl ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ToolText:
    """What verl reads from a tool response (`.text`; no image or video)."""

    text: str
    image: None = None
    video: None = None


@dataclass
class RolloutTable:
    """The live rollouts of one trainer process, by `instance_id`; each one owns its instances."""

    envs_by_id: Mapping[str, VerifiedEnvironment]
    rollouts: dict[str, Rollout] = field(default_factory=dict)
    next_number: int = 0
    home: str | None = None  # where `rl_tasks` rows are read from when a task is named by id
    tasks_by_id: dict[str, dict[str, Any]] | None = None
    prepared: TaskCache | None = None

    def task(self, task_id: str) -> dict[str, Any]:
        """The stored `rl_tasks` row `task_id` (rows read once per process)."""
        if self.tasks_by_id is None:
            if self.home is None:
                raise ValueError("this rollout table has no data directory to read rl_tasks from")
            self.tasks_by_id = {row["id"]: row for row in load_rl_task_rows(self.home)}
        if task_id not in self.tasks_by_id:
            raise KeyError(f"no rl_tasks row {task_id!r} under {self.home}")
        return self.tasks_by_id[task_id]

    def open(self, instance_id: str | None, task: Any) -> str:
        if instance_id is None:
            self.next_number += 1
            instance_id = f"rollout-{self.next_number}"
        if instance_id not in self.rollouts:  # the task's other tools join the same rollout
            if self.prepared is None:
                self.prepared = TaskCache(self.envs_by_id)
            self.rollouts[instance_id] = Rollout.of(self.prepared.get(task))
        return instance_id

    def close(self, instance_id: str) -> None:
        self.rollouts.pop(instance_id, None)


SESSION_KEY = "envfactory_rollout"  # the trajectory's Rollout in verl's AgentData.extra_fields

# verl builds tool objects from YAML (no Python objects in `config`): tools configured with the
# same data directory share one table per process, so a request's tools see one rollout.
_TABLES_BY_HOME: dict[str, RolloutTable] = {}


def rollout_table_for_home(home: str) -> RolloutTable:
    """The process's RolloutTable over the `verified_envs` registry under `home` (loaded once)."""
    table = _TABLES_BY_HOME.get(home)
    if table is None:
        table = _TABLES_BY_HOME[home] = RolloutTable(load_verified_envs(home), home=home)
    return table


class VerlEnvironmentTool:
    """One exported tool in verl's BaseTool shape; its state is the trajectory's `Rollout`.

    `config`: `{"table": RolloutTable}` (in-process), or from verl's tool YAML `{"home": DIR}`
    (default `$ENVFACTORY_HOME`): the registry there, one table per process and directory.
    `tool_schema`: the OpenAI function schema (a dict from `RLTask.tools`, or verl's pydantic model).
    """

    def __init__(self, config: Mapping[str, Any], tool_schema: Any) -> None:
        self.config = config
        self.table: RolloutTable = (
            config["table"]
            if "table" in config
            else rollout_table_for_home(config.get("home") or envfactory_home())
        )
        self.tool_schema = tool_schema
        schema = tool_schema.model_dump() if hasattr(tool_schema, "model_dump") else tool_schema
        self.name: str = schema["function"]["name"]

    def get_openai_tool_schema(self) -> Any:
        return self.tool_schema

    async def create(self, instance_id: str | None = None, **kwargs: Any) -> tuple[str, ToolText]:
        create_kwargs = {**kwargs.get("create_kwargs", {}), **kwargs}
        task = create_kwargs.get("task")
        if task is None and create_kwargs.get("task_id"):
            task = self.table.task(create_kwargs["task_id"])  # what the verl export puts in tools_kwargs
        if task is None:
            raise ValueError(f"{self.name}: create() needs the task in create_kwargs: {{'task': <rl task>}}")
        return self.table.open(instance_id, task), ToolText("")

    async def execute(
        self, instance_id: str, parameters: dict[str, Any] | str, **kwargs: Any
    ) -> tuple[ToolText, float, dict[str, Any]]:
        rollout = self.table.rollouts[instance_id]
        agent_data = kwargs.get("agent_data")
        session = getattr(agent_data, "extra_fields", None)
        if isinstance(session, dict):  # verl's ToolAgentLoop: one rollout per trajectory, not per call
            # the one the interaction opened under the request id (verl_interaction.py), if any
            opened = self.table.rollouts.get(getattr(agent_data, "request_id", None) or "")
            rollout = session.setdefault(SESSION_KEY, opened or rollout)
        before = rollout.score().total
        result, ok = rollout.call(self.name, parameters)
        return ToolText(observation_text(result)), rollout.score().total - before, {"ok": ok}

    async def calc_reward(self, instance_id: str, **kwargs: Any) -> float:
        return self.table.rollouts[instance_id].score().total

    async def release(self, instance_id: str, **kwargs: Any) -> None:
        self.table.close(instance_id)


def verl_tools(task: Any, table: RolloutTable) -> list[VerlEnvironmentTool]:
    """The verl tool objects of a task (one per exported tool), sharing `table`."""
    return [VerlEnvironmentTool({"table": table}, tool) for tool in coerce_rl_task(task).tools]


# -- TRL -----------------------------------------------------------------------------------
_PYTHON_TYPES = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "array": list,
    "object": dict,
}


def _tool_method(exported: str, tool: Mapping[str, Any]) -> Any:
    """A method named `exported` whose signature and docstring describe the tool's JSON Schema."""
    schema = tool["input_schema"]
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))

    def method(self: TrlToolEnvironment, **arguments: Any) -> str:
        return self._call(exported, arguments)

    parameters = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    annotations: dict[str, Any] = {"return": str}
    arg_lines = []
    for name, prop in properties.items():
        py_type = _PYTHON_TYPES.get(prop.get("type") if isinstance(prop.get("type"), str) else "", str)
        annotation = py_type if name in required else py_type | None
        default = inspect.Parameter.empty if name in required else None
        parameters.append(
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
        )
        annotations[name] = annotation
        description = prop.get("description") or name.replace("_", " ")
        if "enum" in prop:
            description += f" (one of: {', '.join(map(str, prop['enum']))})"
        arg_lines.append(f"    {name}: {description}")
    method.__name__ = method.__qualname__ = exported
    method.__signature__ = inspect.Signature(parameters, return_annotation=str)  # type: ignore[attr-defined]
    method.__annotations__ = annotations
    args_block = "\n\nArgs:\n" + "\n".join(arg_lines) if arg_lines else ""
    method.__doc__ = f"{tool['description']}{args_block}\n\nReturns:\n    The result as JSON."
    return method


class TrlToolEnvironment:
    """Base of the classes `trl_environment_class` builds; one instance per TRL rollout."""

    ENVS_BY_ID: Mapping[str, VerifiedEnvironment] = {}
    TASKS: TaskCache  # set per class by trl_environment_class: tasks prepared once per process

    def __init__(self) -> None:
        self._rollout: Rollout | None = None
        self.reward = 0.0

    def reset(self, **columns: Any) -> str | None:
        """Start the rollout of the rl_tasks row in `columns` (its nested values may be JSON text)."""
        self._rollout = Rollout.of(self.TASKS.get(columns))
        self.reward = 0.0
        return None

    def _call(self, name: str, arguments: dict[str, Any]) -> str:
        if self._rollout is None:
            raise RuntimeError("reset() before calling tools")
        arguments = {k: v for k, v in arguments.items() if v is not None}
        result, ok = self._rollout.call(name, arguments)
        if not ok:
            error = result["error"]
            raise ToolError(error["code"], error["message"])
        return observation_text(result)

    def _score(self) -> float:
        if self._rollout is None:
            return 0.0
        self.reward = self._rollout.score().total
        return self.reward


def trl_environment_class(envs: Sequence[VerifiedEnvironment]) -> type[TrlToolEnvironment]:
    """A TRL `environment_factory` class exposing the tools of `envs` (names as in a task's Toolset)."""
    by_id = {env.env_id: env for env in envs}
    names = exported_tool_names(envs, "always")
    methods: dict[str, Any] = {"ENVS_BY_ID": by_id, "TASKS": TaskCache(by_id)}
    for exported, (env_id, tool_name) in names.items():
        tool = next(t for t in by_id[env_id].env_class.tool_list() if t["name"] == tool_name)
        methods[exported] = _tool_method(exported, tool)
    class_name = "Trl" + "".join(env.class_name for env in envs)
    return type(class_name, (TrlToolEnvironment,), methods)


def trl_reward(environments: Sequence[TrlToolEnvironment], **kwargs: Any) -> list[float]:
    """TRL reward function: each rollout's `score_rollout` total (`reward_funcs=[trl_reward]`)."""
    return [environment._score() for environment in environments]
