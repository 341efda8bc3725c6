"""Replay a trajectory's gold calls on fresh environments, or rebuild what they did from the record.

A trajectory is executed once (`trajectories`) and replayed once more: `replay_matches_record`,
the blocking check that re-executes it and demands byte-identical outputs and final states. Every
later stage reads the record instead: `recorded_replay` rebuilds the state at the start of each
turn from the initial states and each call's recorded state diff and counter changes (exact,
since the check proved the record is what execution gives), so refinement proofs and exports
need no execution. `TrajectoryReplayer` stays for callers that must execute (the check, tests).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from envfactory_dagster.lineage import canonical_json
from envfactory_dagster.querygen.trajectory_model import Trajectory
from envfactory_dagster.runtime.contract import ToolError
from envfactory_dagster.runtime.loader import VerifiedEnvironment
from envfactory_dagster.runtime.toolset import Toolset, exported_tool_names

EnvironmentRows = Iterable[Mapping[str, Any] | VerifiedEnvironment]


def environments_by_id(envs: EnvironmentRows) -> dict[str, VerifiedEnvironment]:
    """`verified_envs` rows (or VerifiedEnvironment objects) indexed by env_id."""
    index: dict[str, VerifiedEnvironment] = {}
    for env in envs:
        verified = env if isinstance(env, VerifiedEnvironment) else VerifiedEnvironment.from_row(env)
        index[verified.env_id] = verified
    return index


def task_environments(
    env_ids: list[str], index: Mapping[str, VerifiedEnvironment]
) -> list[VerifiedEnvironment]:
    """The environments of one task in its order; KeyError names a missing env_id."""
    missing = [e for e in env_ids if e not in index]
    if missing:
        raise KeyError(f"environment(s) not in verified_envs: {', '.join(missing)}")
    return [index[e] for e in env_ids]


def exported_name_of(envs: list[VerifiedEnvironment]) -> dict[tuple[str, str], str]:
    """(env_id, tool) -> the exported name agents see in this task's Toolset."""
    return {target: name for name, target in exported_tool_names(envs).items()}


_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def read_path(value: Any, path: str) -> Any:
    """`orders[0].id` inside a JSON value; KeyError/IndexError/TypeError when it does not resolve."""
    for name, index in _PATH_TOKEN.findall(path):
        value = value[int(index)] if index else value[name]
    return value


@dataclass
class Replay:
    """What replaying a trajectory produced: states at each turn start, outputs, final states.

    States are copy-on-write snapshots that share rows with each other: read them, never mutate.
    """

    turn_states: list[dict[str, dict[str, Any]]]  # turn index -> world_id -> state at the turn's start
    outputs: list[list[dict[str, Any]]]  # turn index -> call index -> output (or error dict)
    final_states: dict[str, dict[str, Any]]
    errors: list[str]  # calls that raised ToolError (gold calls never should)


class TrajectoryReplayer:
    """Replays one trajectory as often as needed: its initial states are validated once (through
    the State models, when the Toolset is built), every run starts from their snapshots."""

    def __init__(self, trajectory: Trajectory, envs: list[VerifiedEnvironment]) -> None:
        self.trajectory = trajectory
        self.toolset = Toolset(envs, trajectory.initial_states)
        self.initial = self.toolset.snapshot_states()
        self.names = exported_name_of(envs)

    def run(self, override: tuple[int, int, dict[str, Any]] | None = None) -> Replay:
        """Run every gold call in order from the initial states.

        `override=(turn, call, arguments)` replaces one call's arguments (to test whether an
        argument matters); every other call runs with its gold arguments.
        """
        toolset = self.toolset
        toolset.reset_from_snapshots(self.initial)
        turn_states, outputs, errors = [], [], []
        for turn in self.trajectory.turns:
            turn_states.append(toolset.snapshot_states())
            turn_outputs = []
            for index, call in enumerate(turn.calls):
                arguments = call.arguments
                if override is not None and override[:2] == (turn.index, index):
                    arguments = override[2]
                try:
                    output = toolset.call(self.names[(call.env_id, call.tool)], copy.deepcopy(arguments))
                except ToolError as exc:
                    output = exc.to_dict()
                    errors.append(f"turn {turn.index} call {index} {call.tool}: {exc}")
                turn_outputs.append(output)
            outputs.append(turn_outputs)
        final_states = toolset.snapshot_states()
        return Replay(turn_states=turn_states, outputs=outputs, final_states=final_states, errors=errors)


