"""SFT rows and their three exports, read back as their trainers read them."""

from __future__ import annotations

import json
from pathlib import Path

from envfactory_dagster.export.export_audit import (
    most_shared_answer,
    openai_problems,
    sharegpt_problems,
    unseen_ids,
)
from envfactory_dagster.export.sft import (
    build_sft_rows,
    openai_record,
    write_openai_jsonl,
    write_sft_parquet,
    write_sharegpt,
)
from envfactory_dagster.refine.refined_trajectories import refine_trajectories
from tests.fakes.refine_fixtures import env_rows, sample_trajectories, trajectory_rows


def sft_build() -> tuple[list[dict], list[dict], dict]:
    refined, _, _ = refine_trajectories(trajectory_rows(sample_trajectories()), env_rows(), seed=0)
    rows, errors, metrics = build_sft_rows(refined, env_rows())
    assert len(rows) + len(errors) == len(refined)
    return rows, errors, metrics


def sft_rows() -> list[dict]:
    """SFT rows of the fixture trajectories as executed (explicit queries: every id is shown)."""
    rows, errors, _ = build_sft_rows(trajectory_rows(sample_trajectories()), env_rows())
    assert not errors
    return rows


def test_a_turn_whose_gold_call_passes_a_hidden_id_is_not_taught() -> None:
    # refinement may hide an id behind a reference ("the customer named Alan Turing") that only a
    # look-up the gold calls never make would resolve: a model trained on that turn would guess
    refined, _, _ = refine_trajectories(trajectory_rows(sample_trajectories()), env_rows(), seed=0)
    queries = {r["trajectory_id"]: json.loads(r["trajectory_json"])["turns"][0]["query"] for r in refined}
    _, errors, metrics = sft_build()
    assert errors and metrics["turns_cut_for_unseen_ids"] >= len(errors)
    for error in errors:
        hidden = error["reason"].split("'")[1]
        assert error["reason"].startswith("turn 0 passes") and hidden not in queries[error["trajectory_id"]]


def test_messages_pair_every_tool_call_with_a_result_and_pass_openai_rules() -> None:
    for row in sft_rows():
        record = openai_record(row)
        assert openai_problems(record) == []
        messages = record["messages"]
        call_ids = [c["id"] for m in messages if m.get("tool_calls") for c in m["tool_calls"]]
        result_ids = [m["tool_call_id"] for m in messages if m["role"] == "tool"]
        assert sorted(call_ids) == sorted(result_ids) and len(call_ids) == row["n_calls"]
        assert row["trajectory_id"] and row["chain_id"] and row["env_ids"]


def test_a_call_needing_an_output_comes_after_it_and_no_id_is_guessed() -> None:
    rows = sft_rows()
    for row in rows:
        assert unseen_ids(openai_record(row)["messages"]) == []
    # the first trajectory's turn 0 is a chain of three look-ups: three messages, one call each
    chained = next(r for r in rows if r["n_calls"] == 5)
    messages = openai_record(chained)["messages"]
    first_turn = messages[: [i for i, m in enumerate(messages) if m["role"] == "user"][1]]
    assert [len(m["tool_calls"]) for m in first_turn if m.get("tool_calls")] == [1, 1, 1]
    # independent calls of one turn go out together: the user-given ids in "get and cancel ord_0003"
    together = next(r for r in rows if r["n_calls"] == 2 and r["n_call_messages"] == 1)
    assert [len(m["tool_calls"]) for m in openai_record(together)["messages"] if m.get("tool_calls")] == [2]


def test_closing_answers_report_each_turn_and_differ() -> None:
    rows = sft_rows()
    conversations = [openai_record(r)["messages"] for r in rows]
    share, text, turns = most_shared_answer(conversations)
    assert turns == sum(r["n_turns"] for r in rows)
    assert share < 0.5 and text != "Done."
    created = next(
        m for c in conversations for m in c if m["role"] == "assistant" and "ord_0005" in m["content"]
    )
    assert not created.get("tool_calls")


def test_sharegpt_is_valid_for_llamafactory_and_has_its_dataset_entry(tmp_path: Path) -> None:
    rows = sft_rows()
    write_sharegpt(rows, tmp_path / "lf")
    info = json.loads((tmp_path / "lf" / "dataset_info.json").read_text())
    entry = info["envfactory_sft"]
    assert entry["formatting"] == "sharegpt" and entry["columns"]["messages"] == "conversations"
    assert entry["tags"]["function_tag"] == "function_call"  # given `tags`, every tag must be spelled out
    records = json.loads((tmp_path / "lf" / entry["file_name"]).read_text())
    assert len(records) == len(rows)
    assert all(sharegpt_problems(r, entry["columns"]) == [] for r in records)
    parallel = next(
        c
        for r in records
        for c in r["conversations"]
        if c["from"] == "function_call" and "," in c["value"] and len(json.loads(c["value"])) == 2
    )
    assert isinstance(json.loads(parallel["value"])[0]["arguments"], dict)


def test_openai_jsonl_and_parquet_read_back(tmp_path: Path) -> None:
    rows = sft_rows()
    assert write_openai_jsonl(rows, tmp_path / "sft.jsonl") == len(rows)
    first = json.loads((tmp_path / "sft.jsonl").read_text().splitlines()[0])
    assert first["messages"][0]["role"] == "system" and first["tools"]
    counts = write_sft_parquet(rows, tmp_path)
    assert sum(counts.values()) == len(rows)
