"""Reward components: gold 1.0, empty 0, perturbed less, alternative path gets state credit."""

from __future__ import annotations

import pytest

from envfactory_dagster.export.reward import score_rollout
from envfactory_dagster.export.rl_task_model import RLTask
from envfactory_dagster.export.rl_tasks import build_rl_tasks, replay_rl_task, rl_task_from_row
from envfactory_dagster.refine.refined_trajectories import refine_trajectories
from envfactory_dagster.runtime.contract import ToolError
from envfactory_dagster.runtime.loader import VerifiedEnvironment
from envfactory_dagster.runtime.toolset import Toolset
from tests.fakes.refine_fixtures import env_rows, sample_trajectories, trajectory_rows


@pytest.fixture(scope="module")
def tasks() -> list[RLTask]:
    refined, _, _ = refine_trajectories(trajectory_rows(sample_trajectories()), env_rows(), seed=0)
    rows, errors, _ = build_rl_tasks(refined, env_rows())
    assert not errors
    return [rl_task_from_row(r) for r in rows]


def run(task: RLTask, calls: list[dict]) -> dict:
    toolset = Toolset(
        [VerifiedEnvironment.from_row(r) for r in env_rows() if r["env_id"] in task.env_ids],
        task.initial_states,
        qualify="always",
    )
    for call in calls:
        try:
            toolset.call(call["name"], dict(call["arguments"]))
        except ToolError:
            continue
    return toolset.dump_states()


def gold(task: RLTask) -> list[dict]:
    return [{"name": g.name, "arguments": g.arguments} for g in task.gold_calls]


def test_gold_calls_score_one(tasks: list[RLTask]) -> None:
    for task in tasks:
        breakdown = replay_rl_task(task, env_rows())
        assert breakdown.total == 1.0, breakdown


def test_empty_rollout_scores_zero(tasks: list[RLTask]) -> None:
    for task in tasks:
        assert score_rollout(task, [], task.initial_states).total == 0.0


def test_perturbed_rollout_scores_less(tasks: list[RLTask]) -> None:
    task = next(t for t in tasks if any(g.name.endswith("__create_order") for g in t.gold_calls))
    calls = gold(task)
    for call in calls:
        if call["name"].endswith("__create_order"):
            call["arguments"] = {**call["arguments"], "total": call["arguments"]["total"] + 1}
    breakdown = score_rollout(task, calls, run(task, calls))
    assert breakdown.trace == 0.0 and breakdown.state == 0.0 and breakdown.total < 1.0


def test_alternative_path_gets_full_state_credit(tasks: list[RLTask]) -> None:
    # gold: get_order(ord_0003) then cancel it; alternative: list the customer's orders, then cancel
    gold_names = ["ShopOrders__get_order", "ShopOrders__cancel_order"]
    task = next(t for t in tasks if [g.name for g in t.gold_calls] == gold_names)
    calls = [
        {"name": "ShopOrders__list_orders", "arguments": {"customer_id": "cus_0002"}},
        {"name": "ShopOrders__cancel_order", "arguments": {"order_id": "ord_0003"}},
    ]
    breakdown = score_rollout(task, calls, run(task, calls))
    assert breakdown.state == 1.0 and breakdown.trace == 0.0 and breakdown.total == 0.5


def test_penalties_and_masked_arguments(tasks: list[RLTask]) -> None:
    task = tasks[0].model_copy(deep=True)
    task.gold_calls[0].masked_arguments = ["name"]
    calls = [
        *gold(task),
        {"name": "get_order", "arguments": "{not json"},
        {"name": "get_order", "arguments": {}},
    ]
    calls[0] = {"name": calls[0]["name"], "arguments": {"name": "something else"}}
    breakdown = score_rollout(task, calls, run(task, gold(task)))
    assert breakdown.trace == 1.0 and breakdown.state == 1.0
    assert breakdown.format == -0.05 and breakdown.length == -0.05
    assert breakdown.total == pytest.approx(0.9)


def test_numbers_match_within_tolerance_and_weights_are_configurable(tasks: list[RLTask]) -> None:
    task = next(t for t in tasks if any(g.name.endswith("__create_order") for g in t.gold_calls))
    calls = gold(task)
    for call in calls:
        if call["name"].endswith("__create_order"):
            call["arguments"] = {**call["arguments"], "total": call["arguments"]["total"] * (1 + 1e-9)}
    assert score_rollout(task, calls, task.gold_final_states).trace == 1.0
    only_trace = score_rollout(task, calls, task.initial_states, weights={"trace": 1.0, "state": 0.0})
    assert only_trace.total == 1.0
