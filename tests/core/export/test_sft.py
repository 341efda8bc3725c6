"""SFT rows and their exports, read back."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pyarrow.parquet as pq

from envfactory_dagster.export.sft import build_sft_rows, write_hf_parquet, write_openai_jsonl, write_sharegpt
from envfactory_dagster.refine.refined_trajectories import refine_trajectories
from tests.fakes.refine_fixtures import env_rows, sample_trajectories, trajectory_rows


def sft_rows() -> list[dict]:
    refined, _, _ = refine_trajectories(trajectory_rows(sample_trajectories()), env_rows(), seed=0)
    rows, errors, _ = build_sft_rows(refined, env_rows())
    assert not errors and len(rows) == len(refined)
    return rows


def test_messages_pair_every_tool_call_with_a_result() -> None:
    for row in sft_rows():
        messages = json.loads(row["messages_json"])
        call_ids = [c["id"] for m in messages if m.get("tool_calls") for c in m["tool_calls"]]
        result_ids = [m["tool_call_id"] for m in messages if m["role"] == "tool"]
        assert call_ids == result_ids and len(call_ids) == row["n_calls"]
        tool_names = {t["function"]["name"] for t in json.loads(row["tools_json"])}
        assert {
            c["function"]["name"] for m in messages if m.get("tool_calls") for c in m["tool_calls"]
        } <= tool_names
        assert row["trajectory_id"] and row["chain_id"] and row["env_ids"]


def test_exports_read_back(tmp_path: Path) -> None:
    rows = sft_rows()
    assert write_openai_jsonl(rows, tmp_path / "sft.jsonl") == len(rows)
    first = json.loads((tmp_path / "sft.jsonl").read_text().splitlines()[0])
    assert first["messages"][0]["role"] == "system" and first["tools"]
    write_sharegpt(rows, tmp_path / "lf")
    info = json.loads((tmp_path / "lf" / "dataset_info.json").read_text())
    assert info["envfactory_sft"]["formatting"] == "sharegpt"
    records = json.loads((tmp_path / "lf" / "envfactory_sft.json").read_text())
    roles = {c["from"] for r in records for c in r["conversations"]}
    assert roles == {"human", "function_call", "observation", "gpt"}
    write_hf_parquet(rows, tmp_path / "sft.parquet")
    table = pq.read_table(tmp_path / "sft.parquet")
    assert table.num_rows == len(rows) and "messages_json" in table.column_names
    if importlib.util.find_spec("datasets") is not None:  # not a dependency; checked when present
        import datasets

        assert len(
            datasets.load_dataset("parquet", data_files=str(tmp_path / "sft.parquet"))["train"]
        ) == len(rows)
