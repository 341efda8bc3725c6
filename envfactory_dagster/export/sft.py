"""`sft_dataset`: one canonical chat row per refined trajectory, and its standard exports.

Canonical row: OpenAI chat `messages` (system, then per turn: user, assistant `tool_calls`, one
`tool` message per call, the assistant's answer), the `tools` list, and lineage. Writers:
OpenAI JSONL, ShareGPT for LLaMA-Factory (with its `dataset_info.json` entry), and Parquet that
`datasets.load_dataset("parquet", ...)` reads (nested values as JSON text).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from envfactory_dagster.export.rl_tasks import SYSTEM_PROMPT
from envfactory_dagster.lineage import canonical_json, content_id
from envfactory_dagster.querygen.replay import (
    EnvironmentRows,
    environments_by_id,
    exported_name_of,
    trajectory_of_row,
)
from envfactory_dagster.querygen.trajectory_model import Trajectory
from envfactory_dagster.runtime.toolset import Toolset

STAGE = "sft_dataset"


def trajectory_messages(trajectory: Trajectory, names: Mapping[tuple[str, str], str]) -> list[dict[str, Any]]:
    """OpenAI chat messages of a trajectory (tool call ids `call_<turn>_<index>`)."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM_PROMPT}]
    for t, turn in enumerate(trajectory.turns):
        messages.append({"role": "user", "content": turn.query})
        if turn.calls:
            calls = [
                {
                    "id": f"call_{t}_{i}",
                    "type": "function",
                    "function": {"name": names[(c.env_id, c.tool)], "arguments": canonical_json(c.arguments)},
                }
                for i, c in enumerate(turn.calls)
            ]
            messages.append({"role": "assistant", "content": "", "tool_calls": calls})
            for i, c in enumerate(turn.calls):
                messages.append(
                    {"role": "tool", "tool_call_id": f"call_{t}_{i}", "content": canonical_json(c.output)}
                )
        messages.append({"role": "assistant", "content": turn.answer or "Done."})
    return messages


def build_sft_rows(
    refined: Iterable[Mapping[str, Any]], envs: EnvironmentRows
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """One SFT row per refined trajectory row; returns (rows, error rows, metrics).

    Columns: id, trajectory_id, domain, chain_id, env_ids, resource_ids, seed, split, pool,
    messages_json, tools_json, n_turns, n_calls, backend, model, prompt_version.
    """
    index = environments_by_id(envs)
    tools_of: dict[tuple[str, ...], list[dict[str, Any]]] = {}  # tool lists depend only on the envs
    rows, errors = [], []
    for row in refined:
        try:
            trajectory, envs_of_task = trajectory_of_row(row, index)
        except ValueError as exc:
            errors.append({"trajectory_id": row.get("trajectory_id"), "stage": STAGE, "reason": str(exc)})
            continue
        messages = trajectory_messages(trajectory, exported_name_of(envs_of_task))
        env_key = tuple(trajectory.env_ids)
        if env_key not in tools_of:
            tools_of[env_key] = Toolset(envs_of_task).openai_tools()
        tools = tools_of[env_key]
        rows.append(
            {
                "id": content_id([trajectory.id, messages], "sft_"),
                "trajectory_id": trajectory.id,
                "domain": trajectory.domain,
                "chain_id": trajectory.chain_id,
                "env_ids": trajectory.env_ids,
                "resource_ids": list(row.get("resource_ids") or []),
                "seed": trajectory.seed,
                "split": row.get("split") or "train",
                "pool": row.get("pool", "sft"),
                "messages_json": canonical_json(messages),
                "tools_json": canonical_json(tools),
                "n_turns": len(trajectory.turns),
                "n_calls": sum(len(t.calls) for t in trajectory.turns),
                "backend": trajectory.backend,
                "model": trajectory.model,
                "prompt_version": trajectory.prompt_version,
            }
        )
    return rows, errors, {"sft_rows": len(rows), "errors": len(errors)}


def write_openai_jsonl(rows: Iterable[Mapping[str, Any]], path: str | Path) -> int:
    """{"messages": [...], "tools": [...]} per line (OpenAI fine-tuning / TRL SFTTrainer)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            record = {"messages": json.loads(row["messages_json"]), "tools": json.loads(row["tools_json"])}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def sharegpt_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """LLaMA-Factory ShareGPT: conversations of human / function_call / observation / gpt, system, tools."""
    messages = json.loads(row["messages_json"])
    conversations = []
    for m in messages[1:]:
        if m["role"] == "user":
            conversations.append({"from": "human", "value": m["content"]})
        elif m["role"] == "tool":
            conversations.append({"from": "observation", "value": m["content"]})
        elif m.get("tool_calls"):
            calls = [
                {"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])}
                for c in m["tool_calls"]
            ]
            conversations.append({"from": "function_call", "value": json.dumps(calls, ensure_ascii=False)})
        else:
            conversations.append({"from": "gpt", "value": m["content"]})
    tools = [t["function"] for t in json.loads(row["tools_json"])]
    return {"conversations": conversations, "system": messages[0]["content"], "tools": json.dumps(tools)}


def write_sharegpt(
    rows: Iterable[Mapping[str, Any]], directory: str | Path, dataset_name: str = "envfactory_sft"
) -> int:
    """`<dataset_name>.json` (ShareGPT list) and `dataset_info.json` with its LLaMA-Factory entry."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    records = [sharegpt_record(r) for r in rows]
    (directory / f"{dataset_name}.json").write_text(
        json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    info = {
        dataset_name: {
            "file_name": f"{dataset_name}.json",
            "formatting": "sharegpt",
            "columns": {"messages": "conversations", "system": "system", "tools": "tools"},
        }
    }
    (directory / "dataset_info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    return len(records)


def write_hf_parquet(rows: Iterable[Mapping[str, Any]], path: str | Path) -> int:
    """Parquet for `datasets.load_dataset("parquet", data_files=...)`: messages/tools as JSON text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = (
        "id",
        "trajectory_id",
        "domain",
        "chain_id",
        "split",
        "messages_json",
        "tools_json",
        "env_ids",
        "resource_ids",
    )
    records = [{c: r[c] for c in columns} for r in rows]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(records), path)
    return len(records)
