"""RL tasks: one per turn with its conversation, gold replays score 1.0, masked arguments by execution."""

from __future__ import annotations

import json

from envfactory_dagster.export.rl_tasks import (
    build_rl_tasks,
    masked_arguments,
    replay_rl_task,
    rl_task_from_row,
)
from envfactory_dagster.refine.refined_trajectories import refine_trajectories
from envfactory_dagster.runtime.loader import VerifiedEnvironment
from tests.fakes.refine_fixtures import (
    OUTLET,
    SHOP,
    USER,
    env_rows,
    execute_trajectory,
    sample_trajectories,
    trajectory_rows,
)


def refined_rows() -> list[dict]:
    refined, _, _ = refine_trajectories(trajectory_rows(sample_trajectories()), env_rows(), seed=0)
    return refined


def rl_rows() -> list[dict]:
    rows, errors, metrics = build_rl_tasks(refined_rows(), env_rows())
    turns = sum(len(json.loads(r["trajectory_json"])["turns"]) for r in refined_rows())
    assert not errors and metrics["gold_replay_at_1"] == len(rows) == turns
    return rows


def test_every_task_replays_to_reward_one_from_its_stored_row() -> None:
    for row in rl_rows():
        task = rl_task_from_row(json.loads(json.dumps(row)))
        assert replay_rl_task(task, env_rows()).total == 1.0


def test_a_later_turn_carries_the_earlier_turns_as_messages() -> None:
    rows = rl_rows()
    by_trajectory: dict[str, list] = {}
    for row in rows:
        by_trajectory.setdefault(row["trajectory_id"], []).append(rl_task_from_row(row))
    first, second = sorted(next(t for t in by_trajectory.values() if len(t) == 2), key=lambda t: t.turn)
    roles = [m["role"] for m in second.messages]
    assert roles[: len(first.messages)] == [m["role"] for m in first.messages]
    assert roles.count("user") == 2 and roles[-1] == "user" and "tool" in roles
    # the history's calls are turn 0's gold calls, and its results precede the closing answer
    history_calls = [
        c["function"]["name"] for m in second.messages if m.get("tool_calls") for c in m["tool_calls"]
    ]
    assert history_calls == [g.name for g in first.gold_calls]
    assert [g.turn for g in second.gold_calls] == [1, 1]
    # the turn starts from the state turn 0 left behind
    assert second.initial_states == first.gold_final_states
    assert second.initial_states != first.initial_states


def test_two_environment_task_uses_qualified_names_and_tags() -> None:
    task = next(rl_task_from_row(r) for r in rl_rows() if len(r["env_ids"]) == 2)
    assert {g.name for g in task.gold_calls} == {"ShopOrders__search_customers", "OutletOrders__create_order"}
    assert task.lookalike_tags == ["tau2:retail"]
    assert set(task.initial_states) == {SHOP, OUTLET}


def test_names_follow_one_rule_in_single_environment_tasks_too() -> None:
    for row in rl_rows():
        task = rl_task_from_row(row)
        assert all("__" in t["function"]["name"] for t in task.tools)
        assert all(g.name.split("__")[0] in {"ShopOrders", "OutletOrders"} for g in task.gold_calls)


def shop() -> list[VerifiedEnvironment]:
    return [VerifiedEnvironment.from_row(r) for r in env_rows() if r["env_id"] == SHOP]


def test_masked_arguments_are_confirmed_by_execution() -> None:
    # customer cus_0002 has paid orders only: the `status` filter changes no output, no state
    noop_filter = execute_trajectory(
        [("x", [(SHOP, "list_orders", {"customer_id": "cus_0002", "status": "paid"}, {"status": USER})])],
        chain_id="c",
        seed=0,
    )
    assert masked_arguments(noop_filter, shop(), 0, 0) == ["status"]
    # cus_0001 has orders in several states: dropping the filter changes the output, so it stays
    real_filter = execute_trajectory(
        [("x", [(SHOP, "list_orders", {"customer_id": "cus_0001", "status": "paid"}, {"status": USER})])],
        chain_id="c",
        seed=0,
    )
    assert len(real_filter.turns[0].calls[0].output["orders"]) < len(
        execute_trajectory(
            [("x", [(SHOP, "list_orders", {"customer_id": "cus_0001"}, {})])], chain_id="c", seed=0
        )
        .turns[0]
        .calls[0]
        .output["orders"]
    )
    assert masked_arguments(real_filter, shop(), 0, 0) == []
    # a required argument is never a candidate
    assert "customer_id" not in masked_arguments(noop_filter, shop(), 0, 0)


def test_metrics_report_history_and_masks() -> None:
    rows, _, metrics = build_rl_tasks(refined_rows(), env_rows())
    assert metrics["tasks_with_history"] == sum(1 for r in rows if r["turn"] > 0) > 0
    assert metrics["masked_arguments"] == sum(r["n_masked_arguments"] for r in rows)
    assert metrics["median_gold_calls"] <= 3
