"""RL tasks: every gold replay scores 1.0, rows round-trip, verl Parquet has verl's columns."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from envfactory_dagster.export.rl_tasks import (
    build_rl_tasks,
    replay_rl_task,
    rl_task_from_row,
    write_verl_parquet,
)
from envfactory_dagster.refine.refined_trajectories import refine_trajectories
from envfactory_dagster.runtime.loader import VerifiedEnvironment
from tests.fakes.refine_fixtures import OUTLET, SHOP, env_rows, sample_trajectories, trajectory_rows


def rl_rows() -> list[dict]:
    refined, _, _ = refine_trajectories(trajectory_rows(sample_trajectories()), env_rows(), seed=0)
    rows, errors, metrics = build_rl_tasks(refined, env_rows())
    assert not errors and metrics["gold_replay_at_1"] == len(rows) == 4
    return rows


def test_every_task_replays_to_reward_one_from_its_stored_row() -> None:
    for row in rl_rows():
        task = rl_task_from_row(json.loads(json.dumps(row)))
        assert replay_rl_task(task, env_rows()).total == 1.0


def test_two_environment_task_uses_qualified_names_and_tags() -> None:
    task = next(rl_task_from_row(r) for r in rl_rows() if len(r["env_ids"]) == 2)
    assert {g.name for g in task.gold_calls} == {"ShopOrders__search_customers", "OutletOrders__create_order"}
    assert task.lookalike_tags == ["tau2:retail"]
    assert set(task.initial_states) == {SHOP, OUTLET}


def test_masked_arguments_are_confirmed_by_execution() -> None:
    # an optional `status` filter is not a pagination/format knob: never masked, even if marked
    from envfactory_dagster.export.rl_tasks import masked_arguments
    from tests.fakes.refine_fixtures import USER, execute_trajectory

    trajectory = execute_trajectory(
        [
            (
                "x",
                [
                    (
                        SHOP,
                        "list_orders",
                        {"customer_id": "cus_0002", "status": "paid"},
                        {"customer_id": USER, "status": USER},
                    )
                ],
            )
        ],
        chain_id="c",
        seed=0,
    )
    trajectory.turns[0].calls[0].masked_arguments = ["status"]
    envs = [VerifiedEnvironment.from_row(r) for r in env_rows() if r["env_id"] == SHOP]
    assert masked_arguments(trajectory, envs, 0, 0) == ["status"]  # removing it changes no state
    trajectory.turns[0].calls[0].masked_arguments = []
    assert masked_arguments(trajectory, envs, 0, 0) == []  # not a schema-rule candidate


def test_verl_parquet_has_verl_columns(tmp_path: Path) -> None:
    path = tmp_path / "rl.parquet"
    assert write_verl_parquet(rl_rows(), path) == 4
    table = pq.read_table(path)
    assert table.column_names == ["data_source", "prompt", "ability", "reward_model", "extra_info"]
    first = table.to_pylist()[0]
    assert first["reward_model"]["style"] == "rule"
    assert json.loads(first["reward_model"]["ground_truth"])[0]["name"]
    assert [m["role"] for m in first["prompt"]] == ["system", "user"]
    assert json.loads(first["extra_info"]["initial_states"])
