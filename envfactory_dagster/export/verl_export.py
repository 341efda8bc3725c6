"""verl's RL dataset files: one row per RL task, one Arrow schema (`VERL_SCHEMA`) for every file.

Columns verl reads (volcengine/verl@b178a3cd `verl/utils/dataset/rl_dataset.py`,
`verl/experimental/agent_loop/tool_agent_loop.py`):
- `prompt`: the task's messages (system, earlier turns with their tool calls and results, the
  turn's user message); tool-call `arguments` decode to dicts, as chat templates expect;
- `data_source`, `ability`, `reward_model {style: "rule", ground_truth}`: ground truth decodes to
  `[{name, arguments, masked_arguments}]`, the task's gold calls;
- `extra_info.tools_kwargs`: `{tool: {"create_kwargs": {"task_id": ...}}}` for exactly the task's
  tools (a json column: each row gets its own dict, so no tool of another task appears as a null
  entry, which verl would turn into an error text sent to the model); `extra_info.index`;
- `agent_name: "tool_agent"`: verl's multi-turn tool rollout.
Also in `extra_info`: split, pool, task id, trajectory id, turn, env ids, the tools, initial and
gold final states and the reward spec (all a reward function needs to rebuild the task); `split`
and `pool` are top-level columns too, and each split is its own file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from envfactory_dagster.export.rl_tasks import rl_task_from_row
from envfactory_dagster.export.training_parquet import VERL_SCHEMA, write_training_parquet
from envfactory_dagster.lineage import canonical_json

AGENT_NAME = "tool_agent"
SPLITS = ("train", "validation")


def prompt_message(message: Mapping[str, Any]) -> dict[str, Any]:
    """A chat message as `VERL_SCHEMA` stores it (every key present; arguments as JSON text)."""
    return {
        "role": message["role"],
        "content": message.get("content"),
        "tool_calls": message.get("tool_calls"),
        "tool_call_id": message.get("tool_call_id"),
    }


def verl_records(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The verl rows of `rl_tasks` rows (json columns as JSON text, `index` = position)."""
    records = []
    for position, row in enumerate(rows):
        task = rl_task_from_row(row)
        ground_truth = [
            {"name": g.name, "arguments": g.arguments, "masked_arguments": g.masked_arguments}
            for g in task.gold_calls
        ]
        pool = row.get("pool") or "rl"
        records.append(
            {
                "data_source": f"envfactory/{task.domain}",
                "prompt": [prompt_message(m) for m in task.messages],
                "ability": "tool_use",
                "reward_model": {"style": "rule", "ground_truth": canonical_json(ground_truth)},
                "extra_info": {
                    "index": position,
                    "split": task.split,
                    "pool": pool,
                    "task_id": task.id,
                    "trajectory_id": task.trajectory_id,
                    "turn": task.turn,
                    "env_ids": task.env_ids,
                    # the serving adapter (serve.trainer_tools.VerlEnvironmentTool) opens the task by id
                    "tools_kwargs": canonical_json(
                        {t["function"]["name"]: {"create_kwargs": {"task_id": task.id}} for t in task.tools}
                    ),
                    "tools": [canonical_json(t) for t in task.tools],
                    "initial_states": canonical_json(task.initial_states),
                    "gold_final_states": canonical_json(task.gold_final_states),
                    "reward_spec": canonical_json(task.reward_spec.model_dump(mode="json")),
                },
                "agent_name": AGENT_NAME,
                "split": task.split,
                "pool": pool,
            }
        )
    return records


def write_verl_parquet(rows: Iterable[Mapping[str, Any]], directory: str | Path) -> dict[str, int]:
    """`<split>.parquet` per non-empty split under `directory` (`VERL_SCHEMA`); rows per split."""
    records = verl_records(rows)
    counts = {split: [r for r in records if r["split"] == split] for split in SPLITS}
    # no file for an empty split: `datasets` cannot read a Parquet file without rows
    return {
        split: write_training_parquet(rows, VERL_SCHEMA, Path(directory) / f"{split}.parquet") if rows else 0
        for split, rows in counts.items()
    }
