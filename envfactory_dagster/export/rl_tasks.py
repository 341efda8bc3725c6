"""`rl_tasks`: one RLTask per turn of each refined trajectory, its masked arguments and gold replay.

A task is a turn with its conversation so far (see rl_task_model.py); the states at each turn
boundary are rebuilt from the trajectory's record (`replay.recorded_replay`: no re-execution).
Masked arguments (ignored by the reward's trace match): those trajectory execution masked
(`querygen.masking`: pagination/formatting knobs and `$`-bound inputs whose omission keeps the
state change and every later-read value), plus any other optional argument whose omission, the
call re-run from its own starting state, gives a byte-identical output and the same state change
(a filter that filters nothing, a value restating a default). A task is emitted only if its gold
calls, replayed through a Toolset from its stored initial states, score reward 1.0.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from envfactory_dagster.export.reward import RewardBreakdown, score_rollout
from envfactory_dagster.export.rl_task_model import RewardSpec, RLGoldCall, RLTask
from envfactory_dagster.export.sft import answer_jobs, conversation, training_tool_names, training_tools
from envfactory_dagster.export.turn_answers import write_answers
from envfactory_dagster.lineage import canonical_json, content_id
from envfactory_dagster.querygen.execution import state_diff
from envfactory_dagster.querygen.replay import (
    EnvironmentRows,
    Replay,
    apply_call,
    environments_by_id,
    exported_name_of,
    recorded_replay,
    task_environments,
)
from envfactory_dagster.querygen.trajectory_model import Trajectory
from envfactory_dagster.runtime.contract import ToolError
from envfactory_dagster.runtime.loader import VerifiedEnvironment
from envfactory_dagster.runtime.toolset import Toolset

STAGE = "rl_tasks"
# columns whose values are JSON text in the stored row (nested, schema-less objects)
JSON_COLUMNS = (
    "messages",
    "tools",
    "initial_states",
    "gold_calls",
    "gold_final_states",
    "reward_spec",
)


def rl_task_to_row(task: RLTask) -> dict[str, Any]:
    """The stored `rl_tasks` row: nested values as JSON text (`<name>_json`), lists of ids as lists."""
    data = task.model_dump(mode="json")
    row = {k: v for k, v in data.items() if k not in JSON_COLUMNS}
    row.update({f"{k}_json": canonical_json(data[k]) for k in JSON_COLUMNS})
    row["n_gold_calls"] = len(task.gold_calls)
    row["n_masked_arguments"] = sum(len(g.masked_arguments) for g in task.gold_calls)
    return row


def rl_task_from_row(row: Mapping[str, Any]) -> RLTask:
    """The RLTask of a stored `rl_tasks` row (inverse of `rl_task_to_row`)."""
    data = {k: v for k, v in row.items() if k in RLTask.model_fields and k not in JSON_COLUMNS}
    data.update({k: json.loads(row[f"{k}_json"]) for k in JSON_COLUMNS})
    for key in ("env_ids", "resource_ids", "lookalike_tags"):
        value = data.get(key)
        data[key] = [] if value is None else list(value)  # Parquet list columns arrive as arrays
    return RLTask.model_validate(data)


def state_before_call(
    replay: Replay, trajectory: Trajectory, turn: int, index: int
) -> dict[str, dict[str, Any]]:
    """world_id -> state just before call (turn, index), from the recorded replay."""
    states = replay.turn_states[turn]
    for call in trajectory.turns[turn].calls[:index]:
        world = trajectory.env_worlds[call.env_id]
        states = {**states, world: apply_call(states[world], call)}
    return states


def masked_arguments(
    trajectory: Trajectory,
    envs: list[VerifiedEnvironment],
    turn: int,
    index: int,
    *,
    replay: Replay | None = None,
) -> list[str]:
    """Arguments of call (turn, index) that are masked (see the module docstring for the rule).

    `replay`: the trajectory's `recorded_replay`, shared between its calls (built when omitted).
    """
    call = trajectory.turns[turn].calls[index]
    env = next(e for e in envs if e.env_id == call.env_id)
    required = set(env.env_class.TOOLS[call.tool].input_schema.get("required", []))
    masked = set(call.masked_arguments)  # decided at execution, with reasons (querygen.masking)
    candidates = sorted(a for a in call.arguments if a not in required and a not in masked)
    if not candidates:
        return sorted(masked)
    replay = replay or recorded_replay(trajectory)
    before = state_before_call(replay, trajectory, turn, index)
    world = trajectory.env_worlds[call.env_id]
    name = exported_name_of(envs)[(call.env_id, call.tool)]
    recorded = canonical_json(call.output)
    for argument in candidates:
        toolset = Toolset.from_snapshots(envs, before)
        reduced = {k: v for k, v in call.arguments.items() if k != argument}
        try:
            output = toolset.call(name, json.loads(json.dumps(reduced)))
        except ToolError:
            continue
        if canonical_json(output) == recorded and state_diff(before[world], toolset.states()[world]) == (
            call.state_diff
        ):
            masked.add(argument)
    return sorted(masked)


def task_toolset(task: RLTask, index: Mapping[str, VerifiedEnvironment]) -> Toolset:
    """A Toolset of the task's environments under the training names, holding its initial states."""
    return Toolset(task_environments(task.env_ids, index), task.initial_states, qualify="always")


