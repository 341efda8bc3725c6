"""`rl_tasks`: one RLTask per turn of each refined trajectory, with its masked arguments.

A task is a turn with its conversation so far (see rl_task_model.py); the states at each turn
boundary are rebuilt from the trajectory's record (`replay.recorded_replay`: no re-execution; the
`trajectories` check re-executed every trajectory once and proved the record). Masked arguments
(ignored by the reward's trace match) are those trajectory execution masked, with their reasons
(`querygen.masking`: an optional argument whose omission gives the same output and state change,
or a presentation setting whose omission keeps every later-read value). The stored row is checked
against the record (`gold_reward_on_record`): its gold calls, scored with the state the record's
diffs give from the row's own initial states, must reach reward 1.0. `replay_rl_task` executes a
task's gold calls (and the user's steps, in their places) for users who want that.

User-only tools (envgen/user_only.py) are never in a task's `tools`. Conversational mode: their
calls are the user's (`user_calls`, run by the simulator when asked; export/user_actions.py);
otherwise no task is made at or after the first turn with such a call
(`turns_cut_for_user_only_tools`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from envfactory_dagster.export.conversation import Clarification, clarify, known_values
from envfactory_dagster.export.reward import RewardBreakdown, score_rollout
from envfactory_dagster.export.rl_task_model import RewardSpec, RLGoldCall, RLTask, RLUserCall
from envfactory_dagster.export.sft import answer_jobs, conversation, training_tool_names, training_tools
from envfactory_dagster.export.turn_answers import write_answers
from envfactory_dagster.export.user_actions import UserAction, first_user_turn, user_actions, user_only_specs
from envfactory_dagster.lineage import canonical_json, content_id
from envfactory_dagster.quality.guards import RowGuard
from envfactory_dagster.querygen.replay import (
    EnvironmentRows,
    apply_call,
    environments_by_id,
    recorded_replay,
    task_environments,
)
from envfactory_dagster.querygen.trajectory_model import Trajectory, TrajectoryCalls
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
    "user_knows",
    "user_tools",
    "user_calls",
)
STATE_COLUMNS = ("initial_states", "gold_final_states")


def _shared_state_key(states: dict[str, dict[str, Any]]) -> tuple[tuple[str, str, int], ...]:
    """The identity of the tables that make `states`: equal keys mean the same objects, so equal
    content (states are never mutated, copy-on-write). Validation copies the outer dicts of a
    task's states, not the tables, so the key sees through it."""
    return tuple((world, name, id(value)) for world, state in states.items() for name, value in state.items())


def rl_task_to_row(task: RLTask, encoded_states: dict[tuple, str] | None = None) -> dict[str, Any]:
    """The stored `rl_tasks` row: nested values as JSON text (`<name>_json`), lists of ids as lists.

    `encoded_states` (`_shared_state_key` -> JSON) lets the tasks of one trajectory, whose turn
    boundaries share their tables, encode each state once; the caller keeps the tasks alive while
    it uses the dict (the key holds object ids)."""
    # states are plain JSON already and make most of a task: serialize them once, not dump + encode
    data = task.model_dump(mode="json", exclude=set(STATE_COLUMNS))
    row = {k: v for k, v in data.items() if k not in JSON_COLUMNS}
    row.update({f"{k}_json": canonical_json(data[k]) for k in JSON_COLUMNS if k not in STATE_COLUMNS})
    for k in STATE_COLUMNS:
        state = getattr(task, k)
        if encoded_states is None:
            row[f"{k}_json"] = canonical_json(state)
        else:
            key = _shared_state_key(state)
            if key not in encoded_states:
                encoded_states[key] = canonical_json(state)
            row[f"{k}_json"] = encoded_states[key]
    row["n_gold_calls"] = len(task.gold_calls)
    row["n_masked_arguments"] = sum(len(g.masked_arguments) for g in task.gold_calls)
    return row


