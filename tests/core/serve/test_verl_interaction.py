"""The simulated user in verl's interaction shape, and the end-of-conversation judge over HTTP.

The loop below does what verl's ToolAgentLoop does (verl@b178a3cd experimental/agent_loop/
tool_agent_loop.py): start_interaction(request_id, **interaction_kwargs), tools created and released
around each call with the trajectory's AgentData, generate_response after each message without calls.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envfactory_dagster.export.conversation import DECLINE
from envfactory_dagster.export.rl_tasks import rl_task_to_row
from envfactory_dagster.export.verl_export import INTERACTION_NAME, verl_records
from envfactory_dagster.llm.gateway import LLMGateway
from envfactory_dagster.llm.testing import ScriptedOpenAIServer, ScriptedReply
from envfactory_dagster.serve.gym_env import ToolUseEnv
from envfactory_dagster.serve.trainer_tools import RolloutTable, verl_tools
from envfactory_dagster.serve.verl_interaction import CLOSING, EnvFactoryUserInteraction
from tests.core.serve.conftest import ENV_ID, TRAINING_CHAIN


class AgentData:  # what verl hands a tool's execute: the request id and the session slot
    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.extra_fields: dict = {}


def conversational(task):
    return task.model_copy(update={"id": "task_conv", "user_knows": {"total": 25.0}})


async def test_the_interaction_answers_the_policy_and_ends_at_the_gold_state(env, task) -> None:
    conv = conversational(task)
    rows = [rl_task_to_row(t) for t in (task, conv)]
    table = RolloutTable({ENV_ID: env}, tasks_by_id={r["id"]: r for r in rows})
    interaction = EnvFactoryUserInteraction({"name": INTERACTION_NAME, "table": table})
    # every exported row names the interaction and its task, as verl requires once one is configured
    kwargs = {r["extra_info"]["task_id"]: r["extra_info"]["interaction_kwargs"] for r in verl_records(rows)}
    assert kwargs[conv.id] == {"name": INTERACTION_NAME, "task_id": conv.id}

    request = await interaction.start_interaction("req-conv", **kwargs[conv.id])
    messages = list(conv.messages)
    messages.append({"role": "assistant", "content": "What is the order id?"})
    done, reply, score, _ = await interaction.generate_response(request, messages, **kwargs[conv.id])
    assert (done, reply, score) == (False, DECLINE, 0.0)
    messages += [{"role": "user", "content": reply}, {"role": "assistant", "content": "What total?"}]
    done, reply, _, metrics = await interaction.generate_response(request, messages)
    assert not done and "25.0" in reply and metrics == {"user_replies": 2, "ended_by": "gold_state"}
    tools = {tool.name: tool for tool in verl_tools(conv, table)}
    agent_data = AgentData(request)
    for name, arguments in TRAINING_CHAIN:  # the tools run on the rollout the interaction opened
        instance_id, _ = await tools[name].create(create_kwargs={"task_id": conv.id})
        await tools[name].execute(instance_id, arguments, agent_data=agent_data)
        await tools[name].release(instance_id)
    messages.append({"role": "assistant", "content": "Your order is placed and cancelled."})
    done, reply, score, _ = await interaction.generate_response(request, messages)
    assert (done, reply, score) == (True, CLOSING, 1.0)
    await interaction.finalize_interaction(request)

    plain = await interaction.start_interaction("req-plain", **kwargs[task.id])
    done, _, score, metrics = await interaction.generate_response(plain, [*task.messages])
    assert done and score == 0.0 and metrics == {"user_replies": 0}  # no user to play: the answer ends it
    await interaction.finalize_interaction(plain)
    assert table.rollouts == {}


def test_the_judge_ends_the_conversation_over_http_and_falls_back_honestly(
    env, task, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    judge_prompts: list[str] = []
    verdicts = iter(
        [
            json.dumps({"done": False, "reason": "the order is not placed yet"}),
            json.dumps({"done": True, "reason": "placed and cancelled as asked"}),
            ScriptedReply(content="{'done': yes"),  # malformed, then its repair malformed too
            ScriptedReply(content="not json"),
        ]
    )

    def answer(messages: list[dict]) -> str | ScriptedReply:
        prompt = messages[-1]["content"]
        # the judge (or its repair request)
        if messages[0]["content"].startswith("You decide whether a conversation"):
            judge_prompts.append(prompt)
            return next(verdicts)
        assert "Information you know" in prompt
        return json.dumps({"message": "Make it 25 dollars, please.", "done": False})

    monkeypatch.setenv("SCRIPTED_LLM_KEY", "sk-local")
    with ScriptedOpenAIServer(answer) as server:
        settings = server.llm_settings(tmp_path, repair_retries=1)
        with LLMGateway(settings) as gateway:
            gym = ToolUseEnv({ENV_ID: env}, gateway=gateway)
            gym.reset(conversational(task))
            observation, _, done, _, info = gym.step("How much should the order be?")
            assert not done and observation["messages"][-1]["content"] == "Make it 25 dollars, please."
            for name, arguments in TRAINING_CHAIN:
                gym.step({"name": name, "arguments": arguments})
            _, reward, done, _, info = gym.step("Placed, checked and cancelled.")
            assert done and reward == 1.0
            decisions = [(e["ended_by"], e["done"]) for e in info["endings"]]
            assert decisions == [("judge", False), ("judge", True)]
            assert "cancel" in judge_prompts[-1]  # the judge read the calls the policy made
            # the same conversation again: the judge's verdict comes from the cache
            gym.reset(conversational(task))
            _, _, done, _, info = gym.step("How much should the order be?")
            [ending] = info["endings"]
            assert not done and (ending["ended_by"], ending["done"]) == ("judge", False)
            # a judge whose answers cannot be parsed: the gold-state rule decides, and says so
            gym.reset(conversational(task))
            observation, _, done, _, info = gym.step("What total would you like?")
            assert not done and info["endings"][-1]["ended_by"] == "gold_state"
            assert gym.user is not None and "judge failed" in gym.user.problems[0]
            usage = gateway.usage().by_role
    assert usage["judge"].calls == len(judge_prompts) == 4 and usage["judge"].cache_hits == 1
    assert judge_prompts[-1].startswith("Your answer was not valid")  # the repair was asked for
    assert usage["user_simulator"].calls == 2 and usage["user_simulator"].cache_hits == 1
