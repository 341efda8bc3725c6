"""RL tasks: one per turn with its conversation; stored rows agree with the record and replay to 1.0."""

from __future__ import annotations

import json

from envfactory_dagster.export.rl_tasks import (
    build_rl_tasks,
    gold_reward_on_record,
    replay_rl_task,
    rl_task_from_row,
)
from envfactory_dagster.querygen.trajectory_model import Trajectory
from envfactory_dagster.refine.refined_trajectories import refine_trajectories
from tests.fakes.refine_fixtures import (
    OUTLET,
    SHOP,
    env_rows,
    sample_trajectories,
    trajectory_rows,
)


def refined_rows() -> list[dict]:
    refined, _, _ = refine_trajectories(trajectory_rows(sample_trajectories()), env_rows(), seed=0)
    return refined


def rl_rows() -> list[dict]:
    rows, errors, _ = build_rl_tasks(refined_rows(), env_rows())
    turns = sum(len(json.loads(r["trajectory_json"])["turns"]) for r in refined_rows())
    assert not errors and len(rows) == turns
    return rows


def test_every_stored_task_agrees_with_its_record_and_replays_to_reward_one() -> None:
    trajectories = {
        r["trajectory_id"]: Trajectory.model_validate_json(r["trajectory_json"]) for r in refined_rows()
    }
    for row in rl_rows():
        task = rl_task_from_row(json.loads(json.dumps(row)))
        assert gold_reward_on_record(task, trajectories[task.trajectory_id]).total == 1.0
        # executing the gold calls (what a user of `replay_rl_task` does) agrees with the record
        assert replay_rl_task(task, env_rows()).total == 1.0


def test_a_row_whose_states_disagree_with_the_record_does_not_reach_full_reward() -> None:
    row = next(r for r in rl_rows() if r["turn"] == 1)
    task = rl_task_from_row(row)
    trajectory = next(
        Trajectory.model_validate_json(r["trajectory_json"])
        for r in refined_rows()
        if r["trajectory_id"] == task.trajectory_id
    )
    # the turn's initial states replaced by the trajectory's first ones (an off-by-one-turn bug)
    wrong = task.model_copy(update={"initial_states": trajectory.initial_states})
    assert gold_reward_on_record(wrong, trajectory).total < 1.0


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


def test_metrics_report_history_and_masks() -> None:
    rows, _, metrics = build_rl_tasks(refined_rows(), env_rows())
    assert metrics["tasks_with_history"] == sum(1 for r in rows if r["turn"] > 0) > 0
    assert metrics["masked_arguments"] == sum(r["n_masked_arguments"] for r in rows)
    assert metrics["median_gold_calls"] <= 3


def test_partition_check_fails_when_the_gold_guard_drops_more_than_one_percent() -> None:
    import pandas as pd

    from envfactory_dagster.quality.expectations import validate_frame
    from envfactory_dagster.quality.guards import guard_figures
    from envfactory_dagster.quality.suites import rl_tasks_partition_suite

    def verdicts(kept: int, dropped: int) -> dict[str, bool]:
        rejects = [{"kind": "gold_below_full_reward"}] * dropped
        frame = pd.DataFrame([{"tasks": kept, **guard_figures(kept, rejects)}])
        outcomes = validate_frame(frame, "rl_tasks_partition", rl_tasks_partition_suite("finance"))
        assert not any(o.errored for o in outcomes)
        return {o.check_name: o.passed for o in outcomes}

    # the guard let 90 tasks through but dropped 10: the export disagrees with execution
    assert verdicts(90, 10)["gold_below_full_reward_at_most_1_percent"] is False
    assert verdicts(1000, 0) == {"has_tasks": True, "gold_below_full_reward_at_most_1_percent": True}
