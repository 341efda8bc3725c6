"""verl- and TRL-shaped adapters: a gold replay scores 1.0 and rollouts share nothing."""

from __future__ import annotations

import inspect
import json

import pytest

from envfactory_dagster.export.rl_tasks import rl_task_to_row
from envfactory_dagster.runtime.contract import ToolError
from envfactory_dagster.serve.trainer_tools import (
    RolloutTable,
    VerlEnvironmentTool,
    trl_environment_class,
    trl_reward,
    verl_tools,
)
from tests.core.serve.conftest import ENV_ID, TRAINING_CHAIN
from tests.core.serve.conftest import TRAINING_PREFIX as P


async def test_verl_tools_replay_gold_and_rollouts_share_nothing(env, task) -> None:
    table = RolloutTable({ENV_ID: env})
    tools = {tool.name: tool for tool in verl_tools(task, table)}
    first, _ = await tools[P + "create_order"].create("req-1", create_kwargs={"task": task.model_dump()})
    second, _ = await tools[P + "get_order"].create("req-2", task=task)
    step_rewards = []
    for name, arguments in TRAINING_CHAIN:
        response, step_reward, metrics = await tools[name].execute(first, arguments)
        assert metrics == {"ok": True}
        step_rewards.append(step_reward)
    assert json.loads(response.text)["order"]["status"] == "cancelled"
    assert await tools[P + "cancel_order"].calc_reward(first) == 1.0 == pytest.approx(sum(step_rewards))

    # the other rollout never saw those writes
    response, _, metrics = await tools[P + "get_order"].execute(second, {"order_id": "ord_0005"})
    assert metrics == {"ok": False} and json.loads(response.text)["error"]["code"] == "not_found"
    assert await tools[P + "get_order"].calc_reward(second) == 0.0
    assert (
        table.rollouts[first].toolset.instances[ENV_ID]
        is not table.rollouts[second].toolset.instances[ENV_ID]
    )
    await tools[P + "create_order"].release(first)
    assert set(table.rollouts) == {second}


def test_trl_environment_class_exposes_documented_tools_and_rewards(env, task) -> None:
    factory = trl_environment_class([env])
    list_orders = getattr(factory, P + "list_orders")
    signature = inspect.signature(list_orders)
    assert list(signature.parameters) == ["self", "customer_id", "status"]
    assert signature.parameters["status"].default is None
    assert "Args:\n    customer_id:" in list_orders.__doc__

    row = rl_task_to_row(task)  # an `rl_tasks` row as stored: nested columns are `<name>_json` text
    gold, other = factory(), factory()
    assert gold.reset(**row) is None and other.reset(**row) is None
    for name, arguments in TRAINING_CHAIN:
        getattr(gold, name)(**arguments)
    with pytest.raises(ToolError, match="not_found"):
        getattr(other, P + "get_order")(order_id="ord_0005")
    assert trl_reward([gold, other]) == [1.0, 0.0]


async def test_verl_tools_built_from_yaml_config_share_the_registry_table(registry_home, task) -> None:
    schemas = {t["function"]["name"]: t for t in task.tools}
    create = VerlEnvironmentTool({"home": registry_home}, schemas[P + "create_order"])
    get = VerlEnvironmentTool({"home": registry_home}, schemas[P + "get_order"])
    assert create.table is get.table
    instance_id, _ = await create.create("req-yaml", task=task)
    await get.create(instance_id, task=task)
    await create.execute(instance_id, {"customer_id": "cus_0002", "total": 25.0})
    response, _, metrics = await get.execute(instance_id, '{"order_id": "ord_0005"}')
    assert metrics == {"ok": True} and json.loads(response.text)["order"]["total"] == 25.0
    await get.release(instance_id)


async def test_verl_tool_agent_loop_shares_one_rollout_per_trajectory(env, task) -> None:
    """verl's ToolAgentLoop creates and releases a tool instance around every call and passes the
    trajectory's AgentData to execute (verl@b178a3cd experimental/agent_loop/tool_agent_loop.py)."""

    class AgentData:  # the attribute verl documents for tool session data
        def __init__(self) -> None:
            self.extra_fields: dict = {}

    table = RolloutTable({ENV_ID: env})
    tools = {tool.name: tool for tool in verl_tools(task, table)}
    agent_data, tool_rewards = AgentData(), []
    for name, arguments in TRAINING_CHAIN:
        instance_id, _ = await tools[name].create(create_kwargs={"task": task.model_dump()})
        response, reward, metrics = await tools[name].execute(instance_id, arguments, agent_data=agent_data)
        await tools[name].release(instance_id)
        assert metrics == {"ok": True}  # get/cancel see the order the first call created
        tool_rewards.append(reward)
    assert json.loads(response.text)["order"]["status"] == "cancelled"
    assert sum(tool_rewards) == pytest.approx(1.0) and table.rollouts == {}
