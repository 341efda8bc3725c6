"""Solver acceptance on the LLM path, over HTTP: a refined query is kept only if the `solver` role,
with real tools on fresh environments, reaches the turn's gold end state from it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from envfactory_dagster.llm.gateway import LLMGateway
from envfactory_dagster.llm.testing import ScriptedOpenAIServer
from envfactory_dagster.querygen.trajectory_model import Trajectory
from envfactory_dagster.refine.refined_trajectories import refine_trajectories
from tests.fakes.refine_fixtures import env_rows, sample_trajectories

LLM_QUERY = "Could you pull up Alan Turing's paid order and cancel it?"


def scripted_model(solves: set[str], solver_queries: list[str]):
    """Refiner: always LLM_QUERY. Solver: from a query in `solves` it looks up and cancels
    ord_0003 (the gold calls); from any other it cancels ord_0001, a wrong order."""

    def answer(messages: list[dict]) -> str:
        system, prompt = messages[0]["content"], messages[-1]["content"]
        if system.startswith("You rewrite a user's message"):
            offered = json.loads(
                prompt.split("Hideable values and how each can be recovered:\n")[1].split(
                    "\n\nRelevant database rows"
                )[0]
            )
            hidden = [h for h, v in offered.items() if str(v["value"]) not in LLM_QUERY]
            return json.dumps({"query": LLM_QUERY, "hidden_values": hidden})
        assert system.startswith("You are an assistant that completes"), system[:60]
        conversation = json.loads(prompt.split("Conversation so far (messages and tool results):\n", 1)[1])
        if any("tool_call" in step for step in conversation):
            return json.dumps({"final_answer": "Done: the order is cancelled."})
        query = conversation[-1]["content"]
        solver_queries.append(query)
        prefix = re.search(r'"(\w+)__get_order"', prompt).group(1)
        order = "ord_0003" if query in solves else "ord_0001"
        return json.dumps(
            {
                "tool_calls": [
                    {"name": f"{prefix}__get_order", "arguments": {"order_id": order}},
                    {"name": f"{prefix}__cancel_order", "arguments": {"order_id": order}},
                ]
            }
        )

    return answer


@pytest.mark.parametrize("solved", ["llm", "template", "neither"])
def test_a_refined_query_is_kept_only_if_the_solver_reaches_the_gold_state(
    solved: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trajectory = sample_trajectories()[1]  # get and cancel ord_0003
    template_rows, _, _ = refine_trajectories([trajectory], env_rows(), seed=0)
    template_query = Trajectory.model_validate_json(template_rows[0]["trajectory_json"]).turns[0].query
    solves = {"llm": {LLM_QUERY}, "template": {template_query}, "neither": set()}[solved]
    solver_queries: list[str] = []
    monkeypatch.setenv("SCRIPTED_LLM_KEY", "sk-local")
    with ScriptedOpenAIServer(scripted_model(solves, solver_queries)) as server:
        settings = server.llm_settings(tmp_path)
        with LLMGateway(settings) as gateway:
            rows, rejected, metrics = refine_trajectories(
                [trajectory], env_rows(), seed=0, backend="llm", gateway=gateway
            )
            solver_calls = gateway.usage().by_role["solver"].calls
    unsolved = [r for r in rejected if r["kind"] == "solver_unsolved"]
    assert solver_calls >= len(solver_queries) > 0
    if solved == "llm":
        assert solver_queries == [LLM_QUERY] and not unsolved
        assert Trajectory.model_validate_json(rows[0]["trajectory_json"]).turns[0].query == LLM_QUERY
    elif solved == "template":  # the LLM's phrasing is rejected with its reason; the template's kept
        assert solver_queries == [LLM_QUERY, template_query]
        assert [LLM_QUERY in r["reason"] and "ord_0001" not in r["reason"] for r in unsolved] == [True]
        assert "another state than the gold one" in unsolved[0]["reason"]
        assert Trajectory.model_validate_json(rows[0]["trajectory_json"]).turns[0].query == template_query
    else:  # no phrasing is solved: the only turn goes, so does the trajectory, each with a reason
        assert not rows and len(unsolved) == 2
        [dropped] = [r for r in rejected if r["kind"] == "first_turn_unprovable"]
        assert "solver did not reach the gold state" in dropped["reason"]
        assert metrics["trajectories_in"] == 1 and metrics["solver_unsolved"] == 2