def rl_task_from_row(row: Mapping[str, Any], parsed_states: dict[str, Any] | None = None) -> RLTask:
    """The RLTask of a stored `rl_tasks` row (inverse of `rl_task_to_row`). `parsed_states` (JSON
    text -> value) parses a state the rows of one trajectory repeat once; the tasks then share it,
    so it must be read only (as scoring does)."""
    data = {k: v for k, v in row.items() if k in RLTask.model_fields and k not in JSON_COLUMNS}
    # rows stored before a column existed lack it: the model's default
    for k in JSON_COLUMNS:
        text = row.get(f"{k}_json")
        if text is None:
            continue
        if parsed_states is None or k not in STATE_COLUMNS:
            data[k] = json.loads(text)
        else:
            if text not in parsed_states:
                parsed_states[text] = json.loads(text)
            data[k] = parsed_states[text]
    for key in ("env_ids", "resource_ids", "lookalike_tags"):
        value = data.get(key)
        data[key] = [] if value is None else list(value)  # Parquet list columns arrive as arrays
    return RLTask.model_validate(data)


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
    """Run the task's gold calls on `toolset` (holding the task's initial states), the user's steps
    in their places, and score them (the user's steps are not the policy's calls)."""
    calls, refused = [], []
    users = {u.position: u for u in task.user_calls}
    golds = iter(task.gold_calls)
    for position in range(len(task.gold_calls) + len(users)):
        step: RLGoldCall | RLUserCall = users[position] if position in users else next(golds)
        try:
            toolset.call(step.name, json.loads(json.dumps(step.arguments)))
        except ToolError as exc:  # a refused call is well-formed; the state component shows its effect
            refused.append(f"{step.name}: {exc}")
        if isinstance(step, RLGoldCall):
            calls.append({"name": step.name, "arguments": step.arguments})
    breakdown = score_rollout(task, calls, toolset.snapshot_states())  # scoring only reads them
    breakdown.details["refused"] = refused
    return breakdown


def gold_reward_on_record(task: RLTask, trajectory: Trajectory | TrajectoryCalls) -> RewardBreakdown:
    """The reward of a stored task's gold calls, with the final states its trajectory's record
    gives from the task's own stored initial states (the turn's recorded diffs applied: no
    execution). 1.0 when the row agrees with what execution did: right initial and final states,
    gold calls named as the tools, masks that the trace match accepts."""
    states = {world: dict(state) for world, state in task.initial_states.items()}
    for call in trajectory.turns[task.turn].calls:
        world = trajectory.env_worlds[call.env_id]
        if world in states:
            states[world] = apply_call(states[world], call)
    calls = [{"name": g.name, "arguments": g.arguments} for g in task.gold_calls]
    return score_rollout(task, calls, states)


