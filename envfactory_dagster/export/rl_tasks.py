"""`rl_tasks`: one RLTask per refined trajectory, its masked arguments, gold replay and verl export.

Masked arguments are decided by schema rules AND execution: an optional parameter whose name is a
pagination/formatting knob (limit, page, offset, cursor, sort, format, fields, verbose, ...), or
one QueryGen already marked, is masked only if replaying the trajectory with the argument removed
raises no error, reaches the same final states, and every later argument taken from that call's
output still resolves to the same value. A task is emitted only if its gold calls, replayed
through a Toolset from its stored initial states, score reward 1.0.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from envfactory_dagster.export.reward import RewardBreakdown, score_rollout, values_equal
from envfactory_dagster.export.rl_task_model import RewardSpec, RLGoldCall, RLTask
from envfactory_dagster.lineage import canonical_json, content_id
from envfactory_dagster.querygen.replay import (
    EnvironmentRows,
    TrajectoryReplayer,
    environments_by_id,
    exported_name_of,
    read_path,
    task_environments,
    trajectory_of_row,
)
from envfactory_dagster.querygen.trajectory_model import Trajectory
from envfactory_dagster.runtime.contract import ToolError
from envfactory_dagster.runtime.loader import VerifiedEnvironment
from envfactory_dagster.runtime.toolset import Toolset

STAGE = "rl_tasks"
SYSTEM_PROMPT = (
    "You are a helpful assistant that can use tools. Complete the user's requests by calling the tools "
    "with JSON arguments; look up what you need instead of asking, reuse earlier results, and reply "
    "briefly when done."
)
MASKABLE_NAMES = frozenset(
    {
        "limit",
        "page",
        "page_size",
        "per_page",
        "offset",
        "cursor",
        "page_token",
        "max_results",
        "sort",
        "sort_by",
        "order_by",
        "sort_order",
        "format",
        "fields",
        "verbose",
        "include",
        "expand",
        "pretty",
    }
)
# columns whose values are JSON text in the stored row (nested, schema-less objects)
JSON_COLUMNS = (
    "messages",
    "user_turns",
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
    return row


def rl_task_from_row(row: Mapping[str, Any]) -> RLTask:
    """The RLTask of a stored `rl_tasks` row (inverse of `rl_task_to_row`)."""
    data = {k: v for k, v in row.items() if k in RLTask.model_fields and k not in JSON_COLUMNS}
    data.update({k: json.loads(row[f"{k}_json"]) for k in JSON_COLUMNS})
    for key in ("env_ids", "resource_ids", "lookalike_tags"):
        value = data.get(key)
        data[key] = [] if value is None else list(value)  # Parquet list columns arrive as arrays
    return RLTask.model_validate(data)


def masked_arguments(
    trajectory: Trajectory,
    envs: list[VerifiedEnvironment],
    turn: int,
    index: int,
    *,
    replayer: TrajectoryReplayer | None = None,
) -> list[str]:
    """Arguments of call (turn, index) that are masked: candidates by schema rule, confirmed by replay.

    `replayer`: a TrajectoryReplayer of this trajectory, to share its validated initial states
    between the calls of one trajectory (built on first need when omitted).
    """
    call = trajectory.turns[turn].calls[index]
    schema = envs[[e.env_id for e in envs].index(call.env_id)].env_class.TOOLS[call.tool].input_schema
    required = set(schema.get("required", []))
    candidates = sorted(
        a for a in call.arguments if a not in required and (a in MASKABLE_NAMES or a in call.masked_arguments)
    )
    uses = [
        (t, later_index, source.path)
        for t, later_turn in enumerate(trajectory.turns)
        for later_index, later in enumerate(later_turn.calls)
        for source in later.argument_sources.values()
        if source.kind == "output" and (source.turn, source.call) == (turn, index) and source.path
    ]
    confirmed = []
    for argument in candidates:
        reduced = {k: v for k, v in call.arguments.items() if k != argument}
        replayer = replayer or TrajectoryReplayer(trajectory, envs)
        replay = replayer.run(override=(turn, index, reduced))
        if replay.errors or not values_equal(replay.final_states, trajectory.final_states, 0.0):
            continue
        original = trajectory.turns[turn].calls[index].output
        try:
            same = all(
                read_path(replay.outputs[turn][index], p) == read_path(original, p) for _, _, p in uses
            )
        except (KeyError, IndexError, TypeError, ValueError):
            same = False
        if same:
            confirmed.append(argument)
    return confirmed


def replay_rl_task(
    task: RLTask, envs: EnvironmentRows | Mapping[str, VerifiedEnvironment]
) -> RewardBreakdown:
    """Run the task's gold calls through a Toolset from its initial states and score them."""
    index = dict(envs) if isinstance(envs, Mapping) else environments_by_id(envs)
    return score_gold_calls(task, Toolset(task_environments(task.env_ids, index), task.initial_states))


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


