"""A toolset: the live instances of one task's environments behind one flat tool namespace.

A chain (and so a trajectory, an RL task, a rollout) may span up to three environments, each
with its own state. Agents see one list of tools. Naming (`qualify`): "on_clash" keeps the
environment's own tool names unless two environments share one, in which case every tool of the
task is qualified as `<ClassName>__<tool>` (an MCP server of one API shows its own names);
"always" qualifies every tool, so a tool has one name in every task of a dataset (training
exports and the trainer-facing runtime: trainers such as verl declare tools once, globally).
Names are deterministic and valid as OpenAI/MCP function names. The Gym wrapper, the MCP server,
the trainer adapters and trajectory execution all go through this class.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from envfactory_dagster.runtime.contract import Environment, ToolError
from envfactory_dagster.runtime.loader import VerifiedEnvironment

QUALIFIER = "__"
Qualify = Literal["on_clash", "always"]


def exported_tool_names(
    envs: Sequence[VerifiedEnvironment], qualify: Qualify = "on_clash"
) -> dict[str, tuple[str, str]]:
    """Exported name -> (env_id, tool name), for the environments of one task, in order."""
    names = [(env.env_id, env.class_name, tool) for env in envs for tool in env.env_class.TOOLS]
    bare = [tool for _, _, tool in names]
    qualify = qualify == "always" or len(bare) != len(set(bare))
    exported: dict[str, tuple[str, str]] = {}
    for env_id, class_name, tool in names:
        name = f"{class_name}{QUALIFIER}{tool}" if qualify else tool
        exported[name] = (env_id, tool)
    return exported


class Toolset:
    """Fresh instances of a task's environments (sharing nothing) and one flat tool namespace."""

    def __init__(
        self,
        envs: Sequence[VerifiedEnvironment],
        states: Mapping[str, dict[str, Any]] | None = None,
        *,
        qualify: Qualify = "on_clash",
    ) -> None:
        self.envs = {env.env_id: env for env in envs}
        self.names = exported_tool_names(envs, qualify)
        self.instances: dict[str, Environment] = {
            env.env_id: env.instance(None if states is None else states[env.env_id]) for env in envs
        }

    @classmethod
    def from_snapshots(
        cls,
        envs: Sequence[VerifiedEnvironment],
        snapshots: Mapping[str, dict[str, Any]],
        names: Mapping[str, tuple[str, str]],
    ) -> Toolset:
        """A Toolset over already validated snapshots (from `snapshot_states`), with the exported
        `names` computed once by the caller: no validation, for per-episode resets in microseconds."""
        toolset = cls.__new__(cls)
        toolset.envs = {env.env_id: env for env in envs}
        toolset.names = dict(names)
        toolset.instances = {}
        for env in envs:
            env_class = env.env_class
            instance = env_class.__new__(env_class)
            instance.reset(snapshots[env.env_id])
            toolset.instances[env.env_id] = instance
        return toolset

    def reset(self, states: Mapping[str, dict[str, Any]]) -> None:
        """Load each environment's state (validated) from `states` (env_id -> state)."""
        for env_id, instance in self.instances.items():
            instance.load_state(copy.deepcopy(states[env_id]))

    def snapshot_states(self) -> dict[str, dict[str, Any]]:
        """The current states as copy-on-write snapshots (env_id -> state), for `reset_from_snapshots`.

        Each instance moves on with a fresh copy of its tables (`Environment.reset`) and the old
        state object becomes the snapshot: later calls replace rows, never mutate them (the rule
        verification enforces), so a snapshot keeps the state of this moment at no deep-copy cost.
        Treat snapshots as read-only; use `dump_states` for an independent copy to hand out.
        """
        snapshots = {}
        for env_id, instance in self.instances.items():
            snapshots[env_id] = instance.state
            instance.reset(instance.state)
        return snapshots

    def reset_from_snapshots(self, snapshots: Mapping[str, dict[str, Any]]) -> None:
        """Restore states taken by `snapshot_states` (already validated) without re-validation."""
        for env_id, instance in self.instances.items():
            instance.reset(snapshots[env_id])

    def call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Call an exported tool; raises ToolError (unknown tool, bad arguments, refused call)."""
        target = self.names.get(name)
        if target is None:
            raise ToolError("unknown_tool", f"no tool named {name!r}")
        env_id, tool = target
        return self.instances[env_id].call(tool, arguments)

    def dump_states(self) -> dict[str, dict[str, Any]]:
        return {env_id: instance.dump_state() for env_id, instance in self.instances.items()}

    def tool_schemas(self) -> list[dict[str, Any]]:
        """Tools as name/description/input_schema/output_schema/kind, under their exported names."""
        by_env = {
            env_id: {t["name"]: t for t in env.env_class.tool_list()} for env_id, env in self.envs.items()
        }
        return [{**by_env[env_id][tool], "name": name} for name, (env_id, tool) in self.names.items()]

    def openai_tools(self) -> list[dict[str, Any]]:
        """The `tools` list of an OpenAI chat request (function tools with JSON-Schema parameters)."""
        return [
            {
                "type": "function",
                "function": {
                    "name": t["name"],
                    "description": t["description"],
                    "parameters": t["input_schema"],
                },
            }
            for t in self.tool_schemas()
        ]
