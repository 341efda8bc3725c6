"""Pass@k with a scripted solver: the gold policy passes every rollout; offline it is skipped."""

from __future__ import annotations

import json
from pathlib import Path

from envfactory_dagster.export.passk import pass_at_k
from envfactory_dagster.export.rl_tasks import build_rl_tasks, rl_task_from_row
from envfactory_dagster.llm.gateway import LLMGateway, LLMSettings
from envfactory_dagster.llm.testing import ScriptedLLM
from envfactory_dagster.refine.refined_trajectories import refine_trajectories
from tests.fakes.refine_fixtures import env_rows, sample_trajectories, trajectory_rows


def test_scripted_gold_policy_passes_and_offline_is_skipped(tmp_path: Path) -> None:
    refined, _, _ = refine_trajectories(trajectory_rows(sample_trajectories()[1:2]), env_rows(), seed=0)
    task = rl_task_from_row(build_rl_tasks(refined, env_rows())[0][0])
    steps = [
        {"tool_calls": [{"name": g.name, "arguments": g.arguments} for g in task.gold_calls]},
        {"final_answer": "ok"},
    ]

    def answer(messages: list[dict]) -> str:
        done = "tool_call" in messages[-1]["content"]
        return json.dumps(steps[1] if done else steps[0])

    settings = LLMSettings(models={"solver": "gpt-4o-mini"}, cache_dir=tmp_path)
    with LLMGateway(settings, completion_fn=ScriptedLLM(answer)) as gateway:
        rows, errors, _ = pass_at_k([task], env_rows(), gateway, k=2)
    assert not errors and rows[0]["passes"] == 2 and rows[0]["difficulty"] == 0.0
    offline = pass_at_k([task], env_rows(), None)
    assert offline[2]["skipped"] and "offline" in offline[2]["reason"]


def test_the_judge_picks_among_rollouts_over_http_and_the_reward_has_the_last_word(
    tmp_path: Path, monkeypatch
) -> None:
    from envfactory_dagster.llm.testing import ScriptedOpenAIServer

    refined, _, _ = refine_trajectories(trajectory_rows(sample_trajectories()[1:2]), env_rows(), seed=0)
    task = rl_task_from_row(build_rl_tasks(refined, env_rows())[0][0])
    gold = {"tool_calls": [{"name": g.name, "arguments": g.arguments} for g in task.gold_calls]}
    judge_picks: list[int] = []

    def answer(messages: list[dict]) -> str:
        prompt = messages[-1]["content"]
        if prompt.startswith("Task (user messages)"):  # the judge: always the first candidate
            judge_picks.append(0)
            return json.dumps({"best": 0, "reasons": ["shortest", "reached the goal"]})
        if "tool_call" in prompt:
            return json.dumps({"final_answer": "done"})
        # rollout 0 gives up at once, rollout 1 makes the gold calls
        return json.dumps({"final_answer": "I cannot"} if '"attempt": 0' in prompt else gold)

    monkeypatch.setenv("SCRIPTED_LLM_KEY", "sk-local")
    with ScriptedOpenAIServer(answer) as server:
        settings = server.llm_settings(tmp_path)
        with LLMGateway(settings) as gateway:
            rows, errors, metrics = pass_at_k([task], env_rows(), gateway, k=2)
            usage = gateway.usage()
    [row] = rows
    assert not errors and judge_picks == [0] and usage.by_role["judge"].calls == 1
    assert json.loads(row["rewards_json"])[1] == 1.0 > json.loads(row["rewards_json"])[0]
    assert (row["pass_rate"], row["judge_choice"], row["judge_agrees"]) == (0.5, 0, False)
    assert row["selected_rollout"] == 1 and row["judge_reason"] == "shortest"
    assert metrics["judge_disagreements"] == 1
