"""Split by chain, duplicate removal and look-alike decontamination."""

from __future__ import annotations

import json

from envfactory_dagster.export.splits import split_and_filter
from envfactory_dagster.refine.refined_trajectories import refine_trajectories
from tests.fakes.refine_fixtures import env_rows, sample_trajectories, trajectory_rows


def refined() -> list[dict]:
    rows, _, _ = refine_trajectories(trajectory_rows(sample_trajectories()), env_rows(), seed=0)
    return rows


def test_exact_and_near_duplicates_are_dropped_with_reasons() -> None:
    rows = refined()
    exact = {**rows[1], "id": "zz_exact"}
    near_traj = json.loads(rows[2]["trajectory_json"])
    near_traj["turns"][0]["calls"][0]["arguments"]["status"] = "shipped"  # other value, same shape and words
    near = {**rows[2], "id": "zz_near", "trajectory_json": json.dumps(near_traj)}
    _, dropped, metrics = split_and_filter([*rows, exact, near], env_rows(), seed=0, decontamination="tag")
    reasons = {d["id"]: d["reason"] for d in dropped}
    assert reasons["zz_exact"].startswith("exact duplicate") and reasons["zz_near"].startswith(
        "near duplicate"
    )
    assert metrics["kept"] == len(rows)


def test_lookalike_rows_are_dropped_or_tagged() -> None:
    rows = refined()
    kept, dropped, _ = split_and_filter(rows, env_rows(), seed=0, decontamination="drop")
    assert kept == [] and all("tau2:retail" in d["reason"] for d in dropped)  # every fixture uses the shop
    kept, _, _ = split_and_filter(rows, env_rows(), seed=0, decontamination="tag")
    assert all(r["lookalike_tags"] == ["tau2:retail"] for r in kept)


def test_no_chain_in_both_splits_and_deterministic() -> None:
    rows = [
        {
            **r,
            "id": f"{r['id']}_{i}",
            "trajectory_json": r["trajectory_json"].replace('"chain_id":"', f'"chain_id":"c{i % 7}_'),
        }
        for i, r in enumerate(refined() * 10)
    ]
    kept, _, _ = split_and_filter(rows, seed=3, validation_share=0.5, near_dup_threshold=1.1)
    splits: dict[str, set] = {}
    for r in kept:
        splits.setdefault(json.loads(r["trajectory_json"])["chain_id"], set()).add(r["split"])
    assert all(len(s) == 1 for s in splits.values())
    assert kept == split_and_filter(rows, seed=3, validation_share=0.5, near_dup_threshold=1.1)[0]
