"""The graph as an input: built once, stored as rows (Parquet), loaded back equal."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from assets.frames import records
from envfactory_dagster.envgen.stages import registry_for_domain
from envfactory_dagster.ingest.authentic_resources import ingest_domain
from envfactory_dagster.querygen.tool_graph import (
    ToolGraph,
    build_tool_graph,
    graph_edges_rows,
    graph_nodes_rows,
)
from tests.conftest import BUNDLED_CATALOG


@pytest.fixture(scope="module")
def travel() -> tuple[list[dict], list[dict]]:
    return registry_for_domain(BUNDLED_CATALOG, "travel"), ingest_domain(BUNDLED_CATALOG, "travel").resources


def test_build_equals_load_of_its_rows_through_parquet(travel, tmp_path: Path) -> None:
    envs, resources = travel
    graph = build_tool_graph(envs, resources=resources)
    pd.DataFrame(graph_edges_rows(graph)).to_parquet(tmp_path / "edges.parquet")
    pd.DataFrame(graph_nodes_rows(graph)).to_parquet(tmp_path / "nodes.parquet")
    loaded = ToolGraph.from_rows(
        records(pd.read_parquet(tmp_path / "edges.parquet")),
        records(pd.read_parquet(tmp_path / "nodes.parquet")),
        envs,
    )
    assert loaded == graph
    assert loaded.input_producers == graph.input_producers and loaded.tools_by_env == graph.tools_by_env
    assert loaded.unfillable_inputs() == graph.unfillable_inputs()
    # a different graph is not equal: one edge less
    edges = graph_edges_rows(graph)
    feed = next(e for e in edges if e["kind"] == "feeds")
    assert ToolGraph.from_rows([e for e in edges if e is not feed], graph_nodes_rows(graph), envs) != graph


def test_every_feed_edge_says_why_it_exists(travel) -> None:
    envs, resources = travel
    graph = build_tool_graph(envs, resources=resources)
    feeds = [e for e in graph_edges_rows(graph) if e["kind"] in ("feeds", "precedes")]
    assert feeds and all(
        e["evidence"] and e["evidence"][0].startswith(e["provenance"]) for e in feeds if e["kind"] == "feeds"
    )
    assert all(e["links"] >= 1 for e in feeds if e["kind"] == "precedes")


def test_rows_of_an_environment_the_registry_no_longer_has_are_dropped_with_a_reason(travel) -> None:
    envs, resources = travel
    graph = build_tool_graph(envs, resources=resources)
    kept = envs[1:]
    loaded = ToolGraph.from_rows(graph_edges_rows(graph), graph_nodes_rows(graph), kept)
    gone = envs[0]["env_id"]
    assert not any(t.startswith(f"{gone}::") for t in loaded.tools)
    assert any(gone in e["reason"] and "not in the registry" in e["reason"] for e in loaded.errors)
    assert all(not s.startswith(f"{gone}::") and not t.startswith(f"{gone}::") for s, t in loaded.graph.edges)