def build_rl_tasks(
    refined: Iterable[Mapping[str, Any]],
    envs: EnvironmentRows,
    *,
    reward_spec: RewardSpec | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """One RL task row per refined trajectory row; returns (rows, error rows, metrics).

    Reads `split` (default "train") from the rows (see splits.split_and_filter). `envs` are
    `verified_envs` rows; their `lookalike_tags` are copied onto the task.
    """
    env_rows = list(envs)
    index = environments_by_id(env_rows)
    tags = {
        (r["env_id"] if isinstance(r, Mapping) else r.env_id): list(r.get("lookalike_tags") or [])
        for r in env_rows
        if isinstance(r, Mapping)
    }
    spec = reward_spec or RewardSpec()
    tools_of: dict[tuple[str, ...], list[dict[str, Any]]] = {}  # tool lists depend only on the envs
    rows, errors = [], []
    counts: Counter[str] = Counter()
    for row in refined:
        try:
            trajectory, envs_of_task = trajectory_of_row(row, index)
        except ValueError as exc:
            errors.append({"trajectory_id": row.get("trajectory_id"), "stage": STAGE, "reason": str(exc)})
            continue
        names = exported_name_of(envs_of_task)
        replayer = TrajectoryReplayer(trajectory, envs_of_task)
        gold_calls = []
        for t, turn in enumerate(trajectory.turns):
            for i, call in enumerate(turn.calls):
                masked = masked_arguments(trajectory, envs_of_task, t, i, replayer=replayer)
                counts["masked_arguments"] += len(masked)
                gold_calls.append(
                    RLGoldCall(
                        name=names[(call.env_id, call.tool)],
                        arguments=call.arguments,
                        masked_arguments=masked,
                        env_id=call.env_id,
                        turn=t,
                    )
                )
        queries = [t.query for t in trajectory.turns]
        env_key = tuple(trajectory.env_ids)
        if env_key not in tools_of:
            tools_of[env_key] = replayer.toolset.openai_tools()
        task = RLTask(
            id=content_id([trajectory.id, queries], "rlt_"),
            domain=trajectory.domain,
            trajectory_id=trajectory.id,
            chain_id=trajectory.chain_id,
            split=row.get("split") or "train",
            env_ids=trajectory.env_ids,
            messages=[
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": "\n\n".join(queries)},
            ],
            user_turns=queries,
            tools=tools_of[env_key],
            initial_states=trajectory.initial_states,
            gold_calls=gold_calls,
            gold_final_states=trajectory.final_states,
            reward_spec=spec,
            resource_ids=list(row.get("resource_ids") or []),
            lookalike_tags=sorted({tag for e in trajectory.env_ids for tag in tags.get(e, [])}),
            seed=trajectory.seed,
            backend=trajectory.backend,
            model=trajectory.model,
            prompt_version=trajectory.prompt_version,
        )
        # the gold replay starts from the initial states validated when the replayer was built
        replayer.toolset.reset_from_snapshots(replayer.initial)
        check = score_gold_calls(task, replayer.toolset)
        if check.total != 1.0:
            errors.append(
                {
                    "trajectory_id": trajectory.id,
                    "stage": STAGE,
                    "reason": f"gold replay scores {check.total}: {check.details}",
                }
            )
            continue
        rows.append({**rl_task_to_row(task), "pool": row.get("pool", "rl")})
    metrics = {
        "rl_tasks": len(rows),
        "errors": len(errors),
        "gold_replay_at_1": len(rows),
        "masked_arguments": counts["masked_arguments"],
        "median_gold_calls": sorted(r["n_gold_calls"] for r in rows)[len(rows) // 2] if rows else 0,
    }
    return rows, errors, metrics


def verl_records(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """verl RL rows: data_source, prompt (chat messages), ability, reward_model{style, ground_truth},
    extra_info (index, split, task id, and the environment payload as JSON strings)."""
    records = []
    for position, row in enumerate(rows):
        task = rl_task_from_row(row)
        ground_truth = [
            {"name": g.name, "arguments": g.arguments, "masked_arguments": g.masked_arguments}
            for g in task.gold_calls
        ]
        records.append(
            {
                "data_source": f"envfactory/{task.domain}",
                "prompt": [{"role": m["role"], "content": m["content"]} for m in task.messages],
                "ability": "tool_use",
                "reward_model": {"style": "rule", "ground_truth": canonical_json(ground_truth)},
                "extra_info": {
                    "index": position,
                    "split": task.split,
                    "task_id": task.id,
                    "trajectory_id": task.trajectory_id,
                    "env_ids": canonical_json(task.env_ids),
                    "initial_states": canonical_json(task.initial_states),
                    "gold_final_states": canonical_json(task.gold_final_states),
                    "tools": canonical_json(task.tools),
                    "user_turns": canonical_json(task.user_turns),
                    "reward_spec": canonical_json(task.reward_spec.model_dump(mode="json")),
                    # verl creates each tool with these kwargs; the serving adapter
                    # (serve.trainer_tools.VerlEnvironmentTool) opens the task's rollout by id
                    "tools_kwargs": {
                        t["function"]["name"]: {"create_kwargs": {"task_id": task.id}} for t in task.tools
                    },
                },
            }
        )
    return records


def write_verl_parquet(rows: Iterable[Mapping[str, Any]], path: str | Path) -> int:
    """Write `verl_records(rows)` as one Parquet file; returns the number of rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = verl_records(rows)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(records), path)
    return len(records)
