"""A toolset: the live instances of one task's environments behind one flat tool namespace.

A chain (and so a trajectory, an RL task, a rollout) may span up to three environments. Their
states are kept per world (`VerifiedEnvironment.world_id`): environments cut from one service
share ONE state object, so a write through one is seen by the others, and states are passed in
and out keyed by world id. Agents see one list of tools. Naming (`qualify`): "on_clash" keeps the
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


def world_ids(envs: Sequence[VerifiedEnvironment]) -> list[str]:
    """The worlds of a task's environments, in order of first use."""
    return list(dict.fromkeys(env.world_id for env in envs))


def seed_states(envs: Sequence[VerifiedEnvironment]) -> dict[str, dict[str, Any]]:
    """world_id -> the verified default state of each world of `envs` (the same for every
    environment of a world)."""
    states: dict[str, dict[str, Any]] = {}
    for env in envs:
        states.setdefault(env.world_id, env.seed_state)
    return states


def _table_copy(state: dict[str, Any]) -> dict[str, Any]:
    # rows are never mutated in place (the contract), so copying the tables is a faithful copy
    return {k: v.copy() if isinstance(v, dict) else v for k, v in state.items()}


class Toolset:
    """Fresh instances of a task's environments (one state per world) and one flat tool namespace."""

    def __init__(
        self,
        envs: Sequence[VerifiedEnvironment],
        states: Mapping[str, dict[str, Any]] | None = None,
        *,
        qualify: Qualify = "on_clash",
    ) -> None:
        """`states`: world_id -> state (validated here through the State models); None = each
        world's verified default state."""
        self.envs = {env.env_id: env for env in envs}
        self.names = exported_tool_names(envs, qualify)
        self.worlds: dict[str, list[Environment]] = {}
        self.instances: dict[str, Environment] = {}
        for env in envs:
            members = self.worlds.setdefault(env.world_id, [])
            if members:  # validated by the world's first environment; shared, not copied
                instance = env.env_class.__new__(env.env_class)
                instance.state = members[0].state
            else:
                instance = env.instance(None if states is None else states[env.world_id])
            members.append(instance)
            self.instances[env.env_id] = instance

    @classmethod
    def from_snapshots(
        cls,
        envs: Sequence[VerifiedEnvironment],
        snapshots: Mapping[str, dict[str, Any]],
        *,
        qualify: Qualify = "on_clash",
        names: Mapping[str, tuple[str, str]] | None = None,
    ) -> Toolset:
        """A toolset on states that were validated before (world_id -> a `snapshot_states` /
        `dump_state` result): no validation, microseconds per world. Snapshots are not modified.
        `names`: the exported names when the caller computed them once (per-episode resets)."""
        toolset = cls.__new__(cls)
        toolset.envs = {env.env_id: env for env in envs}
        toolset.names = dict(names) if names is not None else exported_tool_names(envs, qualify)
        toolset.worlds, toolset.instances = {}, {}
        for env in envs:
            instance = env.env_class.__new__(env.env_class)
            toolset.worlds.setdefault(env.world_id, []).append(instance)
            toolset.instances[env.env_id] = instance
        toolset.reset_from_snapshots(snapshots)
        return toolset

    def _share(self, world: str, state: dict[str, Any]) -> None:
        for instance in self.worlds[world]:
            instance.state = state

    def reset(self, states: Mapping[str, dict[str, Any]]) -> None:
        """Load each world's state (validated) from `states` (world_id -> state)."""
        for world, members in self.worlds.items():
            members[0].load_state(copy.deepcopy(states[world]))
            self._share(world, members[0].state)

    def states(self) -> dict[str, dict[str, Any]]:
        """The live state of each world (world_id -> state): read it, never mutate it."""
        return {world: members[0].state for world, members in self.worlds.items()}

    def snapshot_states(self) -> dict[str, dict[str, Any]]:
        """The current states as copy-on-write snapshots (world_id -> state), for `reset_from_snapshots`.

        Each world moves on with a fresh copy of its tables and the old state object becomes the
        snapshot: later calls replace rows, never mutate them (the rule verification enforces),
        so a snapshot keeps the state of this moment at no deep-copy cost. Treat snapshots as
        read-only; use `dump_states` for an independent copy to hand out.
        """
        snapshots = self.states()
        for world, state in snapshots.items():
            self._share(world, _table_copy(state))
        return snapshots

    def reset_from_snapshots(self, snapshots: Mapping[str, dict[str, Any]]) -> None:
        """Restore states taken by `snapshot_states` (already validated) without re-validation."""
        for world in self.worlds:
            self._share(world, _table_copy(snapshots[world]))

    def call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Call an exported tool; raises ToolError (unknown tool, bad arguments, refused call)."""
        target = self.names.get(name)
        if target is None:
            raise ToolError("unknown_tool", f"no tool named {name!r}")
        env_id, tool = target
        return self.instances[env_id].call(tool, arguments)

    def dump_states(self) -> dict[str, dict[str, Any]]:
        """An independent copy of each world's state (world_id -> state)."""
        return {world: members[0].dump_state() for world, members in self.worlds.items()}

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
