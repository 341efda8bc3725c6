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
- `extra_info.interaction_kwargs`: `{"name": "envfactory_user", "task_id": ...}` on every row (verl's
  `ToolAgentLoop` requires a `name` on every row once an interaction config is set); the
  interaction `serve.verl_interaction.EnvFactoryUserInteraction` plays the simulated user of a
  conversational task and ends the others at the assistant's first answer;
- `agent_name: "tool_agent"`: verl's multi-turn tool rollout.
Also in `extra_info`: split, pool, task id, trajectory id, turn, env ids, the tools, initial and
gold final states and the reward spec (all a reward function needs to rebuild the task), and the
user's side of a conversational task: `user_tools` (tools only the user runs; never in `tools`)
and `user_calls` (the steps the interaction runs for the user when the policy asks; see
export/user_actions.py); `split` and `pool` are top-level columns too, and each split is its own
file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from envfactory_dagster.export.training_parquet import VERL_SCHEMA, write_training_parquet
from envfactory_dagster.lineage import canonical_json

AGENT_NAME = "tool_agent"
INTERACTION_NAME = "envfactory_user"  # the `name` of the interaction in verl's interaction config
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
    """The verl rows of `rl_tasks` rows (json columns as JSON text, `index` = position).

    The rows' state and reward-spec columns are canonical JSON already (`rl_task_to_row`) and
    are copied as they are: parsing and re-encoding two world states per task was most of the
    export's time."""
    records = []
    for position, row in enumerate(rows):
        tools = json.loads(row["tools_json"])
        ground_truth = [
            {"name": g["name"], "arguments": g["arguments"], "masked_arguments": g["masked_arguments"]}
            for g in json.loads(row["gold_calls_json"])
        ]
        pool = row.get("pool") or "rl"
        split = row.get("split") or "train"
        records.append(
            {
                "data_source": f"envfactory/{row['domain']}",
                "prompt": [prompt_message(m) for m in json.loads(row["messages_json"])],
                "ability": "tool_use",
                "reward_model": {"style": "rule", "ground_truth": canonical_json(ground_truth)},
                "extra_info": {
                    "index": position,
                    "split": split,
                    "pool": pool,
                    "task_id": row["id"],
                    "trajectory_id": row["trajectory_id"],
                    "turn": int(row["turn"]),
                    "env_ids": list(row["env_ids"]),
                    # the serving adapter (serve.trainer_tools.VerlEnvironmentTool) opens the task by id
                    "tools_kwargs": canonical_json(
                        {t["function"]["name"]: {"create_kwargs": {"task_id": row["id"]}} for t in tools}
                    ),
                    "interaction_kwargs": {"name": INTERACTION_NAME, "task_id": row["id"]},
                    "tools": [canonical_json(t) for t in tools],
                    "initial_states": row["initial_states_json"],
                    "gold_final_states": row["gold_final_states_json"],
                    "reward_spec": row["reward_spec_json"],
                    "user_tools": [canonical_json(t) for t in json.loads(row.get("user_tools_json") or "[]")],
                    "user_calls": row.get("user_calls_json") or "[]",
                },
                "agent_name": AGENT_NAME,
                "split": split,
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
