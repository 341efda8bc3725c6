"""The LLM backend of graph matching against a local OpenAI-compatible server with scripted
answers (the real litellm HTTP path, no remote model): embeddings plus add-only links within a
service."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envfactory_dagster.llm.config import LLMSettings
from envfactory_dagster.llm.gateway import LLMGateway
from envfactory_dagster.llm.testing import ScriptedOpenAIServer
from envfactory_dagster.querygen.graph.llm_linking import LLMLinker
from envfactory_dagster.querygen.tool_graph import build_tool_graph, graph_metrics
from tests.core.querygen.test_graph_evidence import _entity, _flights, _row, _tool

KEY_ENV = "SCRIPTED_LLM_KEY"
LEG = "env_flights::search_flights::in::leg"
NAME = "env_flights::search_airport::out::airports[].entityName"
OTHER = "env_hotels::search_hotels::out::hotels[].name"


def _answer(messages: list[dict]) -> str:
    """The scripted linker: for the flight search, a real pair, a pair across services and an id
    that does not exist; nothing for other tools."""
    prompt = messages[-1]["content"]
    if "Consumer tool: env_flights::search_flights" not in prompt:
        return json.dumps({"links": []})
    return json.dumps(
        {
            "links": [
                {"output_id": NAME, "input_id": LEG},
                {"output_id": OTHER, "input_id": LEG},
                {"output_id": "env_flights::nope::out::x", "input_id": LEG},
            ]
        }
    )


@pytest.fixture()
def gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(KEY_ENV, "sk-local")
    with ScriptedOpenAIServer(_answer) as server:
        settings = LLMSettings(
            default_model="openai/scripted",
            api_base=server.api_base,
            api_key_env=KEY_ENV,
            cache_dir=tmp_path / "cache",
            max_retries=0,
        )
        with LLMGateway(settings) as gw:
            yield gw, server


def test_llm_links_only_add_within_a_service_and_say_so(gateway) -> None:
    gw, server = gateway
    hotels = _row(
        "env_hotels",
        [_tool("search_hotels", "Hotel", {"city": {"type": "string"}}, ["id", "name"], "hotels")],
        [_entity("Hotel", "hotels", "name")],
        resource="res_hotels",
    )
    envs = [_flights(), hotels]
    offline = build_tool_graph(envs)
    linker = LLMLinker(gw)
    richer = build_tool_graph(envs, llm_edge_fn=linker, embed_fn=lambda t: gw.embed(t, stage="tool_graph"))

    edge = richer.graph.edges[NAME, LEG]
    assert edge["provenance"] == "llm" and "within service res_flights" in edge["evidence"][0]
    assert not richer.graph.has_edge(OTHER, LEG)  # another service: the linker never offers it
    assert linker.proposed == 3 and linker.dropped == 2
    offline_feeds = {(s, t) for s, t, a in offline.graph.edges(data=True) if a["kind"] == "feeds"}
    assert offline_feeds <= set(richer.graph.edges)  # add-only
    assert graph_metrics(richer)["feed_edges_by_provenance"]["llm"] == 1
    # the requests went over HTTP to the local server: chats per consumer tool, and embeddings
    chats = [r for r in server.requests if "messages" in r]
    assert chats and all(r["model"] == "scripted" for r in chats)
    assert any("input" in r for r in server.requests)


def test_a_failed_linker_call_is_a_problem_and_the_offline_edges_stand(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-local")
    with ScriptedOpenAIServer(lambda messages: "not json at all") as server:
        settings = LLMSettings(
            default_model="openai/scripted",
            api_base=server.api_base,
            api_key_env=KEY_ENV,
            cache_dir=tmp_path / "cache",
            max_retries=0,
            repair_retries=0,
        )
        with LLMGateway(settings) as gw:
            linker = LLMLinker(gw)
            graph = build_tool_graph([_flights()], llm_edge_fn=linker)
    assert linker.problems and "invalid_output" in linker.problems[0]
    assert graph == build_tool_graph([_flights()])
