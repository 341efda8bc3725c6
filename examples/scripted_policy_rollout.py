"""Drive a served environment with a scripted policy that replays an RL task's gold calls.

    python examples/scripted_policy_rollout.py [--home DIR] [--task-id ID]

Takes an RL task from `$ENVFACTORY_HOME/rl_tasks` (with its environments from `verified_envs`)
when the pipeline has produced one, else builds one over the hand-written ShopOrders fixture
(tests/fakes/example_env.py). Runs it twice — through the Gymnasium-style `ToolUseEnv` and through
the verl-style tool objects — and prints the reward breakdown of each. Offline; no training code:
a real policy replaces `scripted_policy` with model calls producing the same actions.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the fixture environment lives in tests/fakes

from envfactory_dagster.export.rl_task_model import RLGoldCall, RLTask  # noqa: E402
from envfactory_dagster.lineage import sha256_hex  # noqa: E402
from envfactory_dagster.runtime.loader import VerifiedEnvironment  # noqa: E402
from envfactory_dagster.runtime.toolset import Toolset  # noqa: E402
from envfactory_dagster.serve.gym_env import ToolUseEnv  # noqa: E402
from envfactory_dagster.serve.registry import load_rl_task_rows, load_verified_envs  # noqa: E402
from envfactory_dagster.serve.rollout import coerce_rl_task  # noqa: E402
from envfactory_dagster.serve.trainer_tools import RolloutTable, verl_tools  # noqa: E402
from envfactory_dagster.settings import envfactory_home  # noqa: E402


def fixture_task() -> tuple[RLTask, dict[str, VerifiedEnvironment]]:
    """An RL task over ShopOrders: place an order, read it back, cancel it."""
    from tests.fakes.example_env_spec import EXAMPLE_ENV_SOURCE, EXAMPLE_SEED_STATE, EXAMPLE_SPEC

    env = VerifiedEnvironment(
        env_id="env_shoporders_example",
        class_name="ShopOrders",
        source=EXAMPLE_ENV_SOURCE,
        code_sha256=sha256_hex(EXAMPLE_ENV_SOURCE),
        spec_json=EXAMPLE_SPEC.model_dump_json(),
        seed_state_json=json.dumps(EXAMPLE_SEED_STATE),
    )
    chain = [  # training names: `<ClassName>__<tool>` in every task
        ("ShopOrders__create_order", {"customer_id": "cus_0002", "total": 25.0}),
        ("ShopOrders__get_order", {"order_id": "ord_0005"}),
        ("ShopOrders__cancel_order", {"order_id": "ord_0005"}),
    ]
    toolset = Toolset([env], {env.env_id: copy.deepcopy(EXAMPLE_SEED_STATE)}, qualify="always")
    for name, arguments in chain:
        toolset.call(name, arguments)
    task = RLTask(
        id="task_example",
        domain="commerce",
        trajectory_id="traj_example",
        chain_id="chain_example",
        env_ids=[env.env_id],
        messages=[
            {"role": "system", "content": "You are the order desk assistant of a small web shop."},
            {
                "role": "user",
                "content": "Please put in a $25 order for Alan Turing, confirm it, then cancel it.",
            },
        ],
        tools=toolset.openai_tools(),
        initial_states={env.env_id: copy.deepcopy(EXAMPLE_SEED_STATE)},
        gold_calls=[RLGoldCall(name=n, arguments=a, env_id=env.env_id, turn=0) for n, a in chain],
        gold_final_states=toolset.dump_states(),
    )
    return task, {env.env_id: env}


def stored_task(home: str, task_id: str | None) -> tuple[RLTask, dict[str, VerifiedEnvironment]] | None:
    rows = [r for r in load_rl_task_rows(home) if task_id is None or r.get("id") == task_id]
    if not rows:
        return None
    task = coerce_rl_task(min(rows, key=lambda r: r["id"]))  # deterministic pick
    return task, load_verified_envs(home, task.env_ids)


def scripted_policy(task: RLTask) -> Iterator[dict[str, Any] | str]:
    """The actions a perfect policy takes: each gold call, then a closing answer."""
    for call in task.gold_calls:
        yield {"type": "function", "function": {"name": call.name, "arguments": json.dumps(call.arguments)}}
    yield "All done."


def run_gym(task: RLTask, envs: dict[str, VerifiedEnvironment]) -> dict[str, Any]:
    gym = ToolUseEnv(envs)
    observation, info = gym.reset(task)
    for action in scripted_policy(task):
        observation, _reward, terminated, truncated, info = gym.step(action)
        if terminated or truncated:
            break
    print(f"  last tool result: {observation['messages'][-2]['content'][:100]}")
    return info["reward"]


async def run_verl(task: RLTask, envs: dict[str, VerifiedEnvironment]) -> float:
    tools = {tool.name: tool for tool in verl_tools(task, RolloutTable(envs))}
    instance_id = None
    for tool in tools.values():  # verl creates every tool of the request with the request's id
        instance_id, _ = await tool.create(instance_id, task=task)
    for action in scripted_policy(task):
        if isinstance(action, str):
            break
        function = action["function"]
        await tools[function["name"]].execute(instance_id, json.loads(function["arguments"]))
    any_tool = next(iter(tools.values()))
    reward = await any_tool.calc_reward(instance_id)
    await any_tool.release(instance_id)
    return reward


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default=None, help="data directory (default $ENVFACTORY_HOME)")
    parser.add_argument("--task-id", default=None)
    args = parser.parse_args()
    found = stored_task(args.home or envfactory_home(), args.task_id)
    task, envs = found if found is not None else fixture_task()
    print(
        f"task {task.id} ({'rl_tasks' if found else 'fixture'}): "
        f"{len(task.gold_calls)} gold calls over {task.env_ids}"
    )
    breakdown = run_gym(task, envs)
    print(
        "ToolUseEnv reward:",
        json.dumps({k: breakdown[k] for k in ("total", "trace", "state", "format", "length")}),
    )
    print("  details:", json.dumps(breakdown["details"]))
    print("verl-style tools reward:", asyncio.run(run_verl(task, envs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
