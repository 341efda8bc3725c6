"""Conversational mode: the user leaves a value out, the assistant asks, a simulator answers; the calls
and states stay the recorded ones, and the exports carry the clarifying turns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envfactory_dagster.envgen.stages import registry_for_domain
from envfactory_dagster.export.conversation import ASK_ME, DECLINE, persona_reply
from envfactory_dagster.export.sft import build_sft_rows, sharegpt_record
from envfactory_dagster.llm.gateway import LLMGateway
from envfactory_dagster.llm.testing import ScriptedOpenAIServer
from envfactory_dagster.querygen.replay import replay_matches_record
from envfactory_dagster.querygen.tool_chains import sample_chains
from envfactory_dagster.querygen.tool_graph import build_tool_graph
from envfactory_dagster.querygen.trajectories import execute_chains, load_envs
from envfactory_dagster.refine.refined_trajectories import refine_trajectories
from tests.conftest import BUNDLED_CATALOG


@pytest.fixture(scope="module")
def commerce() -> tuple[list[dict], list[dict], dict]:
    registry = registry_for_domain(BUNDLED_CATALOG, "commerce")
    envs, _ = load_envs(registry)
    chains = [c for c in sample_chains(build_tool_graph(list(envs.values())), seed=1, n_chains=16) if c.valid]
    trajectories, _, _ = execute_chains([c.model_dump() for c in chains], list(envs.values()), seed=1)
    refined, _, _ = refine_trajectories(trajectories, registry, seed=1)
    return refined, registry, envs


def test_the_persona_answers_what_it_knows_and_declines_the_rest() -> None:
    known = {"name": "Summer Sale", "first name": "Ada"}
    assert persona_reply("Which first name would you like?", known) == 'It\'s "Ada".'
    assert persona_reply("What name should I use?", known) == 'It\'s "Summer Sale".'
    assert persona_reply("What is the order id?", known) == DECLINE


def test_clarifying_turns_are_exported_and_every_trajectory_replays(commerce) -> None:
    refined, registry, envs = commerce
    rows, _, metrics = build_sft_rows(refined, registry, conversational=True)
    clarified = [r for r in rows if r["clarifications_json"] != "[]"]
    assert metrics["clarified_rows"] == len(clarified) and len(clarified) >= 0.3 * len(rows)
    assert all(replay_matches_record(r["trajectory_json"], envs) == (True, "") for r in refined)
    for row in clarified:
        [clarification] = json.loads(row["clarifications_json"])
        # offline, the conversation ends at the gold state, and the record says who decided
        assert clarification["ending"]["ended_by"] == "gold_state" and clarification["ending"]["done"]
        messages = json.loads(row["messages_json"])
        start = next(i for i, m in enumerate(messages) if m["role"] == "user" and ASK_ME in m["content"])
        opening, question, answer, calls = messages[start : start + 4]
        assert clarification["value"] not in opening["content"]
        assert question["role"] == "assistant" and clarification["label"] in question["content"]
        assert answer["role"] == "user" and clarification["value"] in answer["content"]
        passed = [json.loads(c["function"]["arguments"]) for c in calls.get("tool_calls", [])]
        later = [
            json.loads(c["function"]["arguments"])
            for m in messages[start + 3 :]
            for c in m.get("tool_calls", [])
        ]
        assert any(clarification["value"] in a.values() for a in passed + later)  # the call uses the answer
        assert "ask the user only for what only they know" in messages[0]["content"]
        conversations = sharegpt_record(row)["conversations"]
        at = next(i for i, c in enumerate(conversations) if ASK_ME in c["value"])
        assert len(conversations) % 2 == 0  # LLaMA-Factory's alternation holds
        assert [c["from"] for c in conversations[at : at + 3]] == ["human", "gpt", "human"]
    plain, _, _ = build_sft_rows(refined, registry)
    assert all(r["clarifications_json"] == "[]" for r in plain)


def test_the_llm_user_simulator_is_called_over_http_and_held_to_the_value(
    commerce, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refined, registry, _ = commerce
    answers: list[str] = []
    verdicts: list[bool] = []

    def answer(messages: list[dict]) -> str:
        prompt = messages[-1]["content"]
        if prompt.startswith("The user's goal"):  # the end-of-conversation judge: every 3rd says "not over"
            verdicts.append(len(verdicts) % 3 != 2)
            return json.dumps({"done": verdicts[-1], "reason": "the requested change is confirmed"})
        if "Information you know" not in prompt:
            return json.dumps({"answer": "Done."})  # closing answers are not under test
        known = json.loads(
            prompt.split("Information you know:\n", 1)[1].split("\n\nConversation so far", 1)[0]
        )
        asked = json.loads(prompt.split("Conversation so far:\n", 1)[1])[-1]["content"]
        label = max((label for label in known if label in asked), key=len)
        reply = f"Sure, use {known[label]}." if len(answers) % 2 == 0 else "Hmm, not sure."  # every 2nd vague
        answers.append(reply)
        return json.dumps({"message": reply, "done": False})

    monkeypatch.setenv("SCRIPTED_LLM_KEY", "sk-local")
    with ScriptedOpenAIServer(answer) as server:
        settings = server.llm_settings(tmp_path)
        with LLMGateway(settings) as gateway:
            rows, _, metrics = build_sft_rows(refined, registry, conversational=True, gateway=gateway)
            simulated = gateway.usage().by_role["user_simulator"].calls
            judged = gateway.usage().by_role["judge"].calls
    clarifications = [c for r in rows for c in json.loads(r["clarifications_json"])]
    assert simulated == len(answers) >= len(clarifications) > 1
    # the judge read each clarified conversation; its verdict is stored, disagreements counted
    assert judged == len(verdicts) == len(clarifications)
    assert all(c["ending"]["ended_by"] == "judge" and c["ending"]["model"] for c in clarifications)
    assert [c["ending"]["done"] for c in clarifications] == verdicts
    assert metrics["judged_endings"] == len(clarifications)
    assert metrics["judge_disagreements"] == verdicts.count(False) > 0
    by_llm = [c for c in clarifications if c["answered_by"] == "llm"]
    assert by_llm and all(c["answer"].startswith("Sure, use") and c["model"] for c in by_llm)
    kept_persona = [c for c in clarifications if c["answered_by"] == "persona"]
    assert kept_persona and metrics["user_simulator_problems"] == len(kept_persona)


def test_a_conversational_rl_task_is_played_with_the_simulated_user(commerce) -> None:
    from envfactory_dagster.export.rl_tasks import build_rl_tasks, rl_task_from_row
    from envfactory_dagster.serve.gym_env import ToolUseEnv

    refined, registry, envs = commerce
    rows, _, metrics = build_rl_tasks(refined, registry, conversational=True)
    tasks = [rl_task_from_row(r) for r in rows if r["user_knows_json"] != "{}"]
    assert tasks and metrics["conversational_tasks"] == len(tasks)
    plain, _, _ = build_rl_tasks(refined, registry)
    assert all(r["user_knows_json"] == "{}" for r in plain)
    task = tasks[0]
    assert ASK_ME in task.messages[-1]["content"]  # the prompt ends at the opening with the value left out
    asked = next(
        (label, value)
        for label, value in task.user_knows.items()
        if any(value in g.arguments.values() for g in task.gold_calls) and isinstance(value, str)
    )
    env = ToolUseEnv(envs)
    env.reset(task)
    observation, reward, done, _, info = env.step("What is the order id?")
    assert observation["messages"][-1] == {"role": "user", "content": DECLINE} and not done
    observation, _, done, _, _ = env.step(f"Which {asked[0]} would you like?")
    assert asked[1] in observation["messages"][-1]["content"] and not done
    for gold in task.gold_calls:
        env.step({"name": gold.name, "arguments": gold.arguments})
    _, reward, done, _, info = env.step("All done.")
    assert done and reward == 1.0 and info["user_replies"] == 2