def replay_rl_task(
    task: RLTask, envs: EnvironmentRows | Mapping[str, VerifiedEnvironment]
) -> RewardBreakdown:
    """Run the task's gold calls through a Toolset from its initial states and score them."""
    index = dict(envs) if isinstance(envs, Mapping) else environments_by_id(envs)
    return score_gold_calls(task, task_toolset(task, index))


def score_gold_calls(task: RLTask, toolset: Toolset) -> RewardBreakdown:
    """Run the task's gold calls on `toolset` (holding the task's initial states) and score them."""
    calls, refused = [], []
    for gold in task.gold_calls:
        try:
            toolset.call(gold.name, json.loads(json.dumps(gold.arguments)))
        except ToolError as exc:  # a refused call is well-formed; the state component shows its effect
            refused.append(f"{gold.name}: {exc}")
        calls.append({"name": gold.name, "arguments": gold.arguments})
    breakdown = score_rollout(task, calls, toolset.snapshot_states())  # scoring only reads them
    breakdown.details["refused"] = refused
    return breakdown


def trajectory_tasks(
    row: Mapping[str, Any],
    trajectory: Trajectory,
    envs: list[VerifiedEnvironment],
    answers: list[str],
    spec: RewardSpec,
    lookalike_tags: list[str],
    counts: Counter[str],
) -> list[RLTask]:
    """The RL tasks of one trajectory: one per turn that makes calls."""
    names = training_tool_names(envs)
    replay = recorded_replay(trajectory)
    messages, turn_starts = conversation(trajectory, envs, answers, replay)
    tools = training_tools(envs)
    tasks = []
    for t, turn in enumerate(trajectory.turns):
        if not turn.calls:
            counts["turns_without_calls"] += 1
            continue
        gold_calls = []
        for i, call in enumerate(turn.calls):
            masked = masked_arguments(trajectory, envs, t, i, replay=replay)
            counts["masked_arguments"] += len(masked)
            counts["argument_slots"] += len(call.arguments)
            gold_calls.append(
                RLGoldCall(
                    name=names[(call.env_id, call.tool)],
                    arguments=call.arguments,
                    masked_arguments=masked,
                    env_id=call.env_id,
                    turn=t,
                )
            )
        end = replay.turn_states[t + 1] if t + 1 < len(trajectory.turns) else replay.final_states
        tasks.append(
            RLTask(
                id=content_id([trajectory.id, t, turn.query], "rlt_"),
                domain=trajectory.domain,
                trajectory_id=trajectory.id,
                chain_id=trajectory.chain_id,
                split=row.get("split") or "train",
                env_ids=trajectory.env_ids,
                turn=t,
                n_turns=len(trajectory.turns),
                messages=messages[: turn_starts[t] + 1],
                tools=tools,
                initial_states=json.loads(canonical_json(replay.turn_states[t])),
                gold_calls=gold_calls,
                gold_final_states=json.loads(canonical_json(end)),
                reward_spec=spec,
                resource_ids=list(row.get("resource_ids") or []),
                lookalike_tags=lookalike_tags,
                seed=trajectory.seed,
                backend=trajectory.backend,
                model=trajectory.model,
                prompt_version=trajectory.prompt_version,
            )
        )
    return tasks


def build_rl_tasks(
    refined: Iterable[Mapping[str, Any]],
    envs: EnvironmentRows,
    *,
    reward_spec: RewardSpec | None = None,
    backend: str = "template",
    gateway: Any = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """One RL task row per turn (with calls) of each refined trajectory row; (rows, errors, metrics).

    Reads `split` (default "train") and `pool` from the rows (see splits.split_and_filter). `envs`
    are `verified_envs` rows; their `lookalike_tags` are copied onto the task. `backend`/`gateway`
    write the closing answers of the history turns (see turn_answers.py).
    """
    env_rows = list(envs)
    index = environments_by_id(env_rows)
    tags = {r["env_id"]: list(r.get("lookalike_tags") or []) for r in env_rows if isinstance(r, Mapping)}
    spec = reward_spec or RewardSpec()
    jobs, errors = answer_jobs(refined, index, STAGE)
    answers, answer_metrics = write_answers([job for _, job, _ in jobs], backend=backend, gateway=gateway)
    rows = []
    counts: Counter[str] = Counter()
    for (row, job, envs_of_task), turn_answers in zip(jobs, answers, strict=True):
        trajectory = job.trajectory
        lookalikes = sorted({tag for e in trajectory.env_ids for tag in tags.get(e, [])})
        for task in trajectory_tasks(row, trajectory, envs_of_task, turn_answers, spec, lookalikes, counts):
            check = replay_rl_task(task, index)
            if check.total != 1.0:
                errors.append(
                    {
                        "trajectory_id": trajectory.id,
                        "stage": STAGE,
                        "reason": f"turn {task.turn}: gold replay scores {check.total}: {check.details}",
                    }
                )
                continue
            rows.append({**rl_task_to_row(task), "pool": row.get("pool", "rl")})
    gold_counts = sorted(r["n_gold_calls"] for r in rows)
    metrics = {
        "rl_tasks": len(rows),
        "errors": len(errors),
        "gold_replay_at_1": len(rows),
        "masked_arguments": counts["masked_arguments"],
        "argument_slots": counts["argument_slots"],
        "turns_without_calls": counts["turns_without_calls"],
        "median_gold_calls": gold_counts[len(gold_counts) // 2] if rows else 0,
        "tasks_with_history": sum(1 for r in rows if r["turn"] > 0),
        **answer_metrics,
    }
    return rows, errors, metrics
