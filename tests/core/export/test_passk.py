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
