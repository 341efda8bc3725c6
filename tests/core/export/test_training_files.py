"""The training files as their trainers load them: `datasets` reads every domain's files in one call,
rows carry structured messages (arguments as dicts), verl rows carry exactly their tools' kwargs,
and each folder's dataset card makes `load_dataset(<folder>)` find its splits."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest

from envfactory_dagster.export.dataset_cards import rl_card, sft_card
from envfactory_dagster.export.rl_tasks import build_rl_tasks
from envfactory_dagster.export.sft import build_sft_rows, write_sft_parquet
from envfactory_dagster.export.verl_export import AGENT_NAME, INTERACTION_NAME, write_verl_parquet
from envfactory_dagster.refine.refined_trajectories import refine_trajectories
from tests.fakes.refine_fixtures import env_rows, sample_trajectories, trajectory_rows

RESOURCES = [
    {
        "id": "res_shoporders",
        "title": "Shop API",
        "source_path": "commerce/shop.yaml",
        "license": "Apache-2.0",
    },
    {
        "id": "res_outletorders",
        "title": "Outlet API",
        "source_path": "commerce/outlet.yaml",
        "license": "MIT",
    },
]


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two 'domains' with different tool sets (one environment / two), written as the assets do."""
    root = tmp_path_factory.mktemp("exports")
    refined, _, _ = refine_trajectories(trajectory_rows(sample_trajectories()), env_rows(), seed=0)
    for row in refined:  # a validation split too
        row["split"] = "validation" if row["chain_id"] == "chain_b" else "train"
    domains = {
        "single": [r for r in refined if len(r["env_ids"]) == 1],
        "double": [r for r in refined if len(r["env_ids"]) == 2],
    }
    for domain, rows in domains.items():
        sft_rows, _, _ = build_sft_rows(rows, env_rows())
        rl_rows, _, _ = build_rl_tasks(rows, env_rows())
        sft_dir, rl_dir = root / "sft" / f"domain={domain}", root / "rl" / f"domain={domain}"
        splits = write_sft_parquet(sft_rows, sft_dir)
        (sft_dir / "README.md").write_text(sft_card(domain, sft_rows, splits, env_rows(), RESOURCES))
        splits = write_verl_parquet(rl_rows, rl_dir)
        (rl_dir / "README.md").write_text(rl_card(domain, rl_rows, splits, env_rows(), RESOURCES))
    return root


def files(root: Path, kind: str) -> list[str]:
    return sorted(str(p) for p in (root / kind).glob("domain=*/*.parquet"))


def test_every_verl_file_has_one_schema(exports: Path) -> None:
    schemas = {pq.read_schema(f).remove_metadata() for f in files(exports, "rl")}
    assert len(files(exports, "rl")) == 3 and len(schemas) == 1  # no file for an empty split


def test_all_rl_files_load_in_one_call_with_the_fields_verl_reads(exports: Path) -> None:
    rows = datasets.load_dataset("parquet", data_files=files(exports, "rl"))["train"]
    single_env = double_env = 0
    for row in rows:
        tools = {json.loads(json.dumps(t))["function"]["name"] for t in row["extra_info"]["tools"]}
        kwargs = row["extra_info"]["tools_kwargs"]
        # a dict per row with exactly this task's tools, none null-filled from another domain's
        assert isinstance(kwargs, dict) and set(kwargs) == tools
        assert all(v == {"create_kwargs": {"task_id": row["extra_info"]["task_id"]}} for v in kwargs.values())
        # what verl's ToolAgentLoop reads once an interaction config is set: a name on every row
        assert row["extra_info"]["interaction_kwargs"] == {
            "name": INTERACTION_NAME,
            "task_id": row["extra_info"]["task_id"],
        }
        assert row["agent_name"] == AGENT_NAME and row["split"] in {"train", "validation"}
        assert row["prompt"][0]["role"] == "system" and row["prompt"][-1]["role"] == "user"
        truth = row["reward_model"]["ground_truth"]
        assert truth and all(isinstance(g["arguments"], dict) for g in truth)
        for message in row["prompt"]:
            for call in message["tool_calls"] or []:
                assert isinstance(call["function"]["arguments"], dict)
        single_env += len(row["extra_info"]["env_ids"]) == 1
        double_env += len(row["extra_info"]["env_ids"]) == 2
    assert single_env and double_env


def test_all_sft_files_load_in_one_call_with_structured_messages(exports: Path) -> None:
    rows = datasets.load_dataset("parquet", data_files=files(exports, "sft"))["train"]
    assert len(rows) > 0
    for row in rows:
        messages, tools = row["messages"], row["tools"]
        # what TRL's SFTTrainer takes as conversational data: a list of role/content dicts (+ tools)
        assert isinstance(messages, list) and all({"role", "content"} <= set(m) for m in messages)
        assert isinstance(tools, list) and all(t["type"] == "function" for t in tools)
        calls = [c for m in messages for c in (m["tool_calls"] or [])]
        assert calls and all(isinstance(c["function"]["arguments"], dict) for c in calls)
        # arguments are each call's own keys: no keys of other calls filled with null
        assert all(None not in c["function"]["arguments"].values() for c in calls)


def test_dataset_cards_declare_the_splits_and_lineage(exports: Path) -> None:
    folder = exports / "rl" / "domain=single"
    loaded = datasets.load_dataset(str(folder))
    assert set(loaded) == {"train", "validation"}
    card = (folder / "README.md").read_text()
    assert card.startswith("---\n") and "config_name: rl_single" in card
    assert "commerce/shop.yaml" in card and "apache-2.0" in card.split("---")[1]
    double = (exports / "sft" / "domain=double" / "README.md").read_text()
    assert "license: other" in double and "MIT" in double  # two source licences
    assert set(datasets.load_dataset(str(exports / "sft" / "domain=double"))) == {"train"}


def test_sft_and_rl_folders_of_a_domain_load_their_own_rows(exports: Path, tmp_path: Path) -> None:
    # same folder name, same file names: distinct config names keep datasets' cache apart
    sft = datasets.load_dataset(str(exports / "sft" / "domain=single"), cache_dir=str(tmp_path))
    rl = datasets.load_dataset(str(exports / "rl" / "domain=single"), cache_dir=str(tmp_path))
    assert "messages" in sft["train"].column_names and "prompt" in rl["train"].column_names
