"""QueryGen on real commerce environments (template EnvGen chain): graph, chains, trajectories, replay."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from envfactory_dagster.envgen.stages import registry_for_domain
from envfactory_dagster.querygen.query_templates import query_leaks_tool_name
from envfactory_dagster.querygen.replay import replay_matches_record
from envfactory_dagster.querygen.tool_chains import (
    DrawTally,
    compare_samplers,
    random_walk_chains,
    sample_chains,
    validate_chain,
)
from envfactory_dagster.querygen.tool_graph import (
    build_tool_graph,
    graph_edges_rows,
    graph_metrics,
    graph_nodes_rows,
    normalized_name,
    render_graph_summary,
)
from envfactory_dagster.querygen.trajectories import execute_chains
from envfactory_dagster.querygen.trajectory_model import Trajectory
from envfactory_dagster.querygen.trajectory_quality import drop_exact_duplicates, near_duplicate_share
from tests.conftest import BUNDLED_CATALOG


@pytest.fixture(scope="module")
def envs() -> list[dict]:
    return registry_for_domain(BUNDLED_CATALOG, "commerce")


@pytest.fixture(scope="module")
def graph(envs):
    return build_tool_graph(envs)


def test_normalized_names_are_entity_aware() -> None:
    assert normalized_name("id", "order") == normalized_name("order_id", "") == "order_id"
    assert normalized_name("orderIds", "") == "order_id"
    assert normalized_name("title", "listing") == "listing_title"


def test_graph_links_outputs_to_inputs_with_provenance(graph) -> None:
    metrics = graph_metrics(graph)
    assert metrics["feed_edges_by_provenance"]["name_match"] > 0
    assert metrics["cross_env_feed_edges"] > 0
    assert 0 < metrics["user_provided_share"] < 1
    edges = graph_edges_rows(graph)
    assert all(e["provenance"] and e["score"] > 0 for e in edges)
    nodes = {n["id"]: n for n in graph_nodes_rows(graph)}
    id_inputs = [n for n in nodes.values() if n["kind"] == "input" and n["name"].endswith("_id")]
    assert id_inputs and not any(n["user_provided"] for n in id_inputs)
    assert "```mermaid" in render_graph_summary(graph)


def test_graph_with_embeddings_and_llm_edges_only_adds(envs, graph) -> None:
    base = graph_metrics(graph)["edges_by_kind"]["feeds"]
    world = graph.envs[envs[0]["env_id"]].world_id  # the service: refinement stays within it

    def llm_edges(service, outputs, inputs):
        return [(outputs[0]["id"], inputs[-1]["id"]), ("nope", "nope")] if service == world else []

    richer = build_tool_graph(
        envs,
        embed_fn=lambda texts: [[1.0, 0.0]] * len(texts),
        llm_edge_fn=llm_edges,
        similarity_threshold=0.99,
    )
    metrics = graph_metrics(richer)
    assert metrics["edges_by_kind"]["feeds"] >= base
    assert metrics["feed_edges_by_provenance"].get("embedding", 0) > 0
    assert any("ignored" in e["reason"] for e in richer.errors)


def test_chains_are_seeded_valid_and_beat_the_random_walk(graph) -> None:
    chains = sample_chains(graph, seed=3, n_chains=60)
    again = sample_chains(graph, seed=3, n_chains=60)
    assert [c.id for c in chains] == [c.id for c in again]
    assert all(c.valid and not validate_chain(c, graph) for c in chains)
    assert all(len(c.env_ids) <= 3 and len(c.tools) <= 10 for c in chains)
    assert all(1 <= len(t) <= 5 for c in chains for t in c.turns)
    walks = random_walk_chains(graph, seed=3, n_chains=60)
    assert sum(c.valid for c in walks) < sum(c.valid for c in chains)
    figures = compare_samplers(graph, seed=3, n_chains=100)
    assert figures["topology_valid_multistep"] > figures["random_walk_valid_multistep"]
    # the asset counts the draws sampling made instead of drawing them again: the same figures
    tally = DrawTally(100)
    sample_chains(graph, seed=3, n_chains=100, tally=tally)
    assert compare_samplers(graph, seed=3, n_chains=100, topology=tally) == figures
    for sampler in ("topology", "random_walk"):  # every draw counted once, none twice
        assert sum(figures[f"{sampler}_calls_distribution"].values()) == 100


def test_trajectories_execute_replay_and_state_their_values(envs, graph, tmp_path) -> None:
    chains = sample_chains(graph, seed=5, n_chains=40)
    rows, rejected, metrics = execute_chains(chains, envs, seed=5, graph=graph)
    assert rows and metrics["trajectories"] == len(rows)
    assert metrics["rejected"] == len([r for r in rejected if "kind" in r])
    assert all(r["reason"] for r in rejected)
    assert not any(r["query_leaks_tool_name"] for r in rows)
    assert sum(r["missing_user_values"] for r in rows) == 0
    again, _, _ = execute_chains(chains, envs, seed=5, graph=graph)
    assert [r["trajectory_json"] for r in again] == [r["trajectory_json"] for r in rows]
    trajectory = Trajectory.model_validate_json(rows[0]["trajectory_json"])
    sources = [s for t in trajectory.turns for c in t.calls for s in c.argument_sources.values()]
    assert any(s.kind == "output" and s.path for s in sources)
    for row in rows:
        assert replay_matches_record(row["trajectory_json"], envs) == (True, "")
    tampered = json.loads(rows[0]["trajectory_json"])
    first_world = tampered["env_worlds"][tampered["env_ids"][0]]
    tampered["final_states"][first_world]["counters"]["tampered"] = 1
    assert replay_matches_record(json.dumps(tampered), envs)[0] is False
    # a fresh process replays byte-identically
    (tmp_path / "data.json").write_text(json.dumps({"rows": rows[:5], "envs": envs}))
    code = (
        "import json,sys; from envfactory_dagster.querygen.replay import replay_matches_record; "
        "d=json.load(open(sys.argv[1])); print(all(replay_matches_record(r['trajectory_json'], d['envs'])[0] "
        "for r in d['rows']))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "data.json")], capture_output=True, text=True
    )
    assert out.stdout.strip() == "True", out.stderr[-2000:]
    kept, dropped = drop_exact_duplicates(rows + rows[:2])
    assert len(kept) == len(rows) and len(dropped) == 2
    assert near_duplicate_share(rows) <= 0.05
    assert near_duplicate_share(rows + rows[:2]) > 0


def test_invalid_chains_and_bad_env_rows_become_rejected_rows(envs, graph) -> None:
    chain = sample_chains(graph, seed=9, n_chains=1)[0].model_copy(update={"valid": False, "problems": ["x"]})
    broken = {**envs[0], "env_id": "env_broken", "source": "raise SystemExit", "code_sha256": "0" * 64}
    rows, rejected, metrics = execute_chains([chain], [*envs, broken], seed=1, graph=graph)
    assert rows == [] and metrics["rejected_by_kind"] == {"exact_duplicate": 0, "invalid_chain": 1}
    assert any("env_broken" in r["reason"] for r in rejected)


def test_leak_check() -> None:
    assert query_leaks_tool_name("please run get_order now", ["get_order"])
    assert query_leaks_tool_name("set the order_id", ["x"], ["order_id"])
    assert not query_leaks_tool_name("change the title of that order", ["get_order"], ["title", "order_id"])
