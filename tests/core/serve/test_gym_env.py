"""ToolUseEnv replays a gold chain to reward 1.0; wrong, malformed and erroring calls score less."""

from __future__ import annotations

import json

import pytest

from envfactory_dagster.serve.gym_env import ToolUseEnv
from tests.core.serve.conftest import ENV_ID, TRAINING_CHAIN, TRAINING_PREFIX, expected_final_state


def test_gold_chain_scores_one(env, task) -> None:
    gym = ToolUseEnv({ENV_ID: env})
    observation, info = gym.reset(task)
    assert [m["role"] for m in observation["messages"]] == ["system", "user"]
    names = {t["function"]["name"] for t in observation["tools"]}
    assert names >= {TRAINING_PREFIX + "create_order", TRAINING_PREFIX + "cancel_order"}
    for name, arguments in TRAINING_CHAIN:
        observation, reward, terminated, truncated, info = gym.step({"name": name, "arguments": arguments})
        assert (reward, terminated, truncated) == (0.0, False, False)
    created = json.loads(observation["messages"][3]["content"])
    assert created["order"]["id"] == "ord_0005"
    observation, reward, terminated, truncated, info = gym.step("Done: the order was placed and cancelled.")
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert info["reward"]["trace"] == 1.0 and info["reward"]["state"] == 1.0
    assert info["final_states"][ENV_ID] == expected_final_state()


def test_wrong_call_scores_less_and_errors_are_observations(env, task) -> None:
    gym = ToolUseEnv({ENV_ID: env})
    gym.reset(options={"task": task.model_dump()})  # a dict row works too
    gym.step(
        {"name": TRAINING_PREFIX + "create_order", "arguments": {"customer_id": "cus_0001", "total": 25.0}}
    )  # wrong customer
    observation, *_ = gym.step(
        {
            "type": "function",
            "function": {"name": TRAINING_PREFIX + "cancel_order", "arguments": '{"order_id": "nope"}'},
        }
    )
    assert json.loads(observation["messages"][-1]["content"])["error"]["code"] == "not_found"
    observation, *_ = gym.step({"name": TRAINING_PREFIX + "cancel_order", "arguments": "{not json"})
    assert json.loads(observation["messages"][-1]["content"])["error"]["code"] == "malformed_call"
    _, reward, terminated, _, info = gym.step({"role": "assistant", "content": "Done."})
    assert terminated and reward < 1.0
    assert (info["malformed_calls"], info["tool_errors"]) == (1, 1)
    assert info["reward"]["format"] < 0


def test_max_steps_truncates_with_a_reward(env, task) -> None:
    gym = ToolUseEnv({ENV_ID: env}, max_steps=2)
    gym.reset(task)
    gym.step({"name": TRAINING_CHAIN[0][0], "arguments": TRAINING_CHAIN[0][1]})
    _, reward, terminated, truncated, info = gym.step(
        {"name": TRAINING_CHAIN[1][0], "arguments": TRAINING_CHAIN[1][1]}
    )
    assert (terminated, truncated) == (False, True)
    assert reward < 1.0 and info["reward"]["trace"] == 0.0
    with pytest.raises(RuntimeError):
        gym.step("after the end")