def apply_call(state: dict[str, Any], call: Any) -> dict[str, Any]:
    """The world state after a recorded call: `state` with the call's diff and counter changes
    applied (tables copied, rows replaced, never mutated: snapshots stay valid)."""
    after = {k: v.copy() if isinstance(v, dict) else v for k, v in state.items()}
    for collection, change in call.state_diff.items():
        table = after[collection]
        for key, row in change.get("added", {}).items():
            table[key] = row
        for key, fields in change.get("changed", {}).items():
            table[key] = {**table[key], **{name: pair[1] for name, pair in fields.items()}}
        for key in change.get("removed", []):
            del table[key]
    for collection, (_, value) in call.counter_changes.items():
        after["counters"][collection] = value
    return after


def recorded_replay(trajectory: Trajectory) -> Replay:
    """What execution did, rebuilt from the record: turn-start states, outputs, final states."""
    states = dict(trajectory.initial_states)
    turn_states, outputs = [], []
    for turn in trajectory.turns:
        turn_states.append(states)
        for call in turn.calls:
            world = trajectory.env_worlds[call.env_id]
            states = {**states, world: apply_call(states[world], call)}
        outputs.append([call.output for call in turn.calls])
    return Replay(turn_states=turn_states, outputs=outputs, final_states=states, errors=[])


def replay_trajectory(
    trajectory: Trajectory,
    envs: list[VerifiedEnvironment],
    *,
    override: tuple[int, int, dict[str, Any]] | None = None,
) -> Replay:
    """Run every gold call in order from the initial states (see `TrajectoryReplayer.run`)."""
    return TrajectoryReplayer(trajectory, envs).run(override)


def same_json_value(replayed: Any, recorded: Any) -> bool:
    """Equal as values, or else as canonical JSON (a tuple where the record has a list).

    Value equality first: it is ~6x faster than encoding two world states. It takes 1 for 1.0
    and True for 1, which bytes tell apart, so a type-only difference passes here; it would need
    a tool whose result type depends on more than its inputs, which environment verification's
    determinism check (four replays compared as canonical bytes) rejects."""
    return replayed == recorded or canonical_json(replayed) == canonical_json(recorded)


def replay_matches_record(
    trajectory: Trajectory | Mapping[str, Any] | str,
    envs: EnvironmentRows | Mapping[str, VerifiedEnvironment],
) -> tuple[bool, str]:
    """Re-execute from the initial states; (True, "") when every output and every final state is
    the recorded one (`same_json_value`), else (False, the first difference)."""
    if isinstance(trajectory, str):
        trajectory = Trajectory.model_validate_json(trajectory)
    elif not isinstance(trajectory, Trajectory):
        trajectory = (
            Trajectory.model_validate_json(trajectory["trajectory_json"])
            if "trajectory_json" in trajectory
            else Trajectory.model_validate(trajectory)
        )
    index = envs if isinstance(envs, Mapping) else environments_by_id(envs)
    try:
        replayer = TrajectoryReplayer(trajectory, task_environments(trajectory.env_ids, index))
    except KeyError as exc:
        return False, str(exc)
    except ValidationError as exc:
        return False, f"an initial state does not load: {exc}"[:500]
    for world_id, snapshot in replayer.initial.items():
        if not same_json_value(snapshot, trajectory.initial_states.get(world_id)):
            return False, f"initial state of world {world_id} does not round-trip"
    replay = replayer.run()
    for turn, outputs in zip(trajectory.turns, replay.outputs, strict=True):
        for index_, (call, output) in enumerate(zip(turn.calls, outputs, strict=True)):
            if not same_json_value(output, call.output):
                return False, f"turn {turn.index} call {index_} {call.tool}: output differs"
    for world_id, final in replay.final_states.items():
        if not same_json_value(final, trajectory.final_states.get(world_id)):
            return False, f"final state of world {world_id} differs"
    return True, ""


def trajectory_of_row(
    row: Mapping[str, Any], index: Mapping[str, VerifiedEnvironment]
) -> tuple[Trajectory, list[VerifiedEnvironment]]:
    """The Trajectory of a stored row and its environments; ValueError (saying which) when the row's
    JSON is unreadable or an environment is missing from the registry."""
    try:
        trajectory = Trajectory.model_validate_json(row["trajectory_json"])
        return trajectory, task_environments(trajectory.env_ids, index)
    except (ValidationError, KeyError) as exc:
        raise ValueError(f"unreadable: {exc}") from exc