def trajectory_tasks(
    row: Mapping[str, Any],
    trajectory: Trajectory,
    envs: list[VerifiedEnvironment],
    answers: list[str],
    spec: RewardSpec,
    lookalike_tags: list[str],
    counts: Counter[str],
    clarifications: Sequence[Clarification] = (),
    actions: Mapping[tuple[int, int], UserAction] | None = None,
) -> list[RLTask]:
    """The RL tasks of one trajectory: one per turn that makes calls. A clarified turn's task ends
    at the user's opening (the value left out) and knows what the user simulator may tell.
    `actions` (conversational mode): the user-performed steps; without them, no task is made at
    or after the first turn that calls a user-only tool."""
    names = training_tool_names(envs)
    replay = recorded_replay(trajectory)
    actions = actions or {}
    messages, turn_starts = conversation(trajectory, envs, answers, replay, clarifications, actions)
    clarified = {c.turn for c in clarifications}
    knows = known_values(trajectory) if clarified else {}
    tools = training_tools(envs)
    user_specs = user_only_specs(envs)
    user_tools = training_tools(envs, user_only=True) if user_specs else []
    last = len(trajectory.turns)
    if user_specs and not actions:
        last = first_user_turn(trajectory, user_specs)
        last = len(trajectory.turns) if last is None else last
        counts["turns_cut_for_user_only_tools"] += len(trajectory.turns) - last
    tasks = []
    for t, turn in enumerate(trajectory.turns[:last]):
        if not turn.calls:
            counts["turns_without_calls"] += 1
            continue
        gold_calls, user_calls = [], []
        for position, call in enumerate(turn.calls):
            action = actions.get((turn.index, position))
            if action is not None:
                user_calls.append(
                    RLUserCall(
                        name=action.tool,
                        arguments=call.arguments,
                        env_id=call.env_id,
                        turn=t,
                        position=position,
                        label=action.label,
                        secret_inputs=action.secret_inputs,
                    )
                )
                continue
            masked = list(call.masked_arguments)
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
        # only the user acts: the policy's task is to ask (no trace; the state shows the step)
        counts["tasks_with_only_user_steps"] += not gold_calls
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
                # the record's states are JSON snapshots that no one mutates (copy-on-write)
                initial_states=replay.turn_states[t],
                gold_calls=gold_calls,
                gold_final_states=end,
                reward_spec=spec,
                resource_ids=list(row.get("resource_ids") or []),
                lookalike_tags=lookalike_tags,
                user_knows=knows if turn.index in clarified else {},
                user_tools=user_tools,
                user_calls=user_calls,
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
    conversational: bool = False,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """One RL task row per turn (with calls) of each refined trajectory row; (rows, errors, metrics).
    `conversational=True`: the clarified turn's task is played with the user simulator (see
    rl_task_model.py); the offline persona's replies, so tasks stay deterministic.

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
        user_specs = user_only_specs(envs_of_task) if conversational else {}
        actions = (
            user_actions(trajectory, user_specs, training_tool_names(envs_of_task)) if user_specs else {}
        )
        clarification = (
            clarify(trajectory, seed=trajectory.seed, user_steps=actions.keys())[0]
            if conversational
            else None
        )
        clarifications = [clarification] if clarification is not None else []
        tasks = trajectory_tasks(
            row, trajectory, envs_of_task, turn_answers, spec, lookalikes, counts, clarifications, actions
        )
        encoded_states: dict[tuple, str] = {}  # `tasks` holds the keyed tables alive while it is used
        for task in tasks:
            rows.append({**rl_task_to_row(task, encoded_states), "pool": row.get("pool", "rl")})
    gold_counts = sorted(r["n_gold_calls"] for r in rows)
    metrics = {
        "rl_tasks": len(rows),
        "errors": len(errors),
        "masked_arguments": counts["masked_arguments"],
        "argument_slots": counts["argument_slots"],
        "turns_without_calls": counts["turns_without_calls"],
        "median_gold_calls": gold_counts[len(gold_counts) // 2] if rows else 0,
        "tasks_with_history": sum(1 for r in rows if r["turn"] > 0),
        "conversational_tasks": sum(
            1 for r in rows if r["user_knows_json"] != "{}" or r["user_calls_json"] != "[]"
        ),
        "tasks_with_user_steps": sum(1 for r in rows if r["user_calls_json"] != "[]"),
        "turns_cut_for_user_only_tools": counts["turns_cut_for_user_only_tools"],
        "tasks_with_only_user_steps": counts["tasks_with_only_user_steps"],
        **answer_metrics,
    }
    return rows, errors, metrics


def rl_task_guards() -> list[RowGuard]:
    """What keeps a scored RL task out of the export: gold calls that do not reach full reward on
    their own record would teach a wrong answer."""
    return [
        RowGuard(
            "gold_below_full_reward",
            lambda r: r["gold_reward"] == 1.0,
            lambda r: f"rl task {r['id']}: its gold calls reach reward {r['gold_reward']} on the record",
        )
    ]
