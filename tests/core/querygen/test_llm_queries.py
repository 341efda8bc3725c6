"""The LLM query writer through the real gateway with scripted answers: good queries are kept,
leaking ones fall back to the template, and the calls never change."""

from __future__ import annotations

import json
import re
from pathlib import Path

from envfactory_dagster.envgen.stages import registry_for_domain
from envfactory_dagster.llm.config import LLMSettings
from envfactory_dagster.llm.gateway import LLMGateway
from envfactory_dagster.llm.testing import ScriptedLLM
from envfactory_dagster.querygen.replay import replay_matches_record
from envfactory_dagster.querygen.tool_chains import sample_chains
from envfactory_dagster.querygen.tool_graph import build_tool_graph
from envfactory_dagster.querygen.trajectories import execute_chains, load_envs, rewrite_queries_llm
from envfactory_dagster.querygen.trajectory_model import Trajectory
from tests.conftest import BUNDLED_CATALOG


def scripted_writer(messages: list[dict]) -> str:
    """Persona first; then per turn a query stating every user value and saying what to do in the
    words of the turn's tools (as a model reading the calls would), except: a turn whose first call
    is a cancellation names that tool (must be refused), and every third turn is a vague request
    ("take care of this", must be refused: it does not say what to do)."""
    prompt = messages[-1]["content"]
    if "Values the user provides" not in prompt:
        return json.dumps({"persona": "A shop owner.", "scenario": "Tidying up the week's orders."})
    values = json.loads(prompt.split("Values the user provides in this turn:\n", 1)[1])
    stated = ", ".join(str(v) for v in values.values())
    tools = re.findall(r'"tool": "([a-z_0-9]+)"', prompt.split("This turn's calls", 1)[1])
    if tools[0].startswith("cancel"):
        return json.dumps({"query": f"Please run {tools[0]} for me. {stated}"})
    if len(VAGUE) % 3 == 0:
        VAGUE.append(prompt)
        return json.dumps({"query": f"Could you take care of this for me? Details: {stated}."})
    VAGUE.append("")
    asks = " and then ".join(" ".join(t.split("_")) for t in tools)
    return json.dumps({"query": f"Please {asks}. Details: {stated}."})


VAGUE: list[str] = []


def test_llm_queries_keep_the_calls_and_fall_back_when_they_leak(tmp_path: Path) -> None:
    rows = registry_for_domain(BUNDLED_CATALOG, "commerce")
    envs, _ = load_envs(rows)
    graph = build_tool_graph(list(envs.values()))
    chains = [c for c in sample_chains(graph, seed=3, n_chains=12) if c.valid]
    trajectories, _, _ = execute_chains([c.model_dump() for c in chains], list(envs.values()), seed=3)
    fake = ScriptedLLM(scripted_writer)
    with LLMGateway(
        LLMSettings(default_model="gpt-4o-mini", cache_dir=tmp_path), completion_fn=fake
    ) as gateway:
        rewritten, problems = rewrite_queries_llm(trajectories, envs, gateway)
    assert len(rewritten) == len(trajectories) and fake.calls
    for before, after in zip(trajectories, rewritten, strict=True):
        old, new = (
            Trajectory.model_validate_json(before["trajectory_json"]),
            Trajectory.model_validate_json(after["trajectory_json"]),
        )
        assert after["id"] == before["id"] and [t.calls for t in new.turns] == [t.calls for t in old.turns]
        assert new.backend == "llm" and new.persona.startswith("A shop owner")
        assert not after["query_leaks_tool_name"]
        assert replay_matches_record(after["trajectory_json"], envs) == (True, "")
    llm_turns = [
        t.query for r in rewritten for t in Trajectory.model_validate_json(r["trajectory_json"]).turns
    ]
    assert any(q.startswith("Please ") for q in llm_turns)  # the writer's queries that say what to do
    assert not any(q.startswith("Could you take care of this") for q in llm_turns)  # vague: refused
    assert not any(re.search(r"\bcancel_\w+", q) for q in llm_turns)
    assert problems and all("replaced by the template one" in p for p in problems)
    assert any("does not name what it asks for" in p for p in problems)
